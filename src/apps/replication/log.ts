/**
 * A replica's durable storage in its dataDir: `checkpoint.bin` (the engine's state and the
 * machine's snapshot at a position) and `actions-<position>.log`, the append-only log of
 * records since that checkpoint. Appends are batched and made durable with one fdatasync per
 * batch (group commit); a checkpoint is written beside the old one and renamed over it, and
 * only then is the previous log removed, so a crash at any point leaves one consistent pair.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { decodeActions, encodeActionInto, encodeActions, encodedActionBytes, MalformedError, type Action } from './action.js';
import { emptyCheckpoint, type Checkpoint, type LogRecord } from './records.js';
import type { PrimaryRecord } from './voting.js';

const RecordKind = { green: 1, red: 2, yellow: 3, meta: 4 } as const;
const CHECKPOINT_FILE = 'checkpoint.bin';

/** [u32 length][u8 kind][body]; the action kinds are encoded straight into one buffer (the hot path). */
export function encodeRecord(record: LogRecord): Buffer {
  if (record.kind === 'meta') {
    const body = Buffer.from(JSON.stringify({ lastPrimary: record.lastPrimary, attempts: record.attempts }));
    const head = Buffer.alloc(5);
    head.writeUInt32LE(body.length + 1, 0);
    head.writeUInt8(RecordKind.meta, 4);
    return Buffer.concat([head, body]);
  }
  const yellow = record.kind === 'yellow';
  const head = yellow ? 13 : 5;
  const target = Buffer.allocUnsafe(head + encodedActionBytes(record.action));
  target.writeUInt32LE(target.length - 4, 0);
  target.writeUInt8(RecordKind[record.kind], 4);
  if (yellow) target.writeDoubleLE(record.prim, 5);
  encodeActionInto(target, head, record.action, record.kind === 'green' ? record.action.position : 0);
  return target;
}

function decodeRecord(kind: number, body: Buffer): LogRecord {
  if (kind === RecordKind.meta) {
    const meta = JSON.parse(body.toString('utf8')) as { lastPrimary: PrimaryRecord | null; attempts: PrimaryRecord[] };
    return { kind: 'meta', lastPrimary: meta.lastPrimary, attempts: meta.attempts };
  }
  if (kind === RecordKind.yellow) return { kind: 'yellow', prim: body.readDoubleLE(0), action: stripPosition(onlyAction(body, 8)) };
  if (kind === RecordKind.green) return { kind: 'green', action: onlyAction(body, 0) };
  if (kind === RecordKind.red) return { kind: 'red', action: stripPosition(onlyAction(body, 0)) };
  throw new MalformedError(`unknown log record kind ${kind}`);
}

function onlyAction(body: Buffer, offset: number) {
  const actions = decodeActions(body, offset);
  if (actions.length !== 1) throw new MalformedError('a log record holds one action');
  return actions[0]!;
}

const stripPosition = (action: Action): Action => ({ origin: action.origin, seq: action.seq, body: action.body });

export interface LoadedLog {
  checkpoint: Checkpoint;
  /** The machine's snapshot at the checkpoint (empty at position 0). */
  snapshot: Buffer;
  records: LogRecord[];
}

export class ActionLog {
  readonly dataDir: string;
  #fd: number;
  #position: number;
  #bytes = 0;

  private constructor(dataDir: string, position: number, fd: number, bytes: number) {
    this.dataDir = dataDir;
    this.#position = position;
    this.#fd = fd;
    this.#bytes = bytes;
  }

  /** Opens (creating) the dataDir and reads it back: the checkpoint and every intact record after it. */
  static open(dataDir: string, initialPrimary: PrimaryRecord | null): { log: ActionLog; loaded: LoadedLog } {
    fs.mkdirSync(dataDir, { recursive: true });
    let checkpoint = emptyCheckpoint(initialPrimary);
    let snapshot: Buffer = Buffer.alloc(0);
    const checkpointPath = join(dataDir, CHECKPOINT_FILE);
    if (fs.existsSync(checkpointPath)) ({ checkpoint, snapshot } = decodeCheckpoint(fs.readFileSync(checkpointPath)));
    const logPath = join(dataDir, logName(checkpoint.position));
    const records: LogRecord[] = [];
    let goodBytes = 0;
    if (fs.existsSync(logPath)) {
      const bytes = fs.readFileSync(logPath);
      while (goodBytes + 5 <= bytes.length) {
        const length = bytes.readUInt32LE(goodBytes);
        if (length < 1 || goodBytes + 4 + length > bytes.length) break;
        try {
          records.push(decodeRecord(bytes.readUInt8(goodBytes + 4), bytes.subarray(goodBytes + 5, goodBytes + 4 + length)));
        } catch {
          break;
        }
        goodBytes += 4 + length;
      }
    }
    const fd = fs.openSync(logPath, 'a+');
    // A record torn by a crash is cut off, so later appends follow intact ones.
    fs.ftruncateSync(fd, goodBytes);
    return { log: new ActionLog(dataDir, checkpoint.position, fd, goodBytes), loaded: { checkpoint, snapshot, records } };
  }

  /** Bytes in the current log file. */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * Appends encoded records now (a synchronous write keeps appends in call order) and resolves
   * once they are on disk; the flushes of consecutive appends may overlap.
   */
  async append(records: Buffer[]): Promise<void> {
    const data = Buffer.concat(records);
    this.#bytes += data.length;
    const fd = this.#fd;
    fs.writeSync(fd, data);
    await new Promise<void>((resolve, reject) => fs.fdatasync(fd, (error) => (error ? reject(error) : resolve())));
  }

  /** Replaces the log by a checkpoint (synchronously: nothing may be appended in between). */
  writeCheckpoint(checkpoint: Checkpoint, snapshot: Buffer): void {
    const newLog = join(this.dataDir, logName(checkpoint.position));
    const fd = fs.openSync(newLog, 'w');
    fs.fsyncSync(fd);
    const temporary = join(this.dataDir, `${CHECKPOINT_FILE}.tmp`);
    fs.writeFileSync(temporary, encodeCheckpoint(checkpoint, snapshot));
    const temporaryFd = fs.openSync(temporary, 'r');
    fs.fsyncSync(temporaryFd);
    fs.closeSync(temporaryFd);
    fs.renameSync(temporary, join(this.dataDir, CHECKPOINT_FILE));
    syncDirectory(this.dataDir);
    const oldPosition = this.#position;
    fs.closeSync(this.#fd);
    this.#fd = fd;
    this.#position = checkpoint.position;
    this.#bytes = 0;
    if (oldPosition !== checkpoint.position) fs.rmSync(join(this.dataDir, logName(oldPosition)), { force: true });
  }

  close(): void {
    fs.closeSync(this.#fd);
  }
}

const logName = (position: number): string => `actions-${position}.log`;

function syncDirectory(path: string): void {
  const fd = fs.openSync(path, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** [u32 meta length][meta JSON][u32 pending length][pending actions][machine snapshot] */
function encodeCheckpoint(checkpoint: Checkpoint, snapshot: Buffer): Buffer {
  const { pending, ...rest } = checkpoint;
  const meta = Buffer.from(JSON.stringify(rest));
  const pendingBytes = encodeActions(pending);
  const head = Buffer.alloc(4);
  head.writeUInt32LE(meta.length, 0);
  const middle = Buffer.alloc(4);
  middle.writeUInt32LE(pendingBytes.length, 0);
  return Buffer.concat([head, meta, middle, pendingBytes, snapshot]);
}

function decodeCheckpoint(bytes: Buffer): { checkpoint: Checkpoint; snapshot: Buffer } {
  const metaLength = bytes.readUInt32LE(0);
  const rest = JSON.parse(bytes.toString('utf8', 4, 4 + metaLength)) as Omit<Checkpoint, 'pending'>;
  const pendingLength = bytes.readUInt32LE(4 + metaLength);
  const pendingStart = 8 + metaLength;
  const pending = decodeActions(bytes.subarray(pendingStart, pendingStart + pendingLength)).map(stripPosition);
  return { checkpoint: { ...rest, pending }, snapshot: Buffer.from(bytes.subarray(pendingStart + pendingLength)) };
}
