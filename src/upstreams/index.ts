/** Builds the upstream implementation for each [[upstream]] table. */
import type { UpstreamConfig } from '../config/types.js';
import { MaildirUpstream } from './maildir.js';
import { SmtpUpstream } from './smtp.js';
import type { Upstream } from './types.js';

export function createUpstream(config: UpstreamConfig, hostname: string): Upstream {
  switch (config.type) {
    case 'smtp':
      return new SmtpUpstream(config, hostname);
    case 'maildir':
      return new MaildirUpstream(config);
  }
}

/** Where an upstream sends mail, for logs and status output. */
export function upstreamTarget(config: UpstreamConfig): string {
  switch (config.type) {
    case 'smtp':
      return `${config.host}:${config.port} (${config.tls})`;
    case 'maildir':
      return config.path;
  }
}
