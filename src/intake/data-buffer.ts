/**
 * The DATA of one SMTP message in memory, assembled with one copy of the body. A 1 MB body used
 * to be copied for every step (chunks joined, each header edit rebuilding the message, the
 * Received: field prepended): each copy of fresh memory costs page faults and garbage collection,
 * which showed in the daemon's profile. Here the chunks are joined once into a buffer with room
 * in front, and the final header block (Received: + the edited header) is written into that room
 * right before the body.
 */

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
