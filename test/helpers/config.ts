/** Builds test configs: a daemon on an ephemeral loopback port relaying to a capture server. */
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';

/** The problems a config that must be refused is refused with (fails the test when it parses). */
export function configProblems(source: string, file = 'mailshim.toml', env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseConfig(source, file, env);
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error.problems;
  }
  assert.fail('expected a ConfigError');
}

export interface TestConfigOptions {
  spool: string;
  upstreamPort?: number;
  upstreamExtra?: string;
  listenExtra?: string;
  allow?: string[];
  retry?: { initial?: string; max?: string; age?: string; delayWarning?: string };
  extra?: string;
  upstreams?: string;
  /** Body of the [local] table. */
  local?: string;
}

export function relayConfig(o: TestConfigOptions): string {
  const allow = (o.allow ?? ['127.0.0.0/8', '::1/128']).map((a) => JSON.stringify(a)).join(', ');
  return `hostname = "relay.test"
bounce_from = "postmaster@relay.test"
${o.extra ?? ''}

[spool]
path = ${JSON.stringify(o.spool)}
max_message_size = "1MB"
max_recipients = 5

[local]
${o.local ?? ''}

[submission]
socket = ${JSON.stringify(`${o.spool}.sock`)}
maildrop = ${JSON.stringify(`${o.spool}-maildrop`)}

[retry]
initial_delay = "${o.retry?.initial ?? '300ms'}"
max_delay = "${o.retry?.max ?? '1s'}"
max_age = "${o.retry?.age ?? '1h'}"
${o.retry?.delayWarning ? `delay_warning_time = "${o.retry.delayWarning}"` : ''}

[log]
level = "debug"

[[listen]]
address = "127.0.0.1:0"
allow = [${allow}]
${o.listenExtra ?? ''}

${
  o.upstreams ??
  `[[upstream]]
name = "capture"
type = "smtp"
host = "127.0.0.1"
port = ${o.upstreamPort ?? 1}
tls = "none"
timeout = "5s"
${o.upstreamExtra ?? ''}`
}
`;
}
