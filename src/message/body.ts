/**
 * A message's bytes as delivery hands them to an upstream: its size, the bytes as one Buffer for
 * the upstreams and steps that need them whole (REST APIs, wire fitting, DSNs), or a stream for
 * the ones that can send as they read (SMTP, maildir). A body the spool keeps in a file is
 * streamed from it (src/spool/body-files.ts); everything else is a Buffer in memory.
 */
import { isAscii } from 'node:buffer';
import { Readable } from 'node:stream';
import { scan, wireClean } from './wire.js';

export interface MessageBody {
  readonly size: number;
  /** True when the bytes are 7-bit with legal lines: no wire fitting can change them (wire.ts scan()). */
  readonly wireClean: boolean;
  /** True when any byte is 8-bit (BODY=8BITMIME). */
  readonly eightBit: boolean;
  /** The whole body in memory. Rejects (ESPOOLDAMAGED) when stored bytes no longer match their checksum. */
  buffer(): Promise<Buffer>;
  /**
   * The bytes as a stream, a fresh one per call. A stored body is checked as it is read, and a
   * mismatch fails the stream *before* its last bytes are passed on: a reader that finishes the
   * message only at the stream's end (SMTP's final ".") never finishes a damaged one.
   */
  stream(): Readable;
}

/** A body held in memory. */
export function bufferBody(bytes: Buffer): MessageBody {
  // Each computed on first use, once: a body handed to several upstreams is not scanned again.
  let clean: boolean | undefined;
  let eightBit: boolean | undefined;
  return {
    size: bytes.length,
    get wireClean() {
      // 8-bit is never clean: known from the native isAscii alone, without the line scan.
      clean ??= !this.eightBit && wireClean(scan(bytes));
      return clean;
    },
    get eightBit() {
      eightBit ??= !isAscii(bytes);
      return eightBit;
    },
    buffer: () => Promise.resolve(bytes),
    stream: () => Readable.from([bytes], { objectMode: false }),
  };
}
