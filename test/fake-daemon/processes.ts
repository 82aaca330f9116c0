/**
 * Runs `tspread` tool processes from dist/ for tool tests: builds dist first when
 * any source file is newer, collects output and waits for patterns in it.
 */
import { spawn, execFileSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** The repository, whether this runs from test/ (vitest) or dist/test/ (compiled benches). */
export const ROOT = path.basename(HERE_ROOT) === 'dist' ? path.dirname(HERE_ROOT) : HERE_ROOT;
export const CLI = path.join(ROOT, 'dist/src/tools/cli.js');

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(full));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, fs.statSync(full).mtimeMs);
  }
  return newest;
}

/** Compiles the project unless dist/ is newer than every file under src/. */
export function ensureBuilt(): void {
  const built = fs.existsSync(CLI) ? fs.statSync(CLI).mtimeMs : 0;
  if (built >= newestMtime(path.join(ROOT, 'src'))) return;
  try {
    execFileSync('npx', ['tsc', '-p', '.'], { cwd: ROOT, stdio: 'pipe' });
  } catch {
    // Type errors elsewhere in the tree still emit JavaScript; the tests will tell.
  }
}

/** A running tool process with its collected output. */
export class ToolProcess {
  readonly child: ChildProcessWithoutNullStreams;
  stdout = '';
  stderr = '';
  readonly exited: Promise<number | null>;

  /** Runs `tspread` with `args`, or another built script of the repository (a test fixture). */
  constructor(args: string[], script: string = CLI) {
    this.child = spawn(process.execPath, [script, ...args], { cwd: ROOT, stdio: 'pipe' });
    this.child.stdout.setEncoding('utf8').on('data', (text: string) => (this.stdout += text));
    this.child.stderr.setEncoding('utf8').on('data', (text: string) => (this.stderr += text));
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => resolve(code)));
  }

  /** Writes lines to stdin. */
  send(...lines: string[]): void {
    this.child.stdin.write(lines.map((line) => `${line}\n`).join(''));
  }

  /** Resolves once stdout matches `pattern` (counting from offset `from`). */
  async waitFor(pattern: RegExp | string, timeoutMs = 10_000, from = 0): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const text = this.stdout.slice(from);
      if (typeof pattern === 'string' ? text.includes(pattern) : pattern.test(text)) return text;
      if (Date.now() > deadline) {
        throw new Error(`timed out waiting for ${String(pattern)}\nstdout:\n${this.stdout}\nstderr:\n${this.stderr}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  kill(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}
