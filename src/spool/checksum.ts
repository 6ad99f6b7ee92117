/**
 * The checksum stored with each message body at accept time and checked before every delivery
 * and by `queue verify`. CRC-32 (zlib's, in Node's zlib module) detects the damage it is here
 * for — flipped bits, a torn or zeroed page — at memory speed; it is not a defence against
 * someone who can write the spool file, and need not be.
 */
import { crc32 } from 'node:zlib';

export function bodyChecksum(bytes: Buffer): number {
  return crc32(bytes);
}

/** Why a stored body cannot be trusted, or undefined when it matches (or predates checksums). */
export function bodyProblem(expected: number | undefined, bytes: Buffer | undefined, size: number): string | undefined {
  if (!bytes) return 'message body missing from the spool';
  if (expected === undefined) return undefined;
  if (bytes.length !== size) return `message body is ${bytes.length} bytes, ${size} were stored`;
  return checksumProblem(expected, bodyChecksum(bytes));
}

/** The mismatch of a checksum computed over the body (at once, or incrementally as it was read). */
export function checksumProblem(expected: number, actual: number): string | undefined {
  return actual === expected ? undefined : `message body checksum mismatch (stored crc32 ${hex(expected)}, now ${hex(actual)})`;
}

function hex(n: number): string {
  return n.toString(16).padStart(8, '0');
}
