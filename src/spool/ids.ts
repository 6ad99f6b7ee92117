/** Queue ids: time-ordered (so `mailq` lists oldest first) and unguessable enough to never collide. */
import { randomBytes } from 'node:crypto';

const ALPHABET = '0123456789BCDFGHJKLMNPQRSTVWXYZ'; // no vowels: ids never spell words

function encode(value: bigint, length: number): string {
  let out = '';
  const base = BigInt(ALPHABET.length);
  for (let i = 0; i < length; i++) {
    out = ALPHABET[Number(value % base)] + out;
    value /= base;
  }
  return out;
}

export function newQueueId(now = Date.now()): string {
  const random = BigInt('0x' + randomBytes(5).toString('hex'));
  return encode(BigInt(now), 9) + encode(random, 7);
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
