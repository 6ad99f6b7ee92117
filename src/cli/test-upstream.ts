/**
 * `mailshim test-upstream [NAME] [--send-to ADDR] [--from ADDR]`: runs each upstream's check()
 * (connect, TLS, auth; a REST provider's cheapest authenticated call) with timings, diagnoses
 * failures, and with --send-to sends a real test message. Exit: 0 all good, 69 unreachable,
 * 75 temporary failure, 65 refused (permanent), 78 configuration (TLS pairing, certificate,
 * credentials, sender), 64 unknown upstream, 1 an upstream type without a check.
 */
import { randomBytes } from 'node:crypto';
import type { Config, UpstreamConfig } from '../config/types.js';
import { bufferBody } from '../message/body.js';
import { rfc5322Date } from '../message/headers.js';
import { createUpstream, upstreamTarget } from '../upstreams/index.js';
import type { OutboundMessage } from '../upstreams/types.js';
import { diagnose } from './diagnose.js';
import { webhookInstructions } from './events.js';
import { CommandError, EXIT } from './exit.js';

export interface TestUpstreamOptions {
  name?: string;
  sendTo?: string;
  from?: string;
  out: NodeJS.WritableStream;
}

function testMessage(config: Config, upstream: UpstreamConfig, from: string, to: string): OutboundMessage {
  const id = randomBytes(8).toString('hex');
  const raw = [
    `From: mailshim <${from}>`,
    `To: <${to}>`,
    `Subject: mailshim test message from ${config.hostname} via ${upstream.name}`,
    `Date: ${rfc5322Date()}`,
    `Message-ID: <test.${id}@${config.hostname}>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=us-ascii',
    'Auto-Submitted: auto-generated',
    '',
    `This message was sent by \`mailshim test-upstream\` on ${config.hostname}`,
    `through the upstream "${upstream.name}" (${upstream.type} ${upstreamTarget(upstream)}).`,
    'If you can read it, delivery through this upstream works.',
    '',
  ].join('\r\n');
  return { id: `test-${id}`, sender: from, recipients: [to], body: bufferBody(Buffer.from(raw)), messageId: `<test.${id}@${config.hostname}>` };
}

export async function testUpstreams(config: Config, options: TestUpstreamOptions): Promise<number> {
  const selected = options.name === undefined ? config.upstreams : config.upstreams.filter((u) => u.name === options.name);
  if (selected.length === 0) {
    throw new CommandError(EXIT.USAGE, `no upstream named "${options.name}"; configured: ${config.upstreams.map((u) => u.name).join(', ')}`);
  }
  let exitCode: number = EXIT.OK;
  for (const upstreamConfig of selected) {
    const upstream = await createUpstream(upstreamConfig, config.hostname);
    options.out.write(`${upstreamConfig.name}: ${upstreamConfig.type} ${upstreamTarget(upstreamConfig)}\n`);
    try {
      if (!upstream.check) {
        options.out.write(`  no check available for type "${upstream.type}"\n`);
        if (exitCode === EXIT.OK) exitCode = EXIT.NOTHING_DONE;
        continue;
      }
      const send = options.sendTo ? testMessage(config, upstreamConfig, options.from ?? config.bounceFrom, options.sendTo) : undefined;
      const steps = await upstream.check({ send, from: options.from });
      for (const step of steps) {
        options.out.write(`  ${step.ok ? 'ok  ' : 'FAIL'} ${step.name} (${step.durationMs} ms): ${step.detail.replace(/\s+/g, ' ').trim()}\n`);
        if (step.ok && step.advice) options.out.write(`       ! ${step.advice}\n`);
        if (!step.ok && step.failure) {
          const diagnosis = diagnose(step.failure, upstreamConfig);
          options.out.write(`       → ${step.advice ?? diagnosis.advice}\n`);
          if (exitCode === EXIT.OK || exitCode === EXIT.NOTHING_DONE) exitCode = diagnosis.exitCode;
        }
      }
      const failed = steps.some((s) => !s.ok);
      options.out.write(failed ? '  result: FAILED\n' : `  result: OK${send ? ` — test message sent to <${options.sendTo}>` : ''}\n`);
      for (const line of webhookInstructions(config, upstreamConfig)) options.out.write(`  ${line}\n`);
    } finally {
      await upstream.close();
    }
  }
  return exitCode;
}
