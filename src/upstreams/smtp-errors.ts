/**
 * What the SMTP upstream and its `test-upstream` check share: how to reach and secure the server,
 * and how a nodemailer error maps to an attempt result. Kept apart from smtp.ts so the check and
 * the REST transport (CERT_ERROR) do not import the upstream itself.
 */
import { isIP } from 'node:net';
import type { SmtpUpstreamConfig } from '../config/types.js';
import { TLS_CONFIG_CODE } from './tls-codes.js';
import { parseReply, type AttemptResult, type SmtpStage } from './types.js';
import type { NodemailerError } from 'nodemailer';

// nodemailer's own error type (code, response, responseCode, command, rejectedErrors, timeoutType, ...);
// a type import, so REST-only daemons still do not load nodemailer.
export type { NodemailerError } from 'nodemailer';

/** Node's TLS error codes that mean "this certificate is not acceptable" (kept for the REST transport). */
export const CERT_ERROR = TLS_CONFIG_CODE;

export function stageOf(command: string | undefined): SmtpStage {
  const c = (command ?? '').toUpperCase();
  if (c.startsWith('AUTH')) return 'auth';
  if (c.startsWith('MAIL')) return 'mail';
  if (c.startsWith('RCPT')) return 'rcpt';
  if (c.startsWith('DATA') || c === 'MESSAGE') return 'data';
  return 'connect';
}

/**
 * Translates one nodemailer error into what happened, by its codes (never its message text):
 * the socket's own code (`originalCode`: ECONNRESET, CERT_HAS_EXPIRED, ...) first, then
 * nodemailer's (ETLS, EAUTH, ESOCKET, ...).
 */
export function resultOfError(error: NodemailerError, size?: number): AttemptResult {
  const reply = error.response ? parseReply(error.response) : undefined;
  if (reply && error.responseCode) {
    return { kind: 'smtp', code: reply.code, enhanced: reply.enhanced, text: reply.text, stage: stageOf(error.command) };
  }
  if (error.code === 'EMESSAGE' && error.command === 'MAIL FROM') {
    // nodemailer refused to send a message larger than the server's EHLO SIZE: a permanent
    // refusal, as Postfix's smtp client reports it, and the body was never uploaded.
    const limit = /(\d+)\s*$/.exec(error.message)?.[1];
    return { kind: 'smtp', code: 552, enhanced: '5.3.4', text: `message size ${size ?? '?'} exceeds size limit ${limit ?? '?'} of server`, stage: 'mail' };
  }
  const system = error.originalCode ?? '';
  if (TLS_CONFIG_CODE.test(system)) return { kind: 'tls', errorCode: system, message: error.message };
  if (error.code === 'ETLS' || error.timeoutType === 'UPGRADE_TIMEOUT') {
    // The handshake failed without a certificate verdict (closed, reset, timed out): the network.
    return { kind: 'tls', errorCode: system || error.code || 'ETLS', message: error.message, timeout: error.timeoutType !== undefined };
  }
  if (error.code === 'EAUTH') {
    return { kind: 'smtp', code: 535, enhanced: '5.7.8', text: error.message, stage: 'auth' };
  }
  return { kind: 'network', errorCode: system || error.code || 'EUNKNOWN', message: error.message };
}

/** How to reach and secure the upstream; shared by delivery and `test-upstream`. */
export function connectionOptions(config: SmtpUpstreamConfig, hostname: string) {
  const timeout = Math.min(config.timeout, 30_000);
  return {
    host: config.host,
    port: config.port,
    secure: config.tls === 'implicit',
    requireTLS: config.tls === 'starttls',
    ignoreTLS: config.tls === 'none',
    name: hostname,
    connectionTimeout: timeout,
    greetingTimeout: timeout,
    // Strictly longer than the greeting timeout: a server that never greets is reported as such
    // ("Greeting never received", the implicit-TLS hint), not as an idle socket; the two used to race.
    socketTimeout: config.timeout + 1000,
    // SNI takes host names only (RFC 6066); an IP literal is verified against the certificate's IP SANs.
    tls: { ...(config.ca ? { ca: config.ca } : {}), ...(isIP(config.host) ? {} : { servername: config.host }), minVersion: 'TLSv1.2' as const },
  };
}

/**
 * SASL XOAUTH2 instead of a password (the m365 and gmail upstreams' SMTP path): the mailbox to
 * authenticate as and where its access token comes from. `renew` is true when the server refused
 * the previous token; the result's expiresAt tells nodemailer when to ask again.
 */
export interface OAuthTokenProvider {
  user: string;
  token(renew: boolean): Promise<{ value: string; expiresAt: number }>;
}
