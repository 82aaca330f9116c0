/**
 * Finds and loads one of the optional native addons (native/*.c, built by `npm ci` when a
 * compiler is there; see native/build.mjs) from the package root: this module runs from
 * src/daemon or dist/src/daemon.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export type AddonAvailability<T> = { addon: T; reason: null } | { addon: null; reason: string };

/** `fileName`: e.g. 'udp_batch.node'. The reason says why not, for a log line. */
export function loadNativeAddon<T>(fileName: string): AddonAvailability<T> {
  const relativePath = join('native', 'build', 'Release', fileName);
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, '..', '..', relativePath), join(here, '..', '..', '..', relativePath)];
  const path = candidates.find((candidate) => existsSync(candidate));
  if (path === undefined) return { addon: null, reason: `native addon not built (${relativePath}; npm ci builds it when node-gyp can)` };
  try {
    return { addon: createRequire(import.meta.url)(path) as T, reason: null };
  } catch (error) {
    return { addon: null, reason: `native addon did not load: ${(error as Error).message}` };
  }
}
