/**
 * systemd socket activation (sd_listen_fds(3)): the listening sockets arrive as fds 3..3+N-1 with
 * LISTEN_FDS=N and LISTEN_PID=<our pid>. The variables are removed once read, as sd_listen_fds
 * does with unset_environment, so processes we spawn never mistake the fds for theirs.
 * Hand-written: it is a dozen lines, and the npm wrappers for it are unmaintained.
 */
import type { ListenConfig } from '../config/types.js';

export const SD_LISTEN_FDS_START = 3;

export function takeActivationFds(env: NodeJS.ProcessEnv = process.env, pid = process.pid): number[] {
  const count = Number(env.LISTEN_FDS ?? '');
  const forPid = Number(env.LISTEN_PID ?? '');
  delete env.LISTEN_FDS;
  delete env.LISTEN_PID;
  delete env.LISTEN_FDNAMES;
  if (!Number.isInteger(count) || count <= 0 || forPid !== pid) return [];
  return Array.from({ length: count }, (_, i) => SD_LISTEN_FDS_START + i);
}

function normaliseHost(host: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(host);
  return (mapped ? mapped[1]! : host).toLowerCase();
}

/** The [[listen]] entry a passed socket (by its bound address) belongs to. */
export function matchListen(listens: ListenConfig[], bound: { address: string; port: number }): ListenConfig | undefined {
  const host = normaliseHost(bound.address);
  return listens.find((l) => l.port === bound.port && normaliseHost(l.host) === host);
}
