/**
 * The access-control file that spread.conf's `AccessControlFile` names: who may connect,
 * join and multicast to which groups. Pure: the daemon reads (and re-reads) the file.
 *
 * One rule per line, `#` starts a comment; the first rule that matches decides:
 *   allow|deny  <subject>  connect
 *   allow|deny  <subject>  join|multicast|*  <group pattern>
 *   default allow|deny                        (when no rule matches; allow if absent)
 * Subjects: `*`, `user:PATTERN` (PWORD user), `cert:PATTERN` (a verified client
 * certificate's subject CN), `ip:a.b.c.d[/prefix]`, `unix` (Unix-socket sessions), `tls`
 * (any TLS session), `name:PATTERN` (the private name the client chose).
 * Patterns: `*` any run of characters, `?` one character, everything else itself.
 * A multicast to several groups needs every one of them allowed.
 */
import { parseIpv4Number } from '../daemon/access-ip.js';

export type AccessAction = 'connect' | 'join' | 'multicast';

/** What the daemon knows about a session when it asks. */
export interface SessionPrincipal {
  privateName: string;
  /** PWORD user, when that method ran. */
  user: string | null;
  /** Subject CN of a verified TLS client certificate. */
  certificate: string | null;
  tls: boolean;
  /** IPv4 address (IPv4-mapped IPv6 already unwrapped) or null (Unix socket, IPv6). */
  ipv4: number | null;
  unix: boolean;
}

type SubjectMatcher = (who: SessionPrincipal) => boolean;

interface Rule {
  allow: boolean;
  subject: SubjectMatcher;
  action: AccessAction | '*';
  group: RegExp | null;
  line: number;
}

export interface AccessControl {
  rules: Rule[];
  defaultAllow: boolean;
}

export interface AccessDecision {
  allowed: boolean;
  /** 'line N' of the deciding rule, or 'default'. */
  by: string;
}

export class AccessControlFileError extends Error {}

/** `*` and `?` globs, anchored; everything else literal. */
export function globPattern(glob: string): RegExp {
  const escaped = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${escaped}$`, 's');
}

function subjectMatcher(text: string, where: string): SubjectMatcher {
  if (text === '*') return () => true;
  if (text === 'unix') return (who) => who.unix;
  if (text === 'tls') return (who) => who.tls;
  const colon = text.indexOf(':');
  const kind = colon < 0 ? text : text.slice(0, colon);
  const value = text.slice(colon + 1);
  switch (kind) {
    case 'user': {
      const pattern = globPattern(value);
      return (who) => who.user !== null && pattern.test(who.user);
    }
    case 'cert': {
      const pattern = globPattern(value);
      return (who) => who.certificate !== null && pattern.test(who.certificate);
    }
    case 'name': {
      const pattern = globPattern(value);
      return (who) => pattern.test(who.privateName);
    }
    case 'ip': {
      const [address, prefixText] = value.split('/');
      const network = parseIpv4Number(address);
      const prefix = prefixText === undefined ? 32 : Number(prefixText);
      if (network === null || !Number.isInteger(prefix) || prefix < 0 || prefix > 32) {
        throw new AccessControlFileError(`${where}: bad address '${value}' (expected a.b.c.d or a.b.c.d/prefix)`);
      }
      const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
      return (who) => who.ipv4 !== null && ((who.ipv4 & mask) >>> 0) === ((network & mask) >>> 0);
    }
    default:
      throw new AccessControlFileError(`${where}: unknown subject '${text}' (expected *, user:, cert:, name:, ip:, unix or tls)`);
  }
}

export function parseAccessControl(text: string, source: string): AccessControl {
  const rules: Rule[] = [];
  let defaultAllow = true;
  const lines = text.split('\n');
  for (let index = 0; index < lines.length; index++) {
    const words = lines[index].replace(/#.*$/, '').trim().split(/\s+/).filter((word) => word !== '');
    if (words.length === 0) continue;
    const where = `${source}:${index + 1}`;
    const [verdict, subject, action, group, ...extra] = words;
    if (verdict === 'default') {
      if ((subject !== 'allow' && subject !== 'deny') || words.length !== 2) throw new AccessControlFileError(`${where}: expected 'default allow' or 'default deny'`);
      defaultAllow = subject === 'allow';
      continue;
    }
    if (verdict !== 'allow' && verdict !== 'deny') throw new AccessControlFileError(`${where}: a rule starts with allow, deny or default`);
    if (subject === undefined || action === undefined || extra.length > 0) throw new AccessControlFileError(`${where}: expected '${verdict} <subject> <action> [<group pattern>]'`);
    if (action !== 'connect' && action !== 'join' && action !== 'multicast' && action !== '*') {
      throw new AccessControlFileError(`${where}: unknown action '${action}' (connect, join, multicast or *)`);
    }
    if (action === 'connect' && group !== undefined) throw new AccessControlFileError(`${where}: connect takes no group pattern`);
    if ((action === 'join' || action === 'multicast') && group === undefined) throw new AccessControlFileError(`${where}: ${action} needs a group pattern`);
    rules.push({
      allow: verdict === 'allow',
      subject: subjectMatcher(subject, where),
      action,
      group: group === undefined ? null : globPattern(group),
      line: index + 1,
    });
  }
  return { rules, defaultAllow };
}

/** The first matching rule's verdict. `group` is ignored for connect. */
export function decideAccess(control: AccessControl, who: SessionPrincipal, action: AccessAction, group: string | null = null): AccessDecision {
  for (const rule of control.rules) {
    if (rule.action !== '*' && rule.action !== action) continue;
    if (action !== 'connect' && rule.group !== null && (group === null || !rule.group.test(group))) continue;
    if (!rule.subject(who)) continue;
    return { allowed: rule.allow, by: `line ${rule.line}` };
  }
  return { allowed: control.defaultAllow, by: 'default' };
}
