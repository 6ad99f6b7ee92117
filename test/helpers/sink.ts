/** A writable stream that keeps what is written to it as text (a command's stdout in-process). */
import { Writable } from 'node:stream';

export function textSink(): Writable & { text: string } {
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      stream.text += chunk.toString();
      callback();
    },
  }) as Writable & { text: string };
  stream.text = '';
  return stream;
}
