/**
 * What a Log block does to the lines of its group before writing them: keep only
 * lines matching `Match`, and with `RewriteTimestamp = CommonLogFormat` replace a
 * line's `[%t]` field with the collector's time of writing (so one merged file of
 * many servers has non-decreasing timestamps, as spreadlogd does).
 */
import { clfTime, CLF_TIME_FIELD } from './combined-format.js';
import type { LogBlock } from './config.js';

const NEWLINE = 0x0a;

/** The lines a Log block writes, and how many; `lines` is the input (whole lines). */
export function filterLines(log: LogBlock, lines: Buffer, lineCount: number, now: () => Date): { bytes: Buffer; lines: number } {
  if (log.match === null && !log.rewriteTimestamp) return { bytes: lines, lines: lineCount };
  const kept: Buffer[] = [];
  let start = 0;
  let stamp: string | null = null;
  for (let end = lines.indexOf(NEWLINE); end >= 0; end = lines.indexOf(NEWLINE, start)) {
    let line = lines.subarray(start, end + 1);
    start = end + 1;
    if (log.match !== null && !log.match.test(line.toString('utf8', 0, line.length - 1))) continue;
    if (log.rewriteTimestamp) {
      const text = line.toString('latin1');
      if (CLF_TIME_FIELD.test(text)) {
        stamp ??= `[${clfTime(now())}]`;
        line = Buffer.from(text.replace(CLF_TIME_FIELD, stamp), 'latin1');
      }
    }
    kept.push(line);
  }
  return { bytes: kept.length === 1 ? kept[0] : Buffer.concat(kept), lines: kept.length };
}
