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

/** Builds a matcher for client addresses; IPv4-mapped IPv6 ("::ffff:1.2.3.4") counts as IPv4. */
export function allowMatcher(cidrs: string[]): (remote: string) => boolean {
  const list = new BlockList();
  for (const text of cidrs) {
    const cidr = parseCidr(text);
    if (cidr) list.addSubnet(cidr.address, cidr.prefix, cidr.family);
  }
  return (remote: string) => {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(remote);
    const address = mapped ? mapped[1]! : remote;
    const version = isIP(address);
    if (version === 0) return false;
    return list.check(address, version === 4 ? 'ipv4' : 'ipv6');
  };
}

export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || allowMatcher(['127.0.0.0/8', '::1/128'])(host);
}
