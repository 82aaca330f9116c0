/**
 * Node TLS servers of a test farm and a client that starts or resumes a session
 * on them (one short HTTP/1.0 exchange, so TLS 1.3 tickets arrive first).
 */
import * as https from 'node:https';
import * as tls from 'node:tls';
import { constants } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { TestCertificate } from './tls-tools.js';

/** An HTTPS server on 127.0.0.1 (any port); `sessionIds` turns tickets off so resumption goes through the session cache. */
export async function startHttpsServer(
  certificate: TestCertificate,
  settings: { sessionIds?: boolean } = {},
): Promise<{ server: https.Server; port: number; options: https.ServerOptions }> {
  const options: https.ServerOptions = {
    cert: readFileSync(certificate.certFile),
    key: readFileSync(certificate.keyFile),
    sessionIdContext: 'tspread-test-farm',
    secureOptions: settings.sessionIds ? constants.SSL_OP_NO_TICKET : 0,
  };
  const server = https.createServer(options, (request, response) => response.end('hello from the farm\n'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port, options };
}

export interface Handshake {
  reused: boolean;
  /** The session to resume next (the last one the server sent). */
  session: Buffer | undefined;
  body: string;
}

export function handshake(port: number, version: 'TLSv1.2' | 'TLSv1.3', session?: Buffer): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    let latest: Buffer | undefined;
    let body = '';
    let reused = false;
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false, minVersion: version, maxVersion: version, session });
    socket.on('session', (data: Buffer) => (latest = data));
    socket.once('secureConnect', () => {
      reused = socket.isSessionReused();
      socket.end('GET / HTTP/1.0\r\n\r\n');
    });
    socket.setEncoding('utf8').on('data', (text: string) => (body += text));
    socket.once('error', reject);
    socket.once('close', () => resolve({ reused, session: latest, body }));
  });
}
