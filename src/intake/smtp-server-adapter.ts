/**
 * The places where mailshim needs smtp-server to behave differently than its options allow,
 * in one adapter (installed once per process, before any server is created):
 *
 * 1. Enhanced status codes. smtp-server picks the RFC 3463 code from a fixed table keyed by the
 *    basic reply code, so it cannot say "452 4.5.3" (too many recipients) or "452 4.3.1" (spool
 *    full). A reply text that already starts with an enhanced code ("4.5.3 ...") keeps its own.
 *
 * 2. The greeting pause. `SMTPConnection.init()` waits a fixed 100 ms before the 220 banner (an
 *    "early talker" trap) with no option to change it: every cron mail, PHP mail() and scanner
 *    connection paid 100 ms, capping a client that opens one connection per message at ~10
 *    messages/s per connection. Here the pause is the listener's `greet_pause` (default 0, like
 *    Postfix's smtpd, which has none; sendmail's greet_pause and Postfix's postscreen_greet_wait
 *    are the models for listeners that face untrusted networks). A client that talks before the
 *    banner during a pause still gets "421 You talk too soon" from smtp-server itself.
 *
 * 3. Pipelined messages. `SMTPStream.continue()` runs the pending continuation and *then* clears
 *    it. When a whole second message is already buffered (a dialog piped into `sendmail -bs`),
 *    that continuation ends the second DATA and registers the next one, which the clearing wipes
 *    out: no command after the second message (QUIT included) is ever read and the session
 *    hangs. Clearing before running is the intended order.
 *
 * 4. The DATA scan. `SMTPStream._feedDataStream()` looks for a line that starts with a dot by
 *    testing every byte of the message in a JavaScript loop: 19-22 % of the daemon's CPU time
 *    when it receives 1 MB messages (docs/performance.md). The replacement is the same method
 *    with that loop turned into `Buffer.indexOf('\n.')`, which visits only the positions where the
 *    loop's condition holds, in the same order, and runs the same code there; everything else
 *    (the start-of-DATA checks that keep smuggling out, the escape dots, the bytes kept back,
 *    back-pressure) is smtp-server's code unchanged. One more copy goes: smtp-server joins the 4
 *    bytes it kept back from the previous chunk with the whole next chunk (a 64 KiB copy per
 *    socket read, and its garbage); here they are passed on ahead of it instead, unless a line
 *    that starts with a dot straddles the two (then they are joined, as before).
 *    test/smtp-stream-scan.test.ts feeds the
 *    original and the replacement the same random dialogs in random chunks and requires the same
 *    commands, message bytes and byte counts.
 *
 * Why an adapter and not a fork or patch-package: both changes are a few lines on two methods;
 * a fork would have to be kept in step with smtp-server's security fixes, and patch-package
 * rewrites node_modules at install time (it would also have to run for the Debian package).
 * test/smtp-server-adapter.test.ts pins the replaced methods' source, so an smtp-server upgrade
 * that changes them fails loudly instead of silently losing the adapter.
 */
import type { Writable } from 'node:stream';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { SMTPStream } from 'smtp-server/lib/smtp-stream.js';

type Send = (code: number, data?: string | string[], context?: string | false) => void;

/** The parts of smtp-server's connection object the adapter uses (not in its type declarations). */
interface ConnectionInternals {
  send: Send;
  name: string;
  connectionReady(): void;
  _setListeners(callback: () => void): void;
  _server: { options: { maxClients?: number; greetPause?: number }; connections: Set<unknown> };
}

/** smtp-server options plus the adapter's own: milliseconds to wait before the 220 banner. */
export interface GreetPauseOption {
  greetPause?: number;
}

const ENHANCED = /^[245]\.\d{1,3}\.\d{1,3} /;
let installed = false;

export function adaptSmtpServer(): void {
  if (installed) return;
  installed = true;
  const prototype = SMTPConnection.prototype as unknown as ConnectionInternals;

  const send = prototype.send;
  prototype.send = function (this: ConnectionInternals, code, data, context) {
    if (typeof data === 'string' && ENHANCED.test(data)) return send.call(this, code, data, false);
    return send.call(this, code, data, context);
  };

  // Same steps as smtp-server's init(), with the fixed 100 ms replaced by the listener's pause.
  (prototype as unknown as { init(this: ConnectionInternals): void }).init = function (this: ConnectionInternals) {
    this._setListeners(() => {
      const { maxClients, greetPause = 0 } = this._server.options;
      if (maxClients && this._server.connections.size > maxClients) {
        return this.send(421, this.name + ' Too many connected clients, try again in a moment', false);
      }
      if (greetPause <= 0) return this.connectionReady();
      setTimeout(() => this.connectionReady(), greetPause).unref();
    });
  };

  (SMTPStream.prototype as unknown as { _feedDataStream: typeof feedDataStream })._feedDataStream = feedDataStream;

  const stream = SMTPStream.prototype as unknown as { continue(): void; _continueCallback: (() => void) | boolean };
  stream.continue = function (this: typeof stream) {
    const next = this._continueCallback;
    if (typeof next === 'function') {
      this._continueCallback = false;
      next();
    } else {
      this._continueCallback = true; // continue() came before the data stream ended
    }
  };
}

/** The parts of smtp-server's SMTPStream that its data-mode method uses (not in its type declarations). */
interface StreamInternals {
  _dataStream: Writable & { writable: boolean; destroyed: boolean };
  _lastBytes: Buffer | false;
  _atDataStart: boolean;
  _countDataBytes(length: number): void;
  _endDataMode(chunk: Buffer | false, remainder: Buffer, done: (error?: Error) => void): void;
  _feedDataStream(chunk: Buffer, done: (error?: Error) => void): void;
}

const END_SEQUENCE = Buffer.from('\r\n.\r\n');
const DATA_END_AT_START = Buffer.from('.\r\n');
const LF_DOT = Buffer.from('\n.');

/**
 * Whether "\n." starts at a position from 1 to kept.length of kept + input: the positions at
 * which the loop of feedDataStream would look at a kept byte (it looks from two bytes before the
 * dot to three after). Reads the bytes in place instead of joining them.
 */
function dotLineAtSeam(kept: Buffer, input: Buffer): boolean {
  const at = (i: number) => (i < kept.length ? kept[i] : input[i - kept.length]);
  for (let lf = 1; lf <= kept.length; lf++) if (at(lf) === 0x0a && at(lf + 1) === 0x2e) return true;
  return false;
}

/**
 * smtp-server 3.21's `SMTPStream._feedDataStream` (MIT, Andris Reinman), step for step, except
 * that `for (i = 2; i < len - 2; i++) if (chunk[i] === 0x2e && chunk[i - 1] === 0x0a)` is
 * `indexOf('\n.')` from position 1 (so i = match + 1 ≥ 2) while i < len - 2: the same positions,
 * in the same order, without a JavaScript step per byte. See point 4 above.
 */
function feedDataStream(this: StreamInternals, input: Buffer, done: (error?: Error) => void): void {
  const dataStream = this._dataStream;
  let chunk = input;
  const kept = this._lastBytes;
  if (kept && kept.length) {
    this._lastBytes = false;
    if (this._atDataStart || input.length < 8 || dotLineAtSeam(kept, input)) {
      chunk = Buffer.concat([kept, chunk], kept.length + chunk.length);
    } else {
      // No line starts with a dot across the seam, so no check below looks at the kept bytes:
      // they are plain content, passed on ahead of the input instead of copied in front of it.
      this._countDataBytes(kept.length);
      if (dataStream.writable) dataStream.write(kept);
    }
  }
  let len = chunk.length;
  // A lone "." line right at the start of DATA ends it (only then: see smtp-server's comment on smuggling).
  if (this._atDataStart && len >= 3 && Buffer.compare(chunk.subarray(0, 3), DATA_END_AT_START) === 0) {
    this._endDataMode(false, chunk.subarray(3), done);
    return;
  }
  if (this._atDataStart && len >= 2 && chunk[0] === 0x2e && chunk[1] === 0x2e) {
    chunk = chunk.subarray(1);
    len--;
    this._atDataStart = false;
  }
  for (let lf = chunk.indexOf(LF_DOT, 1); lf !== -1 && lf + 1 < len - 2; lf = chunk.indexOf(LF_DOT, lf + 1)) {
    const i = lf + 1; // a dot first in its line
    if (Buffer.compare(chunk.subarray(i - 2, i + 3), END_SEQUENCE) === 0) {
      const buf = chunk.subarray(0, i);
      this._countDataBytes(buf.length);
      this._endDataMode(buf, chunk.subarray(i + 3), done);
      return;
    }
    if (chunk[i + 1] === 0x2e) {
      // an escape dot: emit what came before it and go on without it
      const buf = chunk.subarray(0, i);
      this._lastBytes = false;
      this._countDataBytes(buf.length);
      if (dataStream.writable) dataStream.write(buf);
      const rest = chunk.subarray(i + 1);
      setImmediate(() => this._feedDataStream(rest, done));
      return;
    }
  }
  // keep the last bytes back: the terminator may straddle this chunk and the next
  this._lastBytes = chunk.length < 4 ? chunk : chunk.subarray(chunk.length - 4);
  if (this._lastBytes.length < chunk.length) {
    const buf = chunk.subarray(0, chunk.length - this._lastBytes.length);
    this._countDataBytes(buf.length);
    if (dataStream.writable) {
      const handled = dataStream.write(buf);
      if (!handled && !dataStream.destroyed) {
        // a stream that the application destroys never drains, it only closes
        const onDrain = () => {
          dataStream.removeListener('drain', onDrain);
          dataStream.removeListener('close', onDrain);
          done();
        };
        dataStream.once('drain', onDrain);
        dataStream.once('close', onDrain);
      } else {
        done();
      }
    } else {
      done();
    }
  } else {
    done();
  }
}
