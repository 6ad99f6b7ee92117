/**
 * SMTP intake: one smtp-server per [[listen]] table. The gate is the allow-list and, where
 * `auth = "required"`, authentication — there is no local delivery, every recipient goes upstream,
 * so nothing else can make this an open relay. Every message ends in `spool.accept()`, and the
 * final reply to DATA is sent only after the spool reports the commit fsynced (tested by
 * test/faults/durability-order.test.ts).
 */
import { unwatchFile, watchFile } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AddressInfo } from 'node:net';
import {
  SMTPServer,
  type SMTPServerAddress,
  type SMTPServerAuthentication,
  type SMTPServerAuthenticationResponse,
  type SMTPServerDataStream,
  type SMTPServerOptions,
  type SMTPServerSession,
} from 'smtp-server';
import { verifyPassword } from '../auth/passwords.js';
import { allowMatcher, isLoopbackHost } from '../config/address.js';
import type { ListenConfig } from '../config/types.js';
import { loadTlsFiles, loadUsers } from '../config/users.js';
import { AuthBusyError, SpoolError, SubmitError } from '../errors.js';
import { localDomains, localName } from '../local/addresses.js';
import { localize, logLocalized, type LocalPolicy } from '../local/localize.js';
import type { Logger } from '../log.js';
import { addressMatches } from '../message/address-pattern.js';
import { completeHeaders, dropHeaders, headerEnd, hopCount, HOP_COUNT_LIMIT, messageIdOf } from '../message/headers.js';
import { newQueueId } from '../spool/ids.js';
import type { BodyFileWriter } from '../spool/body-files.js';
import type { Spool } from '../spool/spool.js';
import type { AcceptMeta, Envelope } from '../spool/types.js';
import { AuthLockout, ConnectionCounter, RateLimiter, SessionErrorLimit } from './limits.js';
import { assemble, DataReceiver } from './data-buffer.js';
import { acceptData, bareLfRefusal } from './message-check.js';
import { fromSmtp } from './dsn-params.js';
import { receivedHeader } from './received.js';
import { checkEnvelopeAddress, SmtpReply } from './smtp-replies.js';
import { adaptSmtpServer, type GreetPauseOption } from './smtp-server-adapter.js';

export interface IntakeSettings {
  hostname: string;
  maxMessageSize: number;
  maxRecipients: number;
}

/** AUTH user names are logged; keep them printable and short. */
const printableName = (name: string) => name.replace(/[^\x21-\x7e]/g, '?').slice(0, 64);

export class SmtpIntake {
  private server: SMTPServer | undefined;
  private allowed: (address: string) => boolean;
  private users = new Map<string, string>();
  private readonly connections = new ConnectionCounter();
  private readonly counted = new Set<string>();
  private rateLimiter: RateLimiter | undefined;
  private readonly lockout = new AuthLockout();
  private readonly authErrors = new SessionErrorLimit();
  private watching: string[] = [];

  constructor(
    public listen: ListenConfig,
    private settings: IntakeSettings,
    private readonly spool: Spool,
    private readonly log: Logger,
    /** Aliases and masquerading, as for sendmail submissions (local names like root@<hostname>). */
    private readonly localPolicy?: () => LocalPolicy,
  ) {
    adaptSmtpServer();
    this.allowed = allowMatcher(listen.allow);
    this.rateLimiter = listen.rateLimit ? new RateLimiter(listen.rateLimit) : undefined;
    if (listen.usersFile) this.users = loadUsers(listen.usersFile);
  }

  /** Applies a reloaded config's limits, allow-list, users and certificate; throws (keeping the old state) when invalid. */
  reconfigure(listen: ListenConfig, settings: IntakeSettings): void {
    const users = listen.usersFile ? loadUsers(listen.usersFile) : new Map<string, string>();
    if (listen.tls !== 'none') this.reloadCertificate(listen);
    this.users = users;
    this.settings = settings;
    if (this.server) {
      // smtp-server reads both at every EHLO, MAIL and DATA: a reload applies to the next command.
      this.server.options.maxRecipients = settings.maxRecipients;
      this.server.options.size = settings.maxMessageSize;
    }
    this.listen = listen;
    this.allowed = allowMatcher(listen.allow);
    this.rateLimiter = listen.rateLimit ? new RateLimiter(listen.rateLimit) : undefined;
  }

  /** Binds the configured address, or adopts an already-listening socket (`fd`, from systemd). */
  async start(fd?: number): Promise<AddressInfo> {
    const listen = this.listen;
    const tlsFiles = listen.tls !== 'none' && listen.cert && listen.key ? loadTlsFiles(listen.cert, listen.key) : undefined;
    const disabled = this.disabledCommands(false);
    const options: SMTPServerOptions & GreetPauseOption = {
      greetPause: listen.greetPause,
      name: this.settings.hostname,
      banner: 'mailshim',
      size: this.settings.maxMessageSize,
      // smtp-server's own cap answers the RCPT after the last with Postfix's exact words,
      // "452 4.5.3 Error: too many recipients" (smtpd_recipient_limit); a repeated address
      // does not count, as it replaces the earlier entry.
      maxRecipients: this.settings.maxRecipients,
      secure: listen.tls === 'implicit',
      ...(tlsFiles ?? {}),
      minVersion: listen.tlsMinVersion,
      // OpenSSL refuses TLS 1.0/1.1 at its default security level; old scanners need level 0.
      ...(listen.tlsMinVersion === 'TLSv1' || listen.tlsMinVersion === 'TLSv1.1' ? { ciphers: 'DEFAULT@SECLEVEL=0' } : {}),
      authMethods: ['PLAIN', 'LOGIN'],
      authOptional: listen.auth !== 'required',
      allowInsecureAuth: !listen.requireTlsForAuth,
      disabledCommands: disabled,
      hideSTARTTLS: listen.tls !== 'starttls',
      hideENHANCEDSTATUSCODES: false,
      // RFC 3461: NOTIFY/RET/ENVID/ORCPT are stored and honoured (cron's NOTIFY=NEVER).
      hideDSN: false,
      disableReverseLookup: true,
      logger: false,
      maxClients: listen.maxConnections,
      // Like Postfix's line_length_limit: longer command lines end the session with 421 4.4.2.
      maxCommandLength: 2048,
      socketTimeout: listen.idleTimeout,
      closeTimeout: 10_000,
      onConnect: (session, callback) => this.onConnect(session, callback),
      onSecure: (_socket, session, callback) => {
        session.disabledCommands = this.disabledCommands(true);
        callback();
      },
      onClose: (session) => this.onClose(session),
      onAuth: (auth, session, callback) => void this.onAuth(auth, session, callback),
      onMailFrom: (address, session, callback) => this.onMailFrom(address, session, callback),
      onRcptTo: (address, session, callback) => this.onRcptTo(address, session, callback),
      onData: (stream, session, callback) => this.onData(stream, session, callback),
    };
    const server = new SMTPServer(options);
    server.on('error', (error) => this.log.debug({ err: error, listen: listen.address }, 'smtp connection error'));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      const onError = (error: Error) => reject(error);
      server.server.once('error', onError);
      const done = () => {
        server.server.off('error', onError);
        resolve();
      };
      if (fd !== undefined) server.listen({ fd }, done);
      else server.listen(this.listen.port, this.listen.host, done);
    });
    if (listen.tls !== 'none') this.watchCertificate();
    return server.server.address() as AddressInfo;
  }

  /** Stops accepting connections; open sessions may finish (bounded by closeTimeout). */
  async close(): Promise<void> {
    for (const file of this.watching) unwatchFile(file);
    this.watching = [];
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** AUTH is not even advertised before TLS when the listener requires TLS for it. */
  private disabledCommands(secure: boolean): string[] {
    const listen = this.listen;
    const authOff = listen.auth === 'off' || (listen.requireTlsForAuth && !secure);
    return [...(authOff ? ['AUTH'] : []), ...(listen.tls !== 'starttls' || secure ? ['STARTTLS'] : [])];
  }

  private reloadCertificate(listen: ListenConfig): void {
    if (!listen.cert || !listen.key || !this.server) return;
    const files = loadTlsFiles(listen.cert, listen.key);
    this.server.updateSecureContext({ ...files, minVersion: listen.tlsMinVersion });
    this.log.info({ event: 'tls-reloaded', listen: listen.address }, 'TLS certificate reloaded');
  }

  /** Certificates renewed by certbot & co. are picked up without a restart. */
  private watchCertificate(): void {
    const files = [this.listen.cert, this.listen.key].filter((f): f is string => f !== undefined);
    for (const file of files) {
      watchFile(file, { interval: 2000, persistent: false }, (current, previous) => {
        if (current.mtimeMs === previous.mtimeMs && current.size === previous.size) return;
        try {
          this.reloadCertificate(this.listen);
        } catch (error) {
          this.log.error({ err: error, listen: this.listen.address }, 'changed TLS certificate is unusable; keeping the old one');
        }
      });
    }
    this.watching = files;
  }

  private onConnect(session: SMTPServerSession, callback: (err?: Error) => void): void {
    const ip = session.remoteAddress;
    if (!this.allowed(ip)) {
      this.log.warn({ event: 'refused', client: ip, listen: this.listen.address }, 'connection from outside the allow-list refused');
      return callback(new SmtpReply(554, '5.7.1', `${ip} is not allowed to use this server`));
    }
    if (this.lockout.isLocked(ip)) {
      return callback(new SmtpReply(421, '4.7.0', 'Too many failed authentication attempts; try again later'));
    }
    if (!this.connections.open(ip, this.listen.maxConnectionsPerIp)) {
      this.log.warn({ event: 'refused', client: ip, reason: 'max_connections_per_ip' }, 'too many connections from one client');
      return callback(new SmtpReply(421, '4.7.0', 'Too many connections from your address; try again later'));
    }
    this.counted.add(session.id);
    session.disabledCommands = this.disabledCommands(session.secure);
    callback();
  }

  private onClose(session: SMTPServerSession): void {
    this.authErrors.forget(session.id);
    if (this.counted.delete(session.id)) this.connections.close(session.remoteAddress);
  }

  private async onAuth(auth: SMTPServerAuthentication, session: SMTPServerSession, callback: (err: Error | null | undefined, response?: SMTPServerAuthenticationResponse) => void): Promise<void> {
    const ip = session.remoteAddress;
    if (this.listen.requireTlsForAuth && !session.secure && !isLoopbackHost(ip)) {
      return callback(new SmtpReply(538, '5.7.11', 'Encryption required for requested authentication mechanism'));
    }
    // A client that keeps guessing in one session is cut off as soon as its address is locked out
    // (not only at its next connection).
    if (this.lockout.isLocked(ip)) return callback(new SmtpReply(421, '4.7.0', 'Too many failed authentication attempts; try again later'));
    const username = auth.username ?? '';
    let ok: boolean;
    try {
      ok = await verifyPassword(auth.password ?? '', this.users.get(username));
    } catch (error) {
      const busy = error instanceof AuthBusyError;
      const fields = { event: 'auth', client: ip, user: printableName(username), result: busy ? 'busy' : 'error' };
      if (busy) this.log.warn(fields, 'authentication deferred: too many checks in progress');
      else this.log.error({ ...fields, err: error }, 'password check failed');
      return this.answerAuthError(session, callback, new SmtpReply(454, '4.7.0', 'Temporary authentication failure; try again later'));
    }
    if (ok) {
      this.lockout.succeed(ip);
      this.log.info({ event: 'auth', client: ip, user: printableName(username), result: 'ok' }, 'authenticated');
      return callback(null, { user: username });
    }
    const locked = this.lockout.fail(ip);
    this.log.warn({ event: 'auth', client: ip, user: printableName(username), result: 'failed', locked }, locked ? `too many failed AUTH attempts: ${ip} locked out` : 'authentication failed');
    // Same reply whether the user exists or not: no user enumeration.
    return this.answerAuthError(session, callback, new SmtpReply(535, '5.7.8', 'Authentication credentials invalid'));
  }

  /** A failed or deferred AUTH, answered under the session's error limits (SessionErrorLimit). */
  private async answerAuthError(session: SMTPServerSession, callback: (err: Error) => void, reply: SmtpReply): Promise<void> {
    const next = this.authErrors.error(session.id);
    if (next === 'close') {
      this.log.warn({ event: 'auth', client: session.remoteAddress, result: 'too-many-errors' }, `${this.authErrors.hard} failed AUTH attempts in one session: closed`);
      return callback(new SmtpReply(421, '4.7.0', 'Error: too many errors'));
    }
    if (next === 'sleep') await sleep(this.authErrors.sleepMs);
    callback(reply);
  }

  private onMailFrom(address: SMTPServerAddress, session: SMTPServerSession, callback: (err?: Error) => void): void {
    try {
      if (this.listen.auth === 'required' && !session.user) throw new SmtpReply(530, '5.7.0', 'Authentication required');
      if (address.address !== '') address.address = checkEnvelopeAddress(address.address, 'sender');
      if (this.listen.allowedSenders.length > 0 && !addressMatches(this.listen.allowedSenders, address.address)) {
        throw new SmtpReply(553, '5.7.1', 'Sender address not allowed on this listener');
      }
      if (this.rateLimiter && !this.rateLimiter.take(session.remoteAddress)) {
        this.log.warn({ event: 'rate-limited', client: session.remoteAddress }, 'client exceeded rate_limit');
        throw new SmtpReply(450, '4.7.1', 'Rate limit exceeded; try again later');
      }
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  private onRcptTo(address: SMTPServerAddress, _session: SMTPServerSession, callback: (err?: Error) => void): void {
    try {
      address.address = checkEnvelopeAddress(address.address, 'recipient');
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  private onData(stream: SMTPServerDataStream, session: SMTPServerSession, callback: (err?: Error | null, message?: string) => void): void {
    let id: string | undefined;
    let prepared: Prepared | undefined;
    // A large message goes to its body file as it arrives; the header edits are made when its header block is complete.
    const data = new DataReceiver((header) => {
      id = newQueueId();
      try {
        const message = this.prepare(id, header, session);
        const body = this.spool.receiveBody(id);
        body.append(message.received);
        body.append(message.header);
        prepared = message;
        return body;
      } catch (error) {
        return error as Error;
      }
    });
    stream.on('data', (chunk: Buffer) => {
      // Past the limit smtp-server answers 552 itself; stop holding (or writing) bytes we will not store.
      if (stream.sizeExceeded) return data.discard();
      data.push(chunk);
    });
    stream.on('error', () => {
      // The client vanished mid-DATA: nothing is stored.
      data.discard();
    });
    stream.on('end', () => {
      if (stream.sizeExceeded) {
        data.discard();
        return callback(new SmtpReply(552, '5.3.4', `Message too big (limit ${this.settings.maxMessageSize} bytes)`));
      }
      const received = data.end();
      const stored =
        'sink' in received
          ? this.storeReceived(received.sink, prepared!, data.bareLf, session)
          : 'refused' in received
            ? Promise.reject(data.bareLf ? (this.bareLfRefused(session) ?? received.refused) : received.refused)
            : this.store(id ?? newQueueId(), received.data, received.room, session);
      stored.then(
        (queueId) => callback(null, `2.0.0 Ok: queued as ${queueId}`),
        (error: unknown) => callback(error as Error),
      );
    });
  }

  /** A message kept in memory: bare LFs, then the header edits (prepare), then spool.accept(). */
  private async store(id: string, data: Buffer, room: Buffer, session: SMTPServerSession): Promise<string> {
    const accepted = acceptData(data, this.listen.bareNewline);
    if (accepted instanceof SmtpReply) throw this.refuse(accepted, session);
    // Everything below edits the header block only: the body stays where DATA put it and is not
    // copied again (src/intake/data-buffer.ts).
    const end = headerEnd(accepted);
    const message = this.prepare(id, accepted.subarray(0, end), session);
    const bytes = assemble(message.received, message.header, accepted.subarray(end), room);
    return this.spooled(message, bytes.length, session, (meta) => this.spool.accept(message.envelope, bytes, meta));
  }

  /** A message passed on to its body file as it arrived (DataReceiver): the same checks, then spool.acceptReceived(). */
  private async storeReceived(body: BodyFileWriter, message: Prepared, bareLf: boolean, session: SMTPServerSession): Promise<string> {
    const refused = bareLf ? this.bareLfRefused(session) : undefined;
    if (refused) {
      await body.abort();
      throw refused;
    }
    return this.spooled(message, body.size, session, (meta) => this.spool.acceptReceived(message.envelope, body, meta));
  }

  /** The reply refusing a message with a bare LF on a listener with bare_newline = "reject" (logged), or undefined. */
  private bareLfRefused(session: SMTPServerSession): SmtpReply | undefined {
    const refusal = bareLfRefusal(this.listen.bareNewline);
    return refusal && this.refuse(refusal, session);
  }

  private refuse(reply: SmtpReply, session: SMTPServerSession, what = 'message refused'): SmtpReply {
    this.log.warn({ event: 'rejected', client: session.remoteAddress, reason: reply.message }, what);
    return reply;
  }

  /**
   * The header block as it is stored (Bcc & co. dropped, Date:/Message-ID: added, aliases applied),
   * our Received: field for the front, and the envelope; throws the SmtpReply refusing the message.
   */
  private prepare(id: string, received: Buffer, session: SMTPServerSession): Prepared {
    let header = dropHeaders(received);
    // Postfix's cleanup counts its own Received: too; smtpd then answers 554 (5.4.0 there, 5.4.6 "routing loop" here).
    if (hopCount(header) + 1 > HOP_COUNT_LIMIT) {
      throw this.refuse(new SmtpReply(554, '5.4.6', `Too many hops (more than ${HOP_COUNT_LIMIT} Received: headers): mail loop`), session, 'mail loop refused');
    }
    let sender = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
    let recipients = session.envelope.rcptTo.map((r) => r.address);
    if (this.localPolicy) {
      const policy = this.localPolicy();
      header = completeHeaders(header, { hostname: this.settings.hostname, queueId: id, from: localName(sender, localDomains(policy.local)) !== undefined ? sender : undefined });
      try {
        const localized = localize({ sender, recipients }, header, policy);
        logLocalized(this.log, localized, { queueId: id, client: session.remoteAddress });
        ({ sender, recipients } = localized.envelope);
        header = localized.bytes;
      } catch (error) {
        if (error instanceof SubmitError) throw new SmtpReply(550, error.code === 'ENOUSER' ? '5.1.1' : '5.1.3', error.message);
        throw error;
      }
    }
    const trace = receivedHeader({
      helo: session.hostNameAppearsAs,
      clientAddress: session.remoteAddress,
      hostname: this.settings.hostname,
      protocol: session.transmissionType ?? 'ESMTP',
      queueId: id,
      recipients: session.envelope.rcptTo.map((r) => r.address),
    });
    return { id, received: Buffer.from(trace, 'latin1'), header, envelope: { sender, recipients }, messageId: messageIdOf(header) };
  }

  /** Spools the prepared message (`accept` with its meta) and logs it; a spool failure becomes 452 (full) or 451. */
  private async spooled(message: Prepared, size: number, session: SMTPServerSession, accept: (meta: AcceptMeta) => Promise<string>): Promise<string> {
    const { id, messageId, envelope } = message;
    const user = typeof session.user === 'string' ? session.user : undefined;
    try {
      const dsn = fromSmtp(session.envelope, envelope.recipients);
      await accept({
        id,
        messageId,
        origin: { protocol: 'esmtp', client: session.remoteAddress, helo: session.hostNameAppearsAs, user },
        ...(dsn ? { dsn } : {}),
      });
    } catch (error) {
      this.log.error({ err: error, client: session.remoteAddress }, 'cannot spool message; client told to retry');
      if (error instanceof SpoolError && error.code === 'ESPOOLFULL') throw new SmtpReply(452, '4.3.1', 'Insufficient system storage; try again later');
      throw new SmtpReply(451, '4.3.0', 'Local error in processing; try again later');
    }
    this.log.info(
      { event: 'accepted', queueId: id, messageId, from: envelope.sender, recipients: envelope.recipients, size, client: session.remoteAddress, user, listen: this.listen.address },
      'accepted',
    );
    return id;
  }
}

/** A message's header block as it is stored, with what goes in front of it and its envelope (SmtpIntake.prepare). */
interface Prepared {
  id: string;
  received: Buffer;
  header: Buffer;
  envelope: Envelope;
  messageId: string | undefined;
}
