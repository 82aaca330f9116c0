/**
 * Hand-fed group layers: N daemons' GroupLayers driven by ring event streams the test
 * writes itself (which daemons see which ordered event), with every write to a local
 * session decoded by the client library's decoder and recorded for the EVS checker.
 *
 * Ordering is the test's job: `deliver(to, …)` hands the same event to each daemon in
 * `to`, in that order, so the test stands in for the ring's total order and EVS. GROUPS
 * messages the layers ask to submit wait in `pending` until `settle(to)` orders them.
 */
import { ClientLogCollection, type ClientLogRecorder, payloadWithId } from '../../src/checker/index.js';
import { decodeMessage, type Message, SERVICE_BITS, type Service } from '../../src/client/messages.js';
import { GroupLayer, type GroupOutput, type LocalSessionRef } from '../../src/groups/group-layer.js';
import { encodeJoin, encodeKill, encodeLeave } from '../../src/groups/ring-message.js';
import { ServiceType } from '../../src/protocol/constants.js';
import { Framer } from '../../src/protocol/framer.js';
import { encodeHint } from '../../src/protocol/header.js';
import { encodeMessage } from '../../src/protocol/message.js';
import type { MembershipId, RingEvent } from '../../src/ring/types.js';

export interface HandClient {
  name: string;
  privateGroup: string;
  vid: number;
  session: number;
  recorder: ClientLogRecorder;
  framer: Framer;
  received: Message[];
  closed: boolean;
}

export interface HandDaemon {
  name: string;
  vid: number;
  layer: GroupLayer;
  sessions: Map<string, LocalSessionRef>;
  /** GROUPS payloads submitted and not yet ordered. */
  pending: Uint8Array[];
  /** Raw outputs, for byte-level assertions. */
  outputs: GroupOutput[];
}

export class HandCluster {
  readonly daemons: HandDaemon[];
  readonly logs = new ClientLogCollection();
  readonly clients = new Map<string, HandClient>();
  private readonly bySession = new Map<number, HandClient>();
  private nextSession = 1;
  private seq = 0;

  constructor(names: string[], vids: number[] = names.map((_, i) => 0x0a000001 + i)) {
    const positions = new Map(vids.map((vid, i) => [vid, i]));
    this.daemons = names.map((name, i) => {
      const sessions = new Map<string, LocalSessionRef>();
      const layer = new GroupLayer({
        myVid: vids[i],
        daemonPosition: (vid) => positions.get(vid),
        sessions: { byPrivateGroup: (group) => sessions.get(group) },
      });
      return { name, vid: vids[i], layer, sessions, pending: [], outputs: [] };
    });
  }

  vid(daemon: number): number {
    return this.daemons[daemon].vid;
  }

  vids(daemons: number[]): number[] {
    return daemons.map((d) => this.vid(d));
  }

  /** A client with the membership flag on daemon `daemon`. */
  connect(name: string, daemon: number): HandClient {
    const d = this.daemons[daemon];
    const privateGroup = `#${name}#${d.name}`;
    const session = this.nextSession++;
    d.sessions.set(privateGroup, { id: session, membership: true });
    const client: HandClient = {
      name,
      privateGroup,
      vid: d.vid,
      session,
      recorder: this.logs.open({ privateGroup, daemon: d.name }),
      framer: new Framer({ groupsMax: 1000, dataBytesMax: 1 << 20, bodyBytesMax: 1 << 21, rejectCarriesOldType: true }),
      received: [],
      closed: false,
    };
    this.clients.set(name, client);
    this.bySession.set(session, client);
    return client;
  }

  /** Hands one ordered event to each listed daemon, in order. */
  event(to: number[], event: RingEvent): void {
    for (const index of to) {
      const daemon = this.daemons[index];
      const out: GroupOutput[] = [];
      daemon.layer.apply(event, out);
      this.take(daemon, out);
    }
  }

  deliver(to: number[], origin: number, payload: Uint8Array): void {
    this.event(to, { kind: 'deliver', seq: ++this.seq, origin, safe: false, payload });
  }

  join(to: number[], client: string, group: string): void {
    const c = this.client(client);
    c.recorder.joinRequested(group);
    this.deliver(to, c.vid, encodeJoin(c.privateGroup, group));
  }

  leave(to: number[], client: string, group: string): void {
    const c = this.client(client);
    c.recorder.leaveRequested(group);
    this.deliver(to, c.vid, encodeLeave(c.privateGroup, group));
  }

  /** Client disconnect: closed now, the kill ordered to `to`. */
  kill(to: number[], client: string): void {
    const c = this.client(client);
    this.close(c, 'client disconnect');
    this.deliver(to, c.vid, encodeKill(c.privateGroup));
  }

  /** A daemon crash: its clients see their connections close. */
  crash(daemon: number): void {
    for (const c of this.clients.values()) if (c.vid === this.vid(daemon)) this.close(c, 'daemon crashed');
  }

  /** Records the send and returns the payload; order it with `deliverSend`. */
  send(client: string, groups: string[], service: Service = 'agreed'): Uint8Array {
    const c = this.client(client);
    const id = c.recorder.sent({ service, groups });
    return encodeMessage({
      type: SERVICE_BITS[service],
      sender: c.privateGroup,
      groups,
      hintRaw: encodeHint(0),
      data: payloadWithId(id),
    });
  }

  multicast(to: number[], client: string, groups: string[], service: Service = 'agreed'): void {
    this.deliver(to, this.client(client).vid, this.send(client, groups, service));
  }

  transitional(to: number[], membId: MembershipId, members: number[]): void {
    this.event(to, { kind: 'transitional', membId, members: this.vids(members) });
  }

  regular(to: number[], membId: MembershipId, members: number[]): void {
    this.event(to, { kind: 'regular', membId, members: this.vids(members) });
  }

  /** A configuration change for one component: each gets its own transitional set, then the regular one. */
  configure(component: number[], membId: MembershipId, transOf: (daemon: number) => number[], transId: (daemon: number) => MembershipId): void {
    for (const d of component) this.transitional([d], transId(d), transOf(d));
    this.regular(component, membId, component);
  }

  /** Orders the pending GROUPS messages of `to`'s daemons (daemon order, FIFO) until none remain. */
  settle(to: number[]): void {
    for (let round = 0; round < 20; round++) {
      let any = false;
      for (const index of to) {
        const daemon = this.daemons[index];
        const pending = daemon.pending;
        daemon.pending = [];
        for (const payload of pending) {
          any = true;
          this.deliver(to, daemon.vid, payload);
        }
      }
      if (!any) return;
    }
    throw new Error('settle: GROUPS messages keep coming');
  }

  client(name: string): HandClient {
    const c = this.clients.get(name);
    if (!c) throw new Error(`no client ${name}`);
    return c;
  }

  private close(c: HandClient, reason: string): void {
    if (c.closed) return;
    c.closed = true;
    c.recorder.closed(reason);
    for (const daemon of this.daemons) if (daemon.vid === c.vid) daemon.sessions.delete(c.privateGroup);
  }

  private take(daemon: HandDaemon, out: GroupOutput[]): void {
    for (const output of out) {
      daemon.outputs.push(output);
      if (output.kind === 'submit') {
        daemon.pending.push(output.payload);
        continue;
      }
      if (output.kind !== 'write') continue;
      for (const session of output.sessions) {
        const c = this.bySession.get(session);
        if (!c || c.closed) continue;
        for (const frame of c.framer.push(output.bytes)) {
          const message = decodeMessage(frame, c.privateGroup);
          if (message === null) throw new Error(`undecodable message to ${c.privateGroup}`);
          c.received.push(message);
          c.recorder.received(message);
        }
      }
    }
  }
}

export { ServiceType };
