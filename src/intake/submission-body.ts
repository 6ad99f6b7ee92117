/**
 * Receives exactly `size` body bytes of one local submission. A body up to `threshold` bytes is
 * kept in memory; a larger one is written to a private temporary file as it arrives, with the
 * socket paused while the disk is behind, so that many half-sent large submissions cost disk
 * space (bounded by the connection caps × max_message_size), not heap. The file is read back only
 * when the whole body is there, one at a time (see SubmissionServer), to hand it to the spool.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, createWriteStream, mkdirSync, readdirSync, rmSync, type WriteStream } from 'node:fs';
import { readFile, unlink } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { SubmitError } from '../errors.js';

/** Creates the private (0700) directory for bodies being received and removes leftovers of a crash. */
export function prepareIncoming(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  for (const name of readdirSync(dir)) rmSync(join(dir, name), { force: true, recursive: true });
}

export class BodySink {
  private readonly chunks: Buffer[] = [];
  private received = 0;
  private readonly file: { path: string; stream: WriteStream } | undefined;
  private discarded = false;

  constructor(
    readonly size: number,
    threshold: number,
    dir: string,
    private readonly socket: Socket,
    onError: (error: Error) => void,
  ) {
    if (size <= threshold) return;
    const path = join(dir, randomBytes(12).toString('hex'));
    const stream = createWriteStream(path, { flags: 'wx', mode: 0o600 });
    stream.on('drain', () => socket.resume());
    stream.on('error', (error) => {
      if (!this.discarded) onError(error);
    });
    this.file = { path, stream };
  }

  get staged(): boolean {
    return this.file !== undefined;
  }

  /** Takes the next bytes (anything past `size` is ignored); true once the body is complete. */
  push(chunk: Buffer): boolean {
    const part = chunk.subarray(0, this.size - this.received);
    this.received += part.length;
    if (this.file) {
      if (!this.file.stream.write(part)) this.socket.pause();
    } else {
      this.chunks.push(part);
    }
    return this.received >= this.size;
  }

  /** The complete body; a staged one is read back from its file. */
  async body(): Promise<Buffer> {
    if (!this.file) return Buffer.concat(this.chunks, this.size);
    try {
      this.file.stream.end();
      await finished(this.file.stream);
      return await readFile(this.file.path);
    } catch (error) {
      throw new SubmitError('ETEMPFAIL', `cannot stage the message: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, { cause: error });
    }
  }

  /** Drops the bytes (memory or temporary file); safe to call more than once. */
  discard(): void {
    if (this.discarded) return;
    this.discarded = true;
    this.chunks.length = 0;
    if (!this.file) return;
    const { stream, path } = this.file;
    // Unlink only once the stream has closed: its open() may still be pending and would recreate the file.
    const remove = () => void unlink(path).catch(() => undefined);
    if (stream.closed) remove();
    else {
      stream.once('close', remove);
      stream.destroy();
    }
  }
}
