/** What the control socket answers; shared by the daemon side (server.ts) and the CLI (client.ts). */
import type { UpstreamHealth } from '../delivery/router.js';
import type { MessageState } from '../spool/types.js';
import type { PollStatus } from '../events/poll/poller.js';

export interface ListenerStatus {
  address: string;
  host: string;
  port: number;
  /** The socket was passed in by systemd socket activation rather than bound by the daemon. */
  activated: boolean;
}

export interface UpstreamStatus extends UpstreamHealth {
  target: string;
  /** ok | failing (transient) | config-error (our credentials/TLS/sender are wrong) */
  state: 'ok' | 'failing' | 'config-error';
}

export interface QueueStatus {
  messages: number;
  byState: Record<MessageState, number>;
  recipientsByStatus: Record<string, number>;
  oldestReceivedAt: number | null;
  oldestAgeSeconds: number | null;
  /** Size of the spool file and of the data live in it (the rest is free pages LMDB reuses; `queue compact` returns them). */
  fileBytes?: number;
  liveBytes?: number;
}

export interface StatusReport {
  pid: number;
  version: string;
  configFile: string;
  startedAt: number;
  uptimeSeconds: number;
  listeners: ListenerStatus[];
  upstreams: UpstreamStatus[];
  queue: QueueStatus;
  inFlight: number;
  metrics: string | null;
  /** Storage faults (disk full, failed writes); any makes `status` CRITICAL. Absent from daemons before 0.1. */
  spool?: { problems: string[] };
  /** Upstreams with `poll = true`: how their event polling fares. Absent from older daemons. */
  polls?: PollStatus[];
}

export function upstreamState(h: UpstreamHealth): UpstreamStatus['state'] {
  if (h.consecutiveFailures === 0) return 'ok';
  return h.lastErrorClass === 'config' ? 'config-error' : 'failing';
}
