/**
 * One daemon session for several users of `connect`: callers asking while a
 * session is open (or opening) get that one; after it closes, the next caller
 * opens a new one. So two replicated groups of one server share a session and
 * reconnect together.
 */
import type { Session } from '../../client/index.js';

export function sharedConnector(connect: () => Promise<Session>): () => Promise<Session> {
  let current: Promise<Session> | null = null;
  return () => {
    current ??= connect().then(
      (session) => {
        void session.closed().then(() => (current = null));
        return session;
      },
      (error: unknown) => {
        current = null;
        throw error;
      },
    );
    return current;
  };
}
