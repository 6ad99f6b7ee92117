/**
 * The providers whose events can be polled (config/upstream.ts POLL_UNSUPPORTED names the others
 * and why), and the set of Pollers the daemon runs: started, reconfigured on SIGHUP and stopped.
 */
import type { Logger } from 'pino';
import type { RestUpstreamConfig, UpstreamConfig } from '../../config/types.js';
import type { PollableType } from '../../config/upstream.js';
import { REST_TYPES } from '../../config/types.js';
import type { EventSink } from '../listener.js';
import { brevoPoll } from './brevo.js';
import { mailgunPoll } from './mailgun.js';
import { Poller, type PollStatus } from './poller.js';
import { postmarkPoll } from './postmark.js';
import { resendPoll } from './resend.js';
import type { ListSent, PollSource } from './source.js';
import { sparkpostPoll } from './sparkpost.js';

/** A fresh source per poller (Resend's remembers which messages are settled). */
export const POLL_SOURCES: Record<PollableType, () => PollSource<never>> = {
  postmark: () => postmarkPoll,
  mailgun: () => mailgunPoll,
  sparkpost: () => sparkpostPoll,
  brevo: () => brevoPoll,
  resend: resendPoll,
};

type PollingUpstream = RestUpstreamConfig & { poll: { intervalMs: number } };

function polling(upstreams: UpstreamConfig[]): PollingUpstream[] {
  return upstreams.filter((u): u is PollingUpstream => (REST_TYPES as readonly string[]).includes(u.type) && (u as RestUpstreamConfig).poll !== undefined && u.type in POLL_SOURCES);
}

export interface PollersOptions {
  sink: EventSink;
  listSent: ListSent;
  log: Logger;
  now?: () => number;
}

export class Pollers {
  private readonly pollers = new Map<string, { poller: Poller; type: string }>();

  constructor(private readonly options: PollersOptions) {}

  /** Starts, updates and stops pollers to match the upstreams (at start and on every reload). */
  async configure(upstreams: UpstreamConfig[]): Promise<void> {
    const wanted = polling(upstreams);
    for (const [name, entry] of this.pollers) {
      const next = wanted.find((u) => u.name === name);
      if (!next || next.type !== entry.type) {
        this.pollers.delete(name);
        await entry.poller.stop();
      }
    }
    for (const upstream of wanted) {
      const existing = this.pollers.get(upstream.name);
      if (existing) {
        existing.poller.update(upstream);
        continue;
      }
      const source = POLL_SOURCES[upstream.type as PollableType]() as PollSource;
      const poller = new Poller({ upstream, source, sink: this.options.sink, listSent: this.options.listSent, log: this.options.log, now: this.options.now });
      this.pollers.set(upstream.name, { poller, type: upstream.type });
      poller.start();
      this.options.log.info(
        { event: 'poll-start', upstream: upstream.name, intervalMs: upstream.poll.intervalMs },
        `${upstream.name}: polling ${upstream.type} for events every ${Math.round(upstream.poll.intervalMs / 1000)} s`,
      );
    }
  }

  status(): PollStatus[] {
    return [...this.pollers.values()].map((p) => p.poller.snapshot());
  }

  async stop(): Promise<void> {
    await Promise.all([...this.pollers.values()].map((p) => p.poller.stop()));
    this.pollers.clear();
  }
}
