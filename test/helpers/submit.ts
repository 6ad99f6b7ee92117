/** Submits one message to a running daemon over SMTP and returns its queue id. */
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
