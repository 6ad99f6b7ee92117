/** Listener addresses ("host:port", "[v6]:port") and CIDR allow-lists. */
import { BlockList, isIP } from 'node:net';

export function parseHostPort(text: string): { host: string; port: number } | undefined {
  const match = /^\[([0-9a-fA-F:.]+)\]:(\d{1,5})$/.exec(text) ?? /^([^:[\]]+):(\d{1,5})$/.exec(text);
  if (!match) return undefined;
  const port = Number(match[2]);
  if (port > 65535) return undefined;
  return { host: match[1]!, port };
}

export interface Cidr {
  address: string;
  prefix: number;
  family: 'ipv4' | 'ipv6';
}

export function parseCidr(text: string): Cidr | undefined {
  const [address, prefixText] = text.split('/');
  const version = isIP(address ?? '');
  if (!address || version === 0) return undefined;
  const max = version === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max || (prefixText !== undefined && !/^\d+$/.test(prefixText))) return undefined;
  return { address, prefix, family: version === 4 ? 'ipv4' : 'ipv6' };
}

/** 16 bytes of an IPv6 address (zone id ignored), or undefined when `text` is not one. */
function ipv6Bytes(text: string): Uint8Array | undefined {
  const address = text.split('%')[0]!;
  if (isIP(address) !== 6) return undefined;
  let groups = address;
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(groups);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    groups = groups.slice(0, dotted.index) + ((a << 8) | b).toString(16) + ':' + ((c << 8) | d).toString(16);
  }
  const [head, tail] = groups.split('::') as [string, string | undefined];
  const words = (part: string | undefined) => (part ? part.split(':').map((w) => Number.parseInt(w, 16)) : []);
  const left = words(head);
  const right = words(tail);
  const all = tail === undefined ? left : [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  const bytes = new Uint8Array(16);
  all.forEach((word, i) => {
    bytes[2 * i] = word >> 8;
    bytes[2 * i + 1] = word & 0xff;
  });
  return bytes;
}

/** ::ffff:0:0/96, where IPv4 clients of a dual-stack socket appear ("::ffff:192.0.2.2"). */
const MAPPED = Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);

function samePrefix(a: Uint8Array, b: Uint8Array, bits: number): boolean {
  for (let i = 0; i < bits; i++) {
    const mask = 0x80 >> (i % 8);
    if (((a[i >> 3] ?? 0) & mask) !== ((b[i >> 3] ?? 0) & mask)) return false;
  }
  return true;
}

/** The IPv4 address of an IPv4-mapped IPv6 address, else undefined. */
export function unmapIpv4(address: string): string | undefined {
  const bytes = ipv6Bytes(address);
  return bytes && samePrefix(bytes, MAPPED, 96) ? bytes.subarray(12).join('.') : undefined;
}

/**
 * An allow entry as both the matcher and the open-relay check see it. IPv4 clients can reach an
 * IPv6 socket as "::ffff:a.b.c.d", so an IPv6 range that holds IPv4-mapped addresses is (also) an
 * IPv4 range: "::ffff:10.0.0.0/104" is 10.0.0.0/8, and "::ffff:0:0/96", "::/80" or "::/0" cover
 * every IPv4 address (0.0.0.0/0). Without this, `allow = ["::ffff:0:0/96"]` looked narrow and
 * relayed for the whole IPv4 Internet.
 */
export function normalizeCidr(cidr: Cidr): Cidr[] {
  if (cidr.family === 'ipv4') return [cidr];
  const bytes = ipv6Bytes(cidr.address)!;
  if (cidr.prefix > 96) {
    return samePrefix(bytes, MAPPED, 96) ? [{ address: bytes.subarray(12).join('.'), prefix: cidr.prefix - 96, family: 'ipv4' }] : [cidr];
  }
  return samePrefix(bytes, MAPPED, cidr.prefix) ? [cidr, { address: '0.0.0.0', prefix: 0, family: 'ipv4' }] : [cidr];
}

/**
 * Builds a matcher for client addresses. IPv4-mapped IPv6 ("::ffff:1.2.3.4") counts as IPv4 and is
 * checked against the IPv4 entries only (after normalizeCidr), so what the open-relay check
 * examined is exactly what the matcher admits.
 */
export function allowMatcher(cidrs: string[]): (remote: string) => boolean {
  const v4 = new BlockList();
  const v6 = new BlockList();
  for (const text of cidrs) {
    const cidr = parseCidr(text);
    for (const entry of cidr ? normalizeCidr(cidr) : []) (entry.family === 'ipv4' ? v4 : v6).addSubnet(entry.address, entry.prefix, entry.family);
  }
  const check = (remote: string) => {
    const version = isIP(remote.split('%')[0]!);
    if (version === 4) return v4.check(remote, 'ipv4');
    if (version !== 6) return false;
    const ipv4 = unmapIpv4(remote);
    return ipv4 ? v4.check(ipv4, 'ipv4') : v6.check(remote.split('%')[0]!, 'ipv6');
  };
  // Asked at every connection, mostly for the same few clients: BlockList.check builds a
  // SocketAddress each time (~0.7 % of the daemon's CPU with one connection per message).
  const known = new Map<string, boolean>();
  return (remote: string) => {
    let allowed = known.get(remote);
    if (allowed === undefined) {
      allowed = check(remote);
      if (known.size >= 1024) known.clear();
      known.set(remote, allowed);
    }
    return allowed;
  };
}

export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || allowMatcher(['127.0.0.0/8', '::1/128'])(host);
}
