/** Queue ids: time-ordered (so `mailq` lists oldest first) and unguessable enough to never collide. */
import { openSync, readSync } from 'node:fs';

const ALPHABET = '0123456789BCDFGHJKLMNPQRSTVWXYZ'; // no vowels: ids never spell words

/** `value` (a non-negative integer below 2^53) as its last `length` base-31 digits. */
function encode(value: number, length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) {
    out = ALPHABET[value % ALPHABET.length] + out;
    value = Math.floor(value / ALPHABET.length);
  }
  return out;
}

let urandom: number | undefined;
/** Random bytes read ahead (POOL_SIZE at a time) and handed out once each, from `used` on. */
const POOL_SIZE = 512;
const pool = Buffer.alloc(POOL_SIZE);
let used = POOL_SIZE;

/**
 * Random bytes from /dev/urandom (the fd stays open for the process), read POOL_SIZE at a time:
 * one read(2) per ~100 queue ids instead of one per id. Not node:crypto: loading it costs the
 * sendmail entry ~4-5 ms of CPU per run, a sixth of its start-up beyond bare Node
 * (docs/performance.md); without /dev/urandom, Web Crypto (a global, loaded only then).
 */
function randomBytes(length: number): Buffer {
  if (length > POOL_SIZE) throw new RangeError(`at most ${POOL_SIZE} random bytes at a time`);
  if (used + length > POOL_SIZE) {
    used = 0;
    let filled = false;
    try {
      urandom ??= openSync('/dev/urandom', 'r');
      filled = readSync(urandom, pool, 0, POOL_SIZE, null) === POOL_SIZE;
    } catch {
      /* no /dev/urandom (a minimal chroot) */
    }
    if (!filled) globalThis.crypto.getRandomValues(pool);
  }
  // A copy, and the pool's bytes are never handed out twice.
  const bytes = Buffer.from(pool.subarray(used, used + length));
  used += length;
  return bytes;
}

export function newQueueId(now = Date.now()): string {
  return encode(now, 9) + encode(randomBytes(5).readUIntBE(0, 5), 7);
}

/**
 * A submitter's idempotency token (sendmail: one per message, used on the socket and as the
 * maildrop file name): 128 random bits, so nobody can guess another submission's token.
 */
export function newSubmitToken(): string {
  return randomBytes(16).toString('hex');
}

export function isSubmitToken(text: unknown): text is string {
  return typeof text === 'string' && /^[0-9a-f]{32}$/.test(text);
}

export function isQueueId(text: string): boolean {
  return /^[0-9BCDFGHJKLMNPQRSTVWXYZ]{16}$/.test(text);
}
