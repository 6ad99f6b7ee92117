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
 * Why an adapter and not a fork or patch-package: both changes are a few lines on two methods;
 * a fork would have to be kept in step with smtp-server's security fixes, and patch-package
 * rewrites node_modules at install time (it would also have to run for the Debian package).
 * test/smtp-server-adapter.test.ts pins the replaced method's source, so an smtp-server upgrade
 * that changes init() fails loudly instead of silently losing the adapter.
 */
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
