/**
 * Which bytes one SMTP session carries, decided from that session's EHLO (the last one, after
 * STARTTLS when there was one): the message fitted for 8-bit (correctly declared 8-bit text kept as
 * it was written) with BODY=8BITMIME when the server offers 8BITMIME; the 7-bit conversion
 * (src/message/wire.ts) when it does not. This is what Postfix's SMTP client does: it sends 8-bit
 * as it is to a server that announces 8BITMIME and converts 8BITMIME to 7BIT only for one that does
 * not (postconf(5), disable_mime_output_conversion: "Mime output conversion is needed when the
 * destination does not advertise 8BITMIME support",
 * https://www.postfix.org/postconf.5.html#disable_mime_output_conversion). Sending as is keeps what
 * the program wrote: a DKIM signature it made still verifies, the reader's raw source shows its
 * text rather than quoted-printable, and no CPU goes on re-encoding.
 *
 * Small on purpose: it takes the message, delivery's fitting and the extensions, and knows nothing
 * of how the body reaches the connection (src/upstreams/smtp.ts, src/upstreams/nodemailer-adapter.ts).
 */
import { bufferBody, type MessageBody } from '../message/body.js';
import type { WireResult } from '../message/wire.js';

export type SessionBody = { body: MessageBody } | { unsupported: string };

/**
 * @param body the message as delivery handed it over
 * @param fitFor delivery's fitting for a session with or without 8-bit (OutboundMessage.fitFor);
 *   absent: the message is already fitted for an upstream that always takes 8-bit (gmail/m365 over
 *   SMTP), the bytes go as they are
 * @param extensions the EHLO keywords of the session that will carry the message (nodemailer's list)
 */
export async function bodyForSession(body: MessageBody, fitFor: ((eightBit: boolean) => Promise<WireResult>) | undefined, extensions: readonly string[]): Promise<SessionBody> {
  if (!fitFor) return { body };
  const fitted = await fitFor(extensions.includes('8BITMIME'));
  return 'unsupported' in fitted ? { unsupported: fitted.unsupported } : { body: bufferBody(fitted.raw) };
}
