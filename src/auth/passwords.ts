/**
 * Password hashes for listener users: scrypt (node:crypto, i.e. OpenSSL's maintained
 * implementation) in a PHC-style string, `$scrypt$ln=15,r=8,p=1$<salt>$<hash>` (base64).
 * Verification is constant-time, and unknown users are checked against a dummy hash so the
 * time taken does not reveal which user names exist.
 *
 * scrypt runs on libuv's threadpool (4 threads), the same pool as the file-system work intake
 * needs; each check holds a thread for ~100 ms and 32 MB. Left alone, 60 sessions guessing
 * passwords queued 60 checks ahead of every spool write and pushed a normal message's intake from
 * 0.1 s to 4-6 s. So checks run one at a time (`passwordChecks`), and when too many wait the
 * client is told to come back later (AuthBusyError → 454 4.7.0, RFC 4954) instead of queueing.
 */
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { AuthBusyError } from '../errors.js';

const KEY_LENGTH = 32;
const DEFAULTS = { ln: 15, r: 8, p: 1 };

function scryptAsync(password: string, salt: Buffer, ln: number, r: number, p: number): Promise<Buffer> {
  const N = 2 ** ln;
  return new Promise((resolve, reject) => scrypt(password, salt, KEY_LENGTH, { N, r, p, maxmem: 256 * N * r + 1024 * 1024 }, (error, key) => (error ? reject(error) : resolve(key))));
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

/** At most `running` password checks at once, at most `maxWaiting` queued behind them. */
class CheckQueue {
  active = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(
    private readonly running: number,
    private readonly maxWaiting: number,
  ) {}

  get queued(): number {
    return this.waiting.length;
  }

  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.active >= this.running) {
      if (this.waiting.length >= this.maxWaiting) throw new AuthBusyError('too many authentication attempts in progress');
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.active++;
    }
    try {
      return await work();
    } finally {
      const next = this.waiting.shift();
      if (next)
        next(); // the slot passes on: `active` stays the same
      else this.active--;
    }
  }
}

/** The daemon's password checks (exported for tests). */
export const passwordChecks = new CheckQueue(1, 16);

let dummy: Promise<string> | undefined;

/**
 * True when `password` matches `hash`; an undefined hash (unknown user) costs the same and is
 * false. Throws AuthBusyError when too many checks are already waiting.
 */
export async function verifyPassword(password: string, hash: string | undefined): Promise<boolean> {
  const parsed = hash ? parseHash(hash) : undefined;
  const target = parsed ?? parseHash(await (dummy ??= hashPassword(randomBytes(16).toString('hex'))))!;
  const key = await passwordChecks.run(() => scryptAsync(password, target.salt, target.ln, target.r, target.p));
  const same = key.length === target.key.length && timingSafeEqual(key, target.key);
  return parsed !== undefined && same;
}
