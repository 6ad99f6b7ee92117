/** The effective config as printable TOML-ish text with every secret masked. */
import { stringify } from 'smol-toml';
import { SECRET_KEYS, type Config } from './types.js';
import { formatDuration } from './units.js';

export function maskedConfig(config: Config): string {
  const out = {
    hostname: config.hostname,
    bounce_from: config.bounceFrom,
    spool: {
      path: config.spool.path,
      max_message_size: config.spool.maxMessageSize,
      max_recipients: config.spool.maxRecipients,
    },
    retry: {
      initial_delay: formatDuration(config.retry.initialDelay),
      max_delay: formatDuration(config.retry.maxDelay),
      max_age: formatDuration(config.retry.maxAge),
    },
    log: { level: config.log.level },
    listen: config.listen.map((l) => ({ address: l.address, allow: l.allow })),
    upstream: config.upstreams.map((u) => {
      const { matchFrom, maxConcurrency, timeout, ...rest } = u;
      const entry: Record<string, unknown> = {};
      for (const [key, value] of Object.entries(rest)) {
        if (value === undefined) continue;
        const snake = key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
        entry[snake] = SECRET_KEYS.has(snake) ? '********' : value;
      }
      Object.assign(entry, { match_from: matchFrom, max_concurrency: maxConcurrency, timeout: formatDuration(timeout) });
      if ('ca' in entry) entry.ca = '(PEM, ' + String(entry.ca).length + ' bytes)';
      if ('rate_limit' in entry && 'rateLimit' in u && u.rateLimit) {
        delete entry.rate_limit; // re-added last, next to the other admission settings
        entry.rate_limit = `${u.rateLimit.count}/${formatDuration(u.rateLimit.perMs).replace(/^1(?=[a-z])/, '')}`;
      }
      return entry;
    }),
  };
  return stringify(out);
}
