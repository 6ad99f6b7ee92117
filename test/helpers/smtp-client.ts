/** A raw-socket SMTP client: sends exactly the bytes a test gives and returns each reply. */
import { connect, type Socket } from 'node:net';

export class RawSmtp {
  private buffer = '';
  private waiting: Array<() => void> = [];
  closed = false;

  private constructor(readonly socket: Socket) {
    socket.on('data', (d) => {
      this.buffer += d.toString('latin1');
      for (const w of this.waiting.splice(0)) w();
    });
    socket.on('close', () => {
      this.closed = true;
      for (const w of this.waiting.splice(0)) w();
    });
    socket.on('error', () => {});
  }

  static async open(port: number, host = '127.0.0.1', localAddress?: string): Promise<RawSmtp> {
    const socket = connect({ port, host, localAddress });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('error', reject);
    });
    return new RawSmtp(socket);
  }

  /** Next complete reply (multi-line replies joined with \n). */
  async reply(timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = /^((?:\d{3}-[^\n]*\n)*\d{3}(?: [^\n]*)?)\r?\n/.exec(this.buffer);
      if (match) {
        this.buffer = this.buffer.slice(match[0].length);
        return match[1]!.replace(/\r/g, '');
      }
      if (this.closed) return '';
      if (Date.now() > deadline) throw new Error(`no SMTP reply; buffer: ${JSON.stringify(this.buffer)}`);
      await new Promise<void>((resolve) => {
        this.waiting.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  async command(line: string): Promise<string> {
    this.write(line + '\r\n');
    return this.reply();
  }

  close(): void {
    this.socket.destroy();
  }
}

/** The greeting a client connecting from `localAddress` gets ("" when the server closes at once). */
export async function greetingFrom(port: number, localAddress: string, host = '127.0.0.1'): Promise<string> {
  const client = await RawSmtp.open(port, host, localAddress);
  try {
    return await client.reply();
  } finally {
    client.close();
  }
}
