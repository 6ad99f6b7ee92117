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
      max_size: config.spool.maxSize,
    },
    retry: {
      initial_delay: formatDuration(config.retry.initialDelay),
      max_delay: formatDuration(config.retry.maxDelay),
      max_age: formatDuration(config.retry.maxAge),
      ...(config.retry.delayWarning ? { delay_warning_time: formatDuration(config.retry.delayWarning) } : {}),
    },
    log: { level: config.log.level },
    local: {
      aliases: config.local.aliases,
      ...(config.local.admin ? { admin: config.local.admin } : {}),
      ...(config.local.from ? { from: config.local.from } : {}),
      rewrite: config.local.rewrite,
      keep_original_from_as_reply_to: config.local.keepOriginalFromAsReplyTo,
      local_domains: config.local.domains,
    },
    submission: {
      socket: config.submission.socket,
      maildrop: config.submission.maildrop,
      max_connections: config.submission.maxConnections,
      max_connections_per_uid: config.submission.maxConnectionsPerUid,
      request_timeout: formatDuration(config.submission.requestTimeout),
      stream_threshold: config.submission.streamThreshold,
    },
    control: { socket: config.control.socket, mode: '0' + config.control.mode.toString(8) },
    ...(config.metrics ? { metrics: { address: config.metrics.address } } : {}),
    ...(config.events
      ? {
          events: {
            address: config.events.address,
            ...(config.events.publicUrl ? { public_url: config.events.publicUrl } : {}),
            max_body: config.events.maxBody,
            ...(config.events.snsOrigin ? { sns_certificate_origin: config.events.snsOrigin } : {}),
          },
        }
      : {}),
    listen: config.listen.map((l) => {
      const entry: Record<string, unknown> = {
        address: l.address,
        allow: l.allow,
        tls: l.tls,
        cert: l.cert,
        key: l.key,
        tls_min_version: l.tlsMinVersion,
        auth: l.auth,
        users_file: l.usersFile,
        require_tls_for_auth: l.requireTlsForAuth,
        max_connections: l.maxConnections,
        max_connections_per_ip: l.maxConnectionsPerIp,
        rate_limit: l.rateLimit ? `${l.rateLimit.count}/${formatDuration(l.rateLimit.perMs).replace(/^1/, '')}` : undefined,
        allowed_senders: l.allowedSenders,
        idle_timeout: formatDuration(l.idleTimeout),
        bare_newline: l.bareNewline,
        greet_pause: l.greetPause ? formatDuration(l.greetPause) : undefined, // 0 (off) is the default and no valid duration
      };
      for (const key of Object.keys(entry)) if (entry[key] === undefined) delete entry[key];
      return entry;
    }),
    upstream: config.upstreams.map((u) => {
      const { matchFrom, maxConcurrency, timeout, ...rest } = u;
      const entry: Record<string, unknown> = {};
      for (const [key, value] of Object.entries(rest)) {
        if (value === undefined) continue;
        const snake = key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
        entry[snake] = SECRET_KEYS.has(snake) ? '********' : value;
      }
      Object.assign(entry, { match_from: matchFrom, max_concurrency: maxConcurrency, timeout: formatDuration(timeout) });
      delete entry.ca; // the PEM text: ca_file (its path) is what loads back
      if ('rate_limit' in entry && 'rateLimit' in u && u.rateLimit) {
        delete entry.rate_limit; // re-added last, next to the other admission settings
        entry.rate_limit = `${u.rateLimit.count}/${formatDuration(u.rateLimit.perMs).replace(/^1(?=[a-z])/, '')}`;
      }
      return entry;
    }),
  };
  return stringify(out);
}
