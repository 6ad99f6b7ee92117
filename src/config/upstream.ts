/** Validation of one [[upstream]] table, per type. */
import type { TableReader } from './reader.js';
import type { TlsMode, UpstreamConfig } from './types.js';

export const UPSTREAM_TYPES = ['smtp', 'maildir'] as const;

const DEFAULT_PORTS: Record<TlsMode, number> = { starttls: 587, implicit: 465, none: 25 };

export function readUpstream(table: TableReader, index: number): UpstreamConfig | undefined {
  const name = table.string('name', index === 0 ? 'primary' : `upstream${index + 1}`);
  const type = table.required('type');
  const common = {
    name,
    matchFrom: table.stringList('match_from', []),
    maxConcurrency: table.integer('max_concurrency', 1, 1000, 5),
    timeout: table.duration('timeout', 60_000),
  };
  let upstream: UpstreamConfig | undefined;
  switch (type) {
    case 'smtp': {
      const tls = table.oneOf('tls', ['starttls', 'implicit', 'none'] as const, 'starttls');
      const host = table.required('host') ?? '';
      const caFile = table.path_('ca_file');
      const username = table.string('username');
      const password = table.secret('password');
      if (password !== undefined && username === undefined) table.problem('username', 'is required when a password is set');
      upstream = {
        ...common,
        type: 'smtp',
        host,
        port: table.integer('port', 1, 65535, DEFAULT_PORTS[tls]),
        tls,
        username,
        password,
        ca: caFile ? table.readFile('ca_file', caFile) : undefined,
      };
      break;
    }
    case 'maildir': {
      const path = table.path_('path');
      if (path === undefined) table.problem('path', 'is required');
      upstream = { ...common, type: 'maildir', path: path ?? '' };
      break;
    }
    case undefined:
      break;
    default:
      table.problem('type', `expected one of ${UPSTREAM_TYPES.map((t) => `"${t}"`).join(', ')}, got ${JSON.stringify(type)}`);
  }
  table.finish();
  return upstream;
}
