/**
 * Password hashes for listener users: scrypt (node:crypto, i.e. OpenSSL's maintained
 * implementation) in a PHC-style string, `$scrypt$ln=15,r=8,p=1$<salt>$<hash>` (base64).
 * Verification is constant-time, and unknown users are checked against a dummy hash so the
 * time taken does not reveal which user names exist.
 */
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

const KEY_LENGTH = 32;
const DEFAULTS = { ln: 15, r: 8, p: 1 };

function scryptAsync(password: string, salt: Buffer, ln: number, r: number, p: number): Promise<Buffer> {
  const N = 2 ** ln;
  return new Promise((resolve, reject) =>
    scrypt(password, salt, KEY_LENGTH, { N, r, p, maxmem: 256 * N * r + 1024 * 1024 }, (error, key) => (error ? reject(error) : resolve(key))),
  );
}

export async function hashPassword(password: string, cost = DEFAULTS): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(password, salt, cost.ln, cost.r, cost.p);
  return `$scrypt$ln=${cost.ln},r=${cost.r},p=${cost.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

interface Parsed {
  ln: number;
  r: number;
  p: number;
  salt: Buffer;
  key: Buffer;
}

export function parseHash(hash: string): Parsed | undefined {
  const match = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/.exec(hash);
  if (!match) return undefined;
  const ln = Number(match[1]);
  if (ln < 10 || ln > 20) return undefined;
  return { ln, r: Number(match[2]), p: Number(match[3]), salt: Buffer.from(match[4]!, 'base64'), key: Buffer.from(match[5]!, 'base64') };
}

let dummy: Promise<string> | undefined;

/** True when `password` matches `hash`; an undefined hash (unknown user) costs the same and is false. */
export async function verifyPassword(password: string, hash: string | undefined): Promise<boolean> {
  const parsed = hash ? parseHash(hash) : undefined;
  const target = parsed ?? parseHash(await (dummy ??= hashPassword(randomBytes(16).toString('hex'))))!;
  const key = await scryptAsync(password, target.salt, target.ln, target.r, target.p);
  const same = key.length === target.key.length && timingSafeEqual(key, target.key);
  return parsed !== undefined && same;
}
