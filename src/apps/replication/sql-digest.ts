/**
 * A digest of a database's whole content (schema, then every table's rows in a fixed order),
 * the same for two databases exactly when a `.dump` of each would list the same things: what
 * `.digest` prints and what tests compare across replicas.
 */
import { createHash } from 'node:crypto';
import type Database from 'better-sqlite3';

export function databaseDigest(db: Database.Database): string {
  const hash = createHash('sha256');
  const schema = db.prepare('SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name').all() as { type: string; name: string }[];
  hash.update(JSON.stringify(schema));
  for (const { type, name } of schema) {
    if (type !== 'table' || name.startsWith('sqlite_')) continue;
    const columns = (db.prepare(`SELECT count(*) FROM pragma_table_info(?)`).pluck().get(name) as number) || 1;
    const order = Array.from({ length: columns }, (_, index) => index + 1).join(', ');
    hash.update(`\ntable ${name}\n`);
    for (const row of db.prepare(`SELECT * FROM "${name.replaceAll('"', '""')}" ORDER BY ${order}`).raw().iterate()) {
      hash.update(JSON.stringify(row, (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value)));
      hash.update('\n');
    }
  }
  return hash.digest('hex');
}
