/**
 * The DATA of one SMTP message as it arrives: a large one is passed on piece by piece to the
 * spool's body file (DataReceiver), anything else is kept in memory and assembled with one copy
 * of the body. A 1 MB body used
 * to be copied for every step (chunks joined, each header edit rebuilding the message, the
 * Received: field prepended): each copy of fresh memory costs page faults and garbage collection,
 * which showed in the daemon's profile. Here the chunks are joined once into a buffer with room
 * in front, and the final header block (Received: + the edited header) is written into that room
 * right before the body.
 */

import { headerBlock } from '../message/headers.js';
import { BODY_FILE_MIN } from '../spool/body-files.js';
import { normalizeBareLf } from './message-check.js';

/** Free bytes in front of DATA: our Received: (~250 bytes) plus added Date:/Message-ID:/From: fit with room to spare. */
export const HEADROOM = 2048;

/** DATA's chunks joined into one buffer with HEADROOM free bytes in front; `data` is the part holding the chunks. */
export function joinWithHeadroom(chunks: readonly Buffer[], size: number): { room: Buffer; data: Buffer } {
  // Its own memory (never Node's shared pool for small buffers): assemble() recognises the body by it.
  const room = Buffer.allocUnsafeSlow(HEADROOM + size);
  let offset = HEADROOM;
  for (const chunk of chunks) offset += chunk.copy(room, offset);
  return { room, data: room.subarray(HEADROOM, offset) };
}

/**
 * received + header + body as one buffer. When the body is still the tail of `room` and the new
 * header block fits in front of it, it is written there (the bytes before it were never exposed:
 * the result starts at the received field). Otherwise (a bare LF was normalised into a new buffer,
 * or the header grew past the room) one Buffer.concat.
 */
export function assemble(received: Buffer, header: Buffer, body: Buffer, room?: Buffer): Buffer {
  const prefix = received.length + header.length;
  const bodyAt = room && body.buffer === room.buffer && body.byteOffset + body.length === room.byteOffset + room.length ? body.byteOffset - room.byteOffset : -1;
  if (!room || bodyAt < prefix) return Buffer.concat([received, header, body], prefix + body.length);
  const start = bodyAt - prefix;
  header.copy(room, start + received.length); // may overlap itself (an unchanged header): copy is memmove-safe
  received.copy(room, start);
  return room.subarray(start);
}

/**
 * DATA from this many bytes on is passed on as it arrives: the spool's threshold for a body file
 * (our header block only adds to it), so a message streamed here always lands in a file.
 */
export const STREAM_FROM = BODY_FILE_MIN;

/** Where a large message goes as it arrives (the spool's BodyFileWriter). */
export interface BodySink {
  append(bytes: Buffer): void;
  abort(): Promise<void>;
}

/**
 * SMTP DATA as it arrives. It is kept in memory until STREAM_FROM bytes have arrived with a
 * complete header block; then `start` is given that header block (bare LFs normalised), edits it
 * and returns where the message goes from there (with the edited header already in it), or an
 * error refusing the message. Every later piece is passed on as it arrives, bare LFs normalised
 * on the way, so a large body is never joined into one buffer: at 1 MB that join, the chunks it
 * kept alive and the page faults of the fresh megabyte were ~15 % of the daemon's CPU
 * (docs/performance.md). A header block that does not end within the first STREAM_FROM bytes
 * (pathological) keeps the whole message in memory, as a small one is.
 */
export class DataReceiver<S extends BodySink> {
  /** Bytes of DATA as received. */
  size = 0;
  /** Whether a bare LF was seen (and normalised) in what was passed on. */
  bareLf = false;
  /** Why `start` refused the message; the rest of DATA is only looked at for bare LFs. */
  refusal: Error | undefined;
  private sink: S | undefined;
  private chunks: Buffer[] = [];
  private held = 0;
  private inMemory = false;
  private discarded = false;
  /** The last byte passed on, for normalising a CR | LF split between two pieces. */
  private last: number | undefined;

  constructor(private readonly start: (header: Buffer) => S | Error) {}

  push(chunk: Buffer): void {
    if (this.discarded || chunk.length === 0) return;
    this.size += chunk.length;
    if (this.sink) return this.sink.append(this.normalize(chunk));
    if (this.refusal) return void this.normalize(chunk);
    this.chunks.push(chunk);
    this.held += chunk.length;
    if (this.held >= STREAM_FROM && !this.inMemory) this.begin();
  }

  /**
   * The end of DATA: the message in memory (joined once, with headroom in front: joinWithHeadroom),
   * or the sink it went to. (Bare LFs in a message in memory are the caller's to handle.)
   */
  end(): { sink: S } | { room: Buffer; data: Buffer } | { refused: Error } {
    if (this.refusal) return { refused: this.refusal };
    if (this.sink) return { sink: this.sink };
    const joined = joinWithHeadroom(this.chunks, this.held);
    this.chunks = [];
    return joined;
  }

  /** Nothing of this DATA is stored (too big, the client vanished): drops what is held, removes what was passed on. */
  discard(): void {
    if (this.discarded) return;
    this.discarded = true;
    this.chunks = [];
    void this.sink?.abort().catch(() => undefined);
  }

  private begin(): void {
    // The header block is normally in the first piece; only when it is not are the pieces joined.
    // Blank lines are the same before and after normalisation (LF → CRLF adds no line).
    const first = this.chunks[0]!;
    const joined = headerBlock(first).separated ? undefined : Buffer.concat(this.chunks, this.held);
    if (joined && !headerBlock(joined).separated) {
      this.inMemory = true;
      return;
    }
    const pieces = joined ? [joined] : this.chunks;
    this.chunks = [];
    this.held = 0;
    const head = this.normalize(pieces[0]!);
    const end = headerBlock(head).end;
    const started = this.start(head.subarray(0, end));
    if (started instanceof Error) {
      this.refusal = started;
      for (const piece of pieces.slice(1)) this.normalize(piece);
      return;
    }
    this.sink = started;
    started.append(head.subarray(end));
    for (const piece of pieces.slice(1)) started.append(this.normalize(piece));
  }

  private normalize(piece: Buffer): Buffer {
    const normalized = normalizeBareLf(piece, this.last);
    if (normalized !== piece) this.bareLf = true;
    this.last = piece[piece.length - 1];
    return normalized;
  }
}
