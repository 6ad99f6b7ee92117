/**
 * systemd socket activation (sd_listen_fds(3)): the listening sockets arrive as fds 3..3+N-1 with
 * LISTEN_FDS=N and LISTEN_PID=<our pid>. The variables are removed once read, as sd_listen_fds
 * does with unset_environment, so processes we spawn never mistake the fds for theirs.
 * Hand-written: it is a dozen lines, and the npm wrappers for it are unmaintained.
 */
import { readFileSync, readlinkSync } from 'node:fs';
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

function hexToIpv4(hex: string): string {
  // /proc/net/tcp prints the address as one little-endian 32-bit word.
  const n = Number.parseInt(hex, 16);
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24].join('.');
}

function hexToIpv6(hex: string): string {
  // Four little-endian 32-bit words.
  const bytes: number[] = [];
  for (let w = 0; w < 4; w++) {
    const word = hex.slice(w * 8, w * 8 + 8);
    for (let b = 3; b >= 0; b--) bytes.push(Number.parseInt(word.slice(b * 2, b * 2 + 2), 16));
  }
  const groups = Array.from({ length: 8 }, (_, i) => ((bytes[i * 2]! << 8) | bytes[i * 2 + 1]!).toString(16));
  const text = groups.join(':').replace(/(^|:)0(:0)+(:|$)/, '::');
  const mapped = /^::ffff:([0-9a-f]+):([0-9a-f]+)$/.exec(text);
  if (mapped) {
    const hi = Number.parseInt(mapped[1]!, 16);
    const lo = Number.parseInt(mapped[2]!, 16);
    return `::ffff:${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
  }
  return text;
}

/**
 * The local address a passed listening socket is bound to, read from /proc before any server
 * adopts it — a listener's TLS mode must be known when its server is created. Linux only, as is
 * systemd; undefined when it cannot be found.
 */
export function boundAddressOfFd(fd: number, proc = '/proc'): { address: string; port: number } | undefined {
  let inode: string | undefined;
  try {
    inode = /^socket:\[(\d+)\]$/.exec(readlinkSync(`${proc}/self/fd/${fd}`))?.[1];
  } catch {
    return undefined;
  }
  if (!inode) return undefined;
  for (const [file, decode] of [
    ['tcp', hexToIpv4],
    ['tcp6', hexToIpv6],
  ] as const) {
    let table: string;
    try {
      table = readFileSync(`${proc}/net/${file}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of table.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols[9] !== inode) continue;
      const [addr, port] = cols[1]!.split(':');
      return { address: decode(addr!), port: Number.parseInt(port!, 16) };
    }
  }
  return undefined;
}
