/** Submits one message to a running daemon over SMTP and returns its queue id. */
import { connect } from 'node:net';
import nodemailer from 'nodemailer';

export async function submit(port: number, from: string, to: string[], subject: string): Promise<string> {
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true });
  try {
    const info = await transport.sendMail({ envelope: { from, to }, from, to, subject, text: `body of ${subject}` });
    const id = /queued as ([0-9A-Z]{16})/.exec(info.response)?.[1];
    if (!id) throw new Error(`no queue id in ${info.response}`);
    return id;
  } finally {
    transport.close();
  }
}

/** Sends bytes to a unix socket (then half-closes) and resolves with everything answered before it closed. */
export function askSocket(path: string, bytes: Buffer): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(path);
    let answer = '';
    socket.on('data', (d) => (answer += d.toString()));
    socket.on('close', () => resolve(answer));
    socket.on('error', () => resolve(answer));
    socket.end(bytes);
  });
}
