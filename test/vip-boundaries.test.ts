// src/apps/vip uses tspread only through the public client API (src/client/index.ts), so it
// runs against a Spread 5.0.1 daemon too; the library entry `tspread/vip` is in package.json.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const FOLDER = 'src/apps/vip';
const ALLOWED_PACKAGES = ['commander', 'pino', 'prom-client'];

describe('vip boundaries', () => {
  it('imports only the public client API, its own modules, Node and its three packages', () => {
    const offences: string[] = [];
    for (const name of readdirSync(FOLDER).filter((file) => file.endsWith('.ts'))) {
      const code = readFileSync(join(FOLDER, name), 'utf8');
      for (const [, source] of code.matchAll(/from '([^']+)'/g)) {
        const ok =
          source === '../../client/index.js' ||
          /^\.\/[\w-]+\.js$/.test(source) ||
          source.startsWith('node:') ||
          ALLOWED_PACKAGES.includes(source);
        if (!ok) offences.push(`${name}: ${source}`);
      }
    }
    expect(offences).toEqual([]);
  });

  it('is exported as tspread/vip', () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { exports: Record<string, string> };
    expect(pkg.exports['./vip']).toBe('./dist/src/apps/vip/index.js');
    expect(pkg.exports['.']).toBe('./dist/src/client/index.js');
  });
});
