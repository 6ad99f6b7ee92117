/**
 * A fix for smtp-server 3.21's command parser (SMTPStream.continue): it runs the pending
 * continuation and *then* clears it. When a whole second message is already buffered — a dialog
 * piped into `sendmail -bs`, or a client that pipelines past RFC 2920 — that continuation ends the
 * second DATA and registers the next continuation, which the clearing wipes out: every command
 * after the second message (QUIT included) is never read and the session hangs. Clearing before
 * running is the intended order. One-method wrapper, installed once, like smtp-replies.ts.
 */
import { SMTPStream } from 'smtp-server/lib/smtp-stream.js';

let installed = false;

export function installPipelinedDataFix(): void {
  if (installed) return;
  installed = true;
  const prototype = SMTPStream.prototype as unknown as { continue(): void; _continueCallback: (() => void) | boolean };
  prototype.continue = function (this: typeof prototype) {
    const next = this._continueCallback;
    if (typeof next === 'function') {
      this._continueCallback = false;
      next();
    } else {
      this._continueCallback = true; // continue() came before the data stream ended
    }
  };
}
