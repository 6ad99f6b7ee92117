/**
 * Step-by-step check of an SMTP upstream for `mailshim test-upstream`: a bare TCP connect first
 * (so "firewall" and "wrong port" are told apart from TLS and SMTP problems), then nodemailer's
 * SMTPConnection for greeting + EHLO + TLS, AUTH and optionally a real message, each timed.
 */
import type { TLSSocket } from 'node:tls';
import SMTPConnection from 'nodemailer/lib/smtp-connection/index.js';
import XOAuth2 from 'nodemailer/lib/xoauth2/index.js';
import type { SmtpUpstreamConfig } from '../config/types.js';
import { certificateAdvice } from './certificate-advice.js';
import { connectProbe, networkFailure, peekCertificate, timed } from './probe.js';
import { connectionOptions, resultOfError, type OAuthTokenProvider } from './smtp-errors.js';
import type { CheckRequest, CheckStep } from './types.js';

export async function checkSmtp(config: SmtpUpstreamConfig, hostname: string, request: CheckRequest, oauth?: OAuthTokenProvider): Promise<CheckStep[]> {
  const timeout = Math.min(config.timeout, 30_000);
  const steps: CheckStep[] = [];
  steps.push(await timed(`tcp connect ${config.host}:${config.port}`, () => connectProbe({ host: config.host, port: config.port, timeoutMs: timeout }), networkFailure));
  if (!steps[0]!.ok) return steps;

  const connection = new SMTPConnection(connectionOptions(config, hostname));
  connection.on('error', () => {}); // late errors (after a step failed) are already reported
  try {
    const tlsLabel = config.tls === 'implicit' ? 'greeting + implicit TLS' : config.tls === 'starttls' ? 'greeting + STARTTLS' : 'greeting (no TLS)';
    const greeting = await timed(
      tlsLabel,
      () =>
        new Promise<string>((resolve, reject) => {
          // connect() reports failures as 'error' events, not through its callback.
          connection.once('error', reject);
          connection.connect((error) => {
            connection.off('error', reject);
            if (error) return reject(error);
            const socket = connection._socket as TLSSocket;
            const tls = connection.secure && typeof socket.getProtocol === 'function' ? `${socket.getProtocol()}, ` : 'plain text, ';
            resolve(`${tls}${String(connection.lastServerResponse || '').trim()}`);
          });
        }),
      (error) => resultOfError(error),
    );
    if (!greeting.ok && greeting.failure?.kind === 'tls' && config.tls !== 'none') {
      const cert = await peekCertificate({ host: config.host, port: config.port, starttls: config.tls === 'starttls', timeoutMs: timeout, hostname });
      const advice = certificateAdvice(greeting.failure.errorCode, config.host, config.ca !== undefined, cert);
      if (advice) greeting.advice = advice;
    }
    steps.push(greeting);
    if (!greeting.ok) return steps;

    if (oauth) {
      const token = await oauth.token(false);
      const xoauth2 = new XOAuth2({ user: oauth.user, accessToken: token.value, expires: token.expiresAt });
      const auth = await timed(
        `auth XOAUTH2 as ${oauth.user}`,
        () =>
          new Promise<string>((resolve, reject) =>
            connection.login({ user: oauth.user, oauth2: xoauth2, method: 'XOAUTH2' }, (error) => (error ? reject(error) : resolve(String(connection.lastServerResponse || 'authenticated').trim()))),
          ),
        (error) => resultOfError(error),
      );
      steps.push(auth);
      if (!auth.ok) return steps;
    } else if (config.username !== undefined) {
      const auth = await timed(
        `auth as ${config.username}`,
        () =>
          new Promise<string>((resolve, reject) =>
            connection.login({ user: config.username!, pass: config.password ?? '' }, (error) => (error ? reject(error) : resolve(String(connection.lastServerResponse || 'authenticated').trim()))),
          ),
        (error) => resultOfError(error),
      );
      steps.push(auth);
      if (!auth.ok) return steps;
    } else {
      steps.push({ name: 'auth', ok: true, durationMs: 0, detail: 'no username configured: not authenticating' });
    }

    const message = request.send;
    if (message) {
      steps.push(
        await timed(
          `send to ${message.recipients.join(', ')}`,
          () =>
            new Promise<string>((resolve, reject) =>
              connection.send({ from: message.sender, to: message.recipients }, message.body.stream(), (error, info) => {
                if (error) return reject(error);
                if (info.rejected.length > 0) return reject(Object.assign(new Error(`recipient refused: ${info.rejected.join(', ')}`), info.rejectedErrors?.[0] ?? {}));
                resolve(info.response);
              }),
            ),
          (error) => resultOfError(error),
        ),
      );
    }
  } finally {
    connection.quit();
    connection.close();
  }
  return steps;
}
