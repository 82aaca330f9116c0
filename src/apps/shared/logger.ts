/** The logging the apps need; a pino logger fits, and so does a no-op for library users. */
export interface Logger {
  info(details: object, message?: string): void;
  warn(details: object, message?: string): void;
  error(details: object, message?: string): void;
}

export const silentLogger: Logger = { info() {}, warn() {}, error() {} };

/** Retries after a failure wait this long, doubling up to RETRY_MS_MAX. */
export const RETRY_MS_MIN = 100;
export const RETRY_MS_MAX = 2000;

export function nextRetryMs(previous: number): number {
  return Math.min(RETRY_MS_MAX, Math.max(RETRY_MS_MIN, previous * 2));
}

export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
