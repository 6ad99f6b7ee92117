/**
 * The places where mailshim needs nodemailer to behave differently than its options allow, in one
 * adapter (installed once per process, before any message is sent):
 *
 * 1. Dot-stuffing with native scans (DataStream._transform), below.
 * 2. The bytes of a message chosen per SMTP session (SMTPConnection.send), see `sessionSend`.
 *
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
 * after a bare CR is stuffed) is therefore nodemailer's, unchanged. A body whose lines are known to
 * end in CRLF only (a spooled body the intake scan found wire-clean) needs just the dots after a
 * line end examined (`crlfOnly`): the same bytes for such a body, and a dot after any CR or LF is
 * still stuffed if the body broke that promise.
 *
 * Why an adapter and not a fork or patch-package: same reasons as src/intake/smtp-server-adapter.ts
 * (one method; a fork must follow nodemailer's security fixes; patch-package rewrites node_modules
 * at install time, also for the Debian package).
 */
import { Readable } from 'node:stream';
import DataStream from 'nodemailer/lib/smtp-connection/data-stream.js';
import SMTPConnection, { type SMTPEnvelope } from 'nodemailer/lib/smtp-connection/index.js';

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
  /**
   * Set (by sessionSend) when the bytes piped in have no bare CR and no bare LF: only dots after a
   * line end need looking at: one memchr over a 1 MB body of short lines instead of two native
   * calls per line (docs/performance.md).
   */
  crlfOnly?: boolean;
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
  examine(0);
  if (this.crlfOnly) {
    // No bare CR or LF (the source says so): only a dot can need a byte inserted, found with
    // memchr. Every dot is examined with the full rule, so a dot after any CR or LF is stuffed
    // even in a body that broke the promise.
    for (let dot = bytes.indexOf(DOT); dot !== -1; dot = bytes.indexOf(DOT, dot + 1)) examine(dot);
  } else {
    // Candidates in increasing order: 0, then after every CR, and at and after every LF.
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

/**
 * 2. The bytes of a message chosen per SMTP session.
 *
 * An 8-bit message may go as it is only to a server that offers 8BITMIME (RFC 6152), and only the
 * EHLO of the connection that carries it says so (after STARTTLS, the second EHLO: nodemailer reads
 * extensions from that one only). The pooled transport builds the message stream and the envelope
 * (SIZE=, BODY=) before it has a connection, and a connection that is reused or replaced behind the
 * pool's back may belong to a server that changed its mind. So the one place that knows both the
 * connection and the message, SMTPConnection.send(envelope, message, done), asks the envelope's
 * `sessionBody` (set by src/upstreams/smtp.ts) for the bytes with this connection's extensions,
 * declares their SIZE and BODY, and sends them instead of the stream nodemailer built.
 *
 * Why here and not our own pool of SMTPConnections: nodemailer's pool already does what a pool
 * must get right (idle connections the server dropped are retried on a fresh one without losing
 * the message, rate limits, maxMessages, reconnect on failure) and is kept up to date with its
 * fixes; a second pool would copy all of that to change one decision. Why not learn the choice
 * from the previous session: a server that stops offering 8BITMIME (a reload, another node behind
 * the same name) would then get undeclared 8-bit.
 *
 * nodemailer's own stream of the message is still read (and discarded) at the moment the chosen
 * bytes start to flow, so the pool's "not a byte of the message was sent, retry it on another
 * connection" check (pool-resource.js, `messageStream.readableDidRead`) stays true. An envelope
 * without `sessionBody` (mailshim test-upstream's direct connection) is sent as nodemailer would.
 */
export interface SessionBodyEnvelope extends SMTPEnvelope {
  /** The bytes for this session and what to declare for them; a rejection fails the send with that error. */
  sessionBody?: (extensions: readonly string[]) => Promise<{ raw: Readable; size: number; use8BitMime: boolean; crlfOnly?: boolean }>;
}

type Send = (this: SMTPConnection, envelope: SessionBodyEnvelope, message: string | Buffer | Readable, done: Parameters<SMTPConnection['send']>[2]) => void;

/** nodemailer's send as shipped (wrapped, not replaced: it still does all of the sending). */
export const originalSend = (SMTPConnection.prototype as unknown as { send: Send }).send;

export const sessionSend: Send = function (envelope, message, done) {
  const choose = envelope?.sessionBody;
  if (typeof choose !== 'function') return originalSend.call(this, envelope, message, done);
  const extensions = (this as unknown as { _supportedExtensions: string[] })._supportedExtensions;
  choose([...extensions]).then(
    (chosen) => {
      envelope.size = chosen.size;
      envelope.use8BitMime = chosen.use8BitMime;
      const source = instead(message, chosen.raw);
      // nodemailer pipes the message into the DataStream it creates for DATA: tell that stream.
      if (chosen.crlfOnly) source.pipe = markPipe(source);
      originalSend.call(this, envelope, source, done);
    },
    (error: Error) => {
      if (typeof message === 'object' && 'destroy' in message) message.destroy();
      done(error, undefined as never);
    },
  );
};

/**
 * `raw` in place of `given` (nodemailer's stream of the message), which is consumed when `raw` is
 * first read. `raw` is read as it is sent (a spooled body file is streamed) and its error ends the
 * stream before its end, so the message is never completed with a final ".".
 */
function instead(given: string | Buffer | Readable, raw: Readable): Readable {
  if (!(given instanceof Readable)) return raw;
  let started = false;
  const stream = new Readable({
    read() {
      if (started) return void raw.resume();
      started = true;
      given.resume();
      raw.on('data', (chunk: Buffer) => {
        if (!stream.push(chunk)) raw.pause();
      });
      raw.once('end', () => stream.push(null));
    },
    destroy(error, callback) {
      given.destroy();
      raw.destroy();
      callback(error);
    },
  });
  raw.once('error', (error) => stream.destroy(error));
  given.once('error', (error) => stream.destroy(error));
  return stream;
}

/** `source`'s own pipe, which first marks a DataStream it pipes into as receiving CRLF-only lines. */
function markPipe(source: Readable): Readable['pipe'] {
  return function <T extends NodeJS.WritableStream>(this: Readable, destination: T, options?: { end?: boolean }): T {
    if (destination instanceof DataStream) (destination as unknown as DataStreamState).crlfOnly = true;
    return Readable.prototype.pipe.call(source, destination, options) as T;
  };
}

let installed = false;

/** Installs both adaptations (once per process, before any message is sent). */
export function adaptNodemailer(): void {
  if (installed) return;
  installed = true;
  (DataStream.prototype as unknown as { _transform: Transform })._transform = fastTransform;
  (SMTPConnection.prototype as unknown as { send: Send }).send = sessionSend;
}
