/**
 * nodemailer's DataStream (smtp-connection/data-stream.js) dot-stuffs the message on its way to
 * the SMTP upstream and turns a bare CR or LF into CRLF. It does so with a JavaScript loop over
 * every byte of the body: for a 1 MB message that loop was the largest single cost of relaying
 * it (18 % of the daemon's busy time, more than receiving and spooling together; see
 * docs/performance.md). Nothing in its API lets a caller hand over an already stuffed body.
 *
 * The rules only ever fire at three kinds of position: the first byte, the byte after a CR, and
 * an LF with the byte after it. This replacement finds those with Buffer.indexOf (native) and
 * applies nodemailer's own per-byte rule there and nowhere else, so its output is the same bytes,
 * chunk for chunk (test/nodemailer-adapter.test.ts compares the two on random input and random
 * chunking, and pins the source of the method it replaces). The smuggling-safe behaviour (a dot
 * after a bare CR is stuffed) is therefore nodemailer's, unchanged.
 *
 * Why an adapter and not a fork or patch-package: same reasons as src/intake/smtp-server-adapter.ts
 * (one method; a fork must follow nodemailer's security fixes; patch-package rewrites node_modules
 * at install time, also for the Debian package).
 */
import DataStream from 'nodemailer/lib/smtp-connection/data-stream.js';

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
// Shared as they are only ever copied by Buffer.concat (as in nodemailer).
const INSERT_LF = Buffer.from('\n');
const INSERT_LF_DOT = Buffer.from('\n.');
const INSERT_CR = Buffer.from('\r');
const INSERT_DOT = Buffer.from('.');

interface DataStreamState {
  inByteCount: number;
  outByteCount: number;
  /** The last byte of the previous chunk, false before the first. */
  lastByte: number | false;
  push(chunk: Buffer): boolean;
}

type Transform = (this: DataStreamState, chunk: Buffer | string, encoding: BufferEncoding, done: () => void) => void;

/** nodemailer's _transform as shipped, kept for the equivalence test. */
export const originalTransform = (DataStream.prototype as unknown as { _transform: Transform })._transform;

/** The bytes to insert before chunk[i] (nodemailer's rule, verbatim), or undefined. */
function insertAt(chunk: Buffer, i: number, lastByte: number | false): Buffer | undefined {
  const byte = chunk[i];
  const prev = i ? chunk[i - 1] : lastByte;
  if (prev === CR && byte !== LF) return byte === DOT ? INSERT_LF_DOT : INSERT_LF;
  if (byte === LF && prev !== CR) return INSERT_CR;
  if (byte === DOT && (prev === LF || prev === false)) return INSERT_DOT;
  return undefined;
}

export const fastTransform: Transform = function (chunk, _encoding, done) {
  if (!chunk || !chunk.length) return done();
  const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
  this.inByteCount += bytes.length;
  const parts: Buffer[] = [];
  let outLength = 0;
  let lastPos = 0;
  let examined = -1;
  const examine = (i: number) => {
    if (i <= examined || i >= bytes.length) return;
    examined = i;
    const insert = insertAt(bytes, i, this.lastByte);
    if (!insert) return;
    if (i > lastPos) parts.push(bytes.subarray(lastPos, i));
    parts.push(insert);
    outLength += i - lastPos + insert.length;
    lastPos = i;
  };
  // Candidates in increasing order: 0, then after every CR, and at and after every LF.
  examine(0);
  let cr = bytes.indexOf(CR);
  let lf = bytes.indexOf(LF);
  while (cr !== -1 || lf !== -1) {
    if (lf === -1 || (cr !== -1 && cr < lf)) {
      examine(cr + 1);
      cr = bytes.indexOf(CR, cr + 1);
    } else {
      examine(lf);
      examine(lf + 1);
      lf = bytes.indexOf(LF, lf + 1);
    }
  }
  if (parts.length) {
    if (lastPos < bytes.length) parts.push(bytes.subarray(lastPos));
    outLength += bytes.length - lastPos;
    this.outByteCount += outLength;
    this.push(Buffer.concat(parts, outLength));
  } else {
    this.outByteCount += bytes.length;
    this.push(bytes);
  }
  this.lastByte = bytes[bytes.length - 1]!;
  done();
};

let installed = false;

/** Installs the indexOf-based dot-stuffing (once per process, before any message is sent). */
export function adaptNodemailer(): void {
  if (installed) return;
  installed = true;
  (DataStream.prototype as unknown as { _transform: Transform })._transform = fastTransform;
}
