/**
 * Reserved words of spread.conf (§8.1). They are lexed as keywords, so none of them can be
 * a bare daemon name (a quoted string can).
 */

export const TIMEOUT_KEYWORDS = [
  'TokenTimeout', 'HurryTimeout', 'AliveTimeout', 'JoinTimeout', 'RepTimeout',
  'SegTimeout', 'GatherTimeout', 'FormTimeout', 'LookupTimeout',
] as const;

/** tspread's own parameters; see the extension block at the top of parser.ts. */
export const TSPREAD_PARAMETER_KEYWORDS = ['MaxSessionBytes', 'MaxMessageBytes', 'DatagramBytes'] as const;

/** tspread's security parameters (docs/security.md); see the extension block at the top of parser.ts. */
export const SECURITY_PARAMETER_KEYWORDS = [
  'RingKeyFile', 'TlsPort', 'TlsCertificateFile', 'TlsKeyFile', 'TlsCaFile', 'TlsClientCertificates',
  'RequireTls', 'PasswordFile', 'AccessControlFile',
] as const;

export const PARAMETER_KEYWORDS = [
  'DebugFlags', 'EventPriority', 'EventLogFile', 'EventTimeStamp', 'EventPreciseTimeStamp',
  'DangerousMonitor', 'SocketPortReuse', 'RuntimeDir', 'DaemonUser', 'DaemonGroup',
  'AllowedAuthMethods', 'RequiredAuthMethods', 'AccessControlPolicy', 'MaxSessionMessages',
  'ActiveIPVersion', 'Window', 'PersonalWindow', 'AcceleratedRing', 'AcceleratedWindow',
  'WideAreaNetwork', 'ExcludeSegAddrsFromHash', 'IgnoreMulticastJoinErrors',
  ...TIMEOUT_KEYWORDS,
  ...TSPREAD_PARAMETER_KEYWORDS,
  ...SECURITY_PARAMETER_KEYWORDS,
] as const;

/** In Spread's own display order; `ALL` and `NONE` are shorthands, not flags. */
export const DEBUG_FLAG_NAMES = [
  'EXIT', 'DATA_LINK', 'MEMORY', 'EVENTS', 'PRINT', 'NETWORK', 'PROTOCOL', 'SESSION',
  'CONFIGURATION', 'MEMBERSHIP', 'FLOW_CONTROL', 'STATUS', 'DEBUG', 'GROUPS', 'SKIPLIST',
  'ACM', 'SECURITY',
] as const;

export const DEBUG_FLAG_KEYWORDS = [...DEBUG_FLAG_NAMES, 'ALL', 'NONE'] as const;

export const PRIORITY_KEYWORDS = ['pDEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL', 'FATAL'] as const;

export const INTERFACE_KEYWORDS = ['M', 'C', 'D'] as const;

/** Matched in any letter case; the lexer hands them on in lower case. */
export const CASE_INSENSITIVE_KEYWORDS = ['true', 'yes', 'false', 'no', 'on', 'off', 'auto'] as const;

const CASE_SENSITIVE_KEYWORDS: ReadonlySet<string> = new Set<string>([
  'Spread_Segment', 'VirtualID',
  ...PARAMETER_KEYWORDS, ...DEBUG_FLAG_KEYWORDS, ...PRIORITY_KEYWORDS, ...INTERFACE_KEYWORDS,
]);

const LOWERCASE_KEYWORDS: ReadonlySet<string> = new Set<string>(CASE_INSENSITIVE_KEYWORDS);

/** The keyword `word` spells, normalised, or null when it is an ordinary word. */
export function keywordOf(word: string): string | null {
  if (CASE_SENSITIVE_KEYWORDS.has(word)) return word;
  const lower = word.toLowerCase();
  return LOWERCASE_KEYWORDS.has(lower) ? lower : null;
}

export function isParameterKeyword(word: string): word is (typeof PARAMETER_KEYWORDS)[number] {
  return (PARAMETER_KEYWORDS as readonly string[]).includes(word);
}
