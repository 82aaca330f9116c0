/**
 * The password file of the PWORD method (spread.conf `PasswordFile`). Pure parsing; the
 * check hashes with scrypt (node:crypto), so no password is stored in the clear.
 *
 * One user per line, `#` starts a comment:
 *   <user>:scrypt:<cost N>:<salt hex>:<hash hex>
 * `tspread password-hash <user>` prints such a line. The cost is kept low (default 4096)
 * because the check runs on the daemon's event loop during a handshake: a few ms.
 */
import { randomBytes, scryptSync, timingSafeEqual } from 'node:crypto';
import { PWORD_FIELD_BYTES } from '../protocol/constants.js';
export const SCRYPT_COST_DEFAULT = 4096;
const HASH_BYTES = 32;

interface PasswordEntry {
  cost: number;
  salt: Buffer;
  hash: Buffer;
}

export type PasswordTable = Map<string, PasswordEntry>;

export class PasswordFileError extends Error {}

export function parsePasswords(text: string, source: string): PasswordTable {
  const table: PasswordTable = new Map();
  const lines = text.split('\n');
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index].replace(/#.*$/, '').trim();
    if (line === '') continue;
    const where = `${source}:${index + 1}`;
    const [user, scheme, costText, saltHex, hashHex, ...extra] = line.split(':');
    const cost = Number(costText);
    if (scheme !== 'scrypt' || extra.length > 0 || hashHex === undefined || !/^[0-9a-f]+$/i.test(saltHex) || !/^[0-9a-f]{64}$/i.test(hashHex)) {
      throw new PasswordFileError(`${where}: expected '<user>:scrypt:<N>:<salt hex>:<hash hex>'`);
    }
    if (!Number.isInteger(cost) || cost < 2 || (cost & (cost - 1)) !== 0 || cost > 1 << 20) throw new PasswordFileError(`${where}: scrypt cost must be a power of two`);
    if (user === '' || Buffer.byteLength(user) > PWORD_FIELD_BYTES - 1) throw new PasswordFileError(`${where}: user name must be 1..${PWORD_FIELD_BYTES - 1} bytes`);
    if (table.has(user)) throw new PasswordFileError(`${where}: user '${user}' given twice`);
    table.set(user, { cost, salt: Buffer.from(saltHex, 'hex'), hash: Buffer.from(hashHex, 'hex') });
  }
  return table;
}

/** A password-file line for `user` (new random salt). */
export function passwordLine(user: string, password: string, cost = SCRYPT_COST_DEFAULT): string {
  const salt = randomBytes(16);
  const hash = scryptSync(password, salt, HASH_BYTES, { N: cost });
  return `${user}:scrypt:${cost}:${salt.toString('hex')}:${hash.toString('hex')}`;
}

/** PWORD checks a daemon runs per second at most (each is a few ms of scrypt on its event loop). */
export const PASSWORD_CHECKS_PER_SECOND_MAX = 20;

/** A token bucket: at most `perSecond` checks a second, bursts of as many. */
export function passwordCheckLimiter(clock: () => number, perSecond = PASSWORD_CHECKS_PER_SECOND_MAX): () => boolean {
  let tokens = perSecond;
  let lastMs = clock();
  return () => {
    const now = clock();
    tokens = Math.min(perSecond, tokens + ((now - lastMs) / 1000) * perSecond);
    lastMs = now;
    if (tokens < 1) return false;
    tokens -= 1;
    return true;
  };
}

export function checkPassword(table: PasswordTable, user: string, password: string): boolean {
  const entry = table.get(user);
  if (entry === undefined) return false;
  const hash = scryptSync(password, entry.salt, HASH_BYTES, { N: entry.cost });
  return timingSafeEqual(hash, entry.hash);
}
