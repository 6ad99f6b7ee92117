/**
 * Capture upstream: writes each delivered message as an .eml file, so mailshim runs with no
 * provider account (the embedded default) and operators can inspect what would be sent.
 * The file is written under a temporary name, fsynced, then renamed and the directory fsynced: a
 * reader never sees half a message, and the delivery is only reported once the bytes and the name
 * are on disk (tested by test/faults/maildir-faults.test.ts).
 */
import { mkdir, open, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { MaildirUpstreamConfig } from '../config/types.js';
import { access, constants } from 'node:fs/promises';
import { forAll, type CheckRequest, type CheckStep, type OutboundMessage, type RecipientResult, type Upstream } from './types.js';

export class MaildirUpstream implements Upstream {
  readonly type = 'maildir';
  readonly name: string;
  private readonly dir: string;

  constructor(config: MaildirUpstreamConfig) {
    this.name = config.name;
    this.dir = config.path;
  }

  async send(message: OutboundMessage): Promise<RecipientResult[]> {
    try {
      await mkdir(this.dir, { recursive: true, mode: 0o750 });
      const name = `${Date.now()}-${message.id}-${randomBytes(3).toString('hex')}`;
      const temp = join(this.dir, `.${name}.tmp`);
      // Return-Path and the envelope recipients, as a delivery agent records them.
      const trace = Buffer.from(`Return-Path: <${message.sender}>\r\nX-Envelope-To: ${message.recipients.join(', ')}\r\n`);
      const file = await open(temp, 'wx', 0o640);
      try {
        await file.write(trace);
        for await (const chunk of message.body.stream()) await file.write(chunk as Buffer);
        await file.sync();
      } catch (error) {
        await unlink(temp).catch(() => undefined); // never a half-written file left behind
        throw error;
      } finally {
        await file.close();
      }
      await rename(temp, join(this.dir, `${name}.eml`));
      // The new name is on disk only once the directory is synced too.
      const dir = await open(this.dir, 'r');
      try {
        await dir.sync();
      } finally {
        await dir.close();
      }
      return forAll(message.recipients, { kind: 'accepted', reply: `250 2.0.0 written ${name}.eml`, providerMessageId: name });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'EIO';
      return forAll(message.recipients, { kind: 'network', errorCode: code, message: `cannot write to ${this.dir}: ${(error as Error).message}` });
    }
  }

  /** The directory exists (or can be created) and is writable; with a message, writes it. */
  async check(request: CheckRequest): Promise<CheckStep[]> {
    const started = performance.now();
    const steps: CheckStep[] = [];
    try {
      await mkdir(this.dir, { recursive: true, mode: 0o750 });
      await access(this.dir, constants.W_OK);
      steps.push({ name: `writable ${this.dir}`, ok: true, durationMs: Math.round(performance.now() - started), detail: 'ok' });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'EIO';
      steps.push({
        name: `writable ${this.dir}`,
        ok: false,
        durationMs: Math.round(performance.now() - started),
        detail: (error as Error).message,
        failure: { kind: 'network', errorCode: code, message: (error as Error).message },
      });
      return steps;
    }
    if (request.send) {
      const sendStarted = performance.now();
      const [first] = await this.send(request.send);
      const result = first!.result;
      const durationMs = Math.round(performance.now() - sendStarted);
      steps.push(
        result.kind === 'accepted' ? { name: 'write message', ok: true, durationMs, detail: result.reply } : { name: 'write message', ok: false, durationMs, detail: 'failed', failure: result },
      );
    }
    return steps;
  }

  async close(): Promise<void> {}
}
