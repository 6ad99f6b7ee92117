/** JWT checks shared by the Microsoft and Google fakes: decode, verify RS256/PS256 with a public key (RFC 7515/7518). */
import { constants, createPublicKey, verify, type KeyObject } from 'node:crypto';

export interface DecodedJwt {
  header: Record<string, unknown>;
  claims: Record<string, unknown>;
  input: string;
  signature: Buffer;
}

export function decodeJwt(token: string): DecodedJwt | undefined {
  const parts = token.split('.');
  if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]*$/.test(p))) return undefined;
  try {
    const header = JSON.parse(Buffer.from(parts[0]!, 'base64url').toString('utf8')) as Record<string, unknown>;
    const claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
    return { header, claims, input: `${parts[0]}.${parts[1]}`, signature: Buffer.from(parts[2]!, 'base64url') };
  } catch {
    return undefined;
  }
}

export function verifyJwt(jwt: DecodedJwt, key: KeyObject | string): boolean {
  const publicKey = typeof key === 'string' ? createPublicKey(key) : key;
  if (jwt.header.alg === 'RS256') return verify('sha256', Buffer.from(jwt.input), publicKey, jwt.signature);
  if (jwt.header.alg === 'PS256') return verify('sha256', Buffer.from(jwt.input), { key: publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, jwt.signature);
  return false;
}

export function formOf(body: Buffer): URLSearchParams {
  return new URLSearchParams(body.toString('utf8'));
}

/** To/Cc/Bcc addresses of a MIME message (lower case): where both APIs take the recipients from. */
export function headerRecipients(raw: Buffer): string[] {
  const end = raw.indexOf('\r\n\r\n');
  const header = raw
    .subarray(0, end === -1 ? raw.length : end)
    .toString('latin1')
    .replace(/\r\n[ \t]/g, ' ');
  const out: string[] = [];
  for (const line of header.split('\r\n')) {
    const m = /^(to|cc|bcc):(.*)$/i.exec(line);
    if (m) for (const a of m[2]!.matchAll(/[^\s<>,;:"]+@[^\s<>,;:"]+/g)) out.push(a[0].toLowerCase());
  }
  return out;
}

export function headerValue(raw: Buffer, name: string): string | undefined {
  const end = raw.indexOf('\r\n\r\n');
  const header = raw
    .subarray(0, end === -1 ? raw.length : end)
    .toString('latin1')
    .replace(/\r\n[ \t]/g, ' ');
  const line = header.split('\r\n').find((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`));
  return line?.slice(name.length + 1).trim();
}

/** The message with its Bcc field removed, as both providers send it on. */
export function withoutBcc(raw: Buffer): Buffer {
  const end = raw.indexOf('\r\n\r\n');
  const header = raw.subarray(0, end).toString('latin1');
  const kept = header.split(/\r\n(?![ \t])/).filter((f) => !/^bcc:/i.test(f));
  return Buffer.concat([Buffer.from(kept.join('\r\n'), 'latin1'), raw.subarray(end)]);
}
