/**
 * What a daemon keeps across restarts so that its ring identity does not rest on the
 * clock (src/ring/ring-id.ts): the number of this life (the ring's incarnation, carried in
 * JOINs so that the others tell a restarted daemon from its previous life) and the highest
 * ring id time it formed (the next life's ring ids go above it). One small JSON file per
 * daemon, replaced atomically (temporary file, fsync, rename): at start, with the new
 * life's number, and whenever the ring formed a higher time, before the effects that could
 * carry that id leave the process.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';

interface KeptRingIdentity {
  incarnation: number;
  ringTimeFloor: number;
}

/** This life's identity for the ring (its TotemOptions), and where its formed ring times go. */
export interface RingIdentity extends KeptRingIdentity {
  /** Before effects leave the process: makes the ring's highest formed time durable if it is new. */
  keep(formedRingTime: number): void;
}

/** Ring times are int32 in group ids, below the group layer's transitional bit (bit 31). */
const RING_TIME_MAX = 0x7fffffff;
const INCARNATION_MAX = 0xffffffff;

/** `<dir>/tspread-<name>-<port>.ring-identity`: name and port tell apart the daemons of one host. */
export function ringIdentityPath(dir: string, daemonName: string, port: number): string {
  return join(dir, `tspread-${daemonName}-${port}.ring-identity`);
}

export class RingIdentityFile implements RingIdentity {
  readonly incarnation: number;
  readonly ringTimeFloor: number;
  private keptRingTime: number;

  private constructor(
    readonly path: string,
    incarnation: number,
    ringTimeFloor: number,
  ) {
    this.incarnation = incarnation;
    this.ringTimeFloor = ringTimeFloor;
    this.keptRingTime = ringTimeFloor;
  }

  /**
   * Starts a new life: one more than the last life's number (a first start, or a lost file,
   * takes a random one), written back before this returns. Throws when the file cannot be read as one of ours or written.
   */
  static open(path: string, random: () => number): RingIdentityFile {
    const previous = readKept(path);
    const incarnation = previous === null ? randomIncarnation(random) : (previous.incarnation % INCARNATION_MAX) + 1;
    const file = new RingIdentityFile(path, incarnation, previous?.ringTimeFloor ?? 0);
    writeKept(path, { incarnation, ringTimeFloor: file.ringTimeFloor });
    return file;
  }

  keep(formedRingTime: number): void {
    if (formedRingTime <= this.keptRingTime) return;
    writeKept(this.path, { incarnation: this.incarnation, ringTimeFloor: formedRingTime });
    this.keptRingTime = formedRingTime;
  }
}

/** Nothing kept (no state directory, or its file unusable): a random incarnation, and ring ids rest on the clock. */
export function unkeptRingIdentity(random: () => number): RingIdentity {
  return { incarnation: randomIncarnation(random), ringTimeFloor: 0, keep: () => {} };
}

/** Random, so that it hardly ever meets the number of a life nothing was kept of. */
function randomIncarnation(random: () => number): number {
  return 1 + Math.floor(random() * (INCARNATION_MAX - 1));
}

function readKept(path: string): KeptRingIdentity | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = null;
  }
  const { incarnation, ringTime } = (parsed ?? {}) as { incarnation?: unknown; ringTime?: unknown };
  if (!isIntegerIn(incarnation, 1, INCARNATION_MAX) || !isIntegerIn(ringTime, 0, RING_TIME_MAX)) {
    throw new Error(`${path} does not hold a ring identity ({"incarnation": 1..${INCARNATION_MAX}, "ringTime": 0..${RING_TIME_MAX}})`);
  }
  return { incarnation, ringTimeFloor: ringTime };
}

function writeKept(path: string, kept: KeptRingIdentity): void {
  const temporary = `${path}.tmp`;
  const fd = openSync(temporary, 'w', 0o644);
  try {
    writeSync(fd, `${JSON.stringify({ incarnation: kept.incarnation, ringTime: kept.ringTimeFloor })}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, path);
}

function isIntegerIn(value: unknown, min: number, max: number): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max;
}
