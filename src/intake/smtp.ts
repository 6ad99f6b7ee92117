/**
 * SMTP intake: one smtp-server per [[listen]] table. Every message ends in `spool.accept()`, and
 * the final reply to DATA is sent only after the spool reports the commit fsynced.
 */
import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerAddress, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import type { ListenConfig } from '../config/types.js';
import { allowMatcher } from '../config/address.js';
import { SpoolError } from '../errors.js';
import type { Logger } from '../log.js';
import { messageIdOf } from '../message/headers.js';
import { newQueueId } from '../spool/ids.js';
import type { Spool } from '../spool/spool.js';
import { findBareLineBreak } from './data-check.js';
import { receivedHeader } from './received.js';
import { installEnhancedReplyCodes, SmtpReply } from './smtp-replies.js';

export interface IntakeSettings {
  hostname: string;
  maxMessageSize: number;
  maxRecipients: number;
}

/** RFC 5321 limits: 64 octets local part, 254 octets path. No control characters. */
function checkAddress(address: string, role: 'sender' | 'recipient'): void {
  if (/[\x00-\x1f\x7f]/.test(address)) throw new SmtpReply(501, '5.1.7', `Bad ${role} address syntax`);
  if (address.length > 254) throw new SmtpReply(501, role === 'sender' ? '5.1.7' : '5.1.3', `${role} address too long`);
  const at = address.lastIndexOf('@');
  if (role === 'recipient' && (at < 1 || at === address.length - 1)) {
    throw new SmtpReply(553, '5.1.3', 'Recipient address must be a full address (user@domain)');
  }
}

export class SmtpIntake {
  private server: SMTPServer | undefined;
  private allowed: (address: string) => boolean;

  constructor(
    public listen: ListenConfig,
    private settings: IntakeSettings,
    private readonly spool: Spool,
    private readonly log: Logger,
  ) {
    installEnhancedReplyCodes();
    this.allowed = allowMatcher(listen.allow);
  }

  /** Applies a reloaded config's limits and allow-list to new connections. */
  reconfigure(listen: ListenConfig, settings: IntakeSettings): void {
    this.listen = listen;
    this.settings = settings;
    this.allowed = allowMatcher(listen.allow);
  }

  /** Binds the configured address, or adopts an already-listening socket (`fd`, from systemd). */
  async start(fd?: number): Promise<AddressInfo> {
    const server = new SMTPServer({
      name: this.settings.hostname,
      banner: 'mailshim',
      size: this.settings.maxMessageSize,
      authOptional: true,
      disabledCommands: ['AUTH', 'STARTTLS'],
      hideSTARTTLS: true,
      hideENHANCEDSTATUSCODES: false,
      hideDSN: true,
      disableReverseLookup: true,
      logger: false,
      closeTimeout: 10_000,
      onConnect: (session, callback) => this.onConnect(session, callback),
      onMailFrom: (address, session, callback) => this.onMailFrom(address, session, callback),
      onRcptTo: (address, session, callback) => this.onRcptTo(address, session, callback),
      onData: (stream, session, callback) => this.onData(stream, session, callback),
    });
    server.on('error', (error) => this.log.warn({ err: error, listen: this.listen.address }, 'smtp connection error'));
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
    return server.server.address() as AddressInfo;
  }

  /** Stops accepting connections; open sessions may finish (bounded by closeTimeout). */
  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private onConnect(session: SMTPServerSession, callback: (err?: Error) => void): void {
    if (!this.allowed(session.remoteAddress)) {
      this.log.warn({ event: 'refused', client: session.remoteAddress, listen: this.listen.address }, 'connection from outside the allow-list refused');
      return callback(new SmtpReply(554, '5.7.1', `${session.remoteAddress} is not allowed to use this server`));
    }
    callback();
  }

  private onMailFrom(address: SMTPServerAddress, _session: SMTPServerSession, callback: (err?: Error) => void): void {
    try {
      if (address.address !== '') checkAddress(address.address, 'sender');
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  private onRcptTo(address: SMTPServerAddress, session: SMTPServerSession, callback: (err?: Error) => void): void {
    try {
      checkAddress(address.address, 'recipient');
      if (session.envelope.rcptTo.length >= this.settings.maxRecipients) {
        throw new SmtpReply(452, '4.5.3', `Too many recipients (at most ${this.settings.maxRecipients} per message)`);
      }
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  private onData(stream: SMTPServerDataStream, session: SMTPServerSession, callback: (err?: Error | null, message?: string) => void): void {
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on('data', (chunk: Buffer) => {
      // Past the limit smtp-server answers 552 itself; stop holding bytes we will not store.
      if (stream.sizeExceeded) return;
      chunks.push(chunk);
      size += chunk.length;
    });
    stream.on('error', () => {
      /* client vanished mid-DATA: nothing was stored, nothing to do */
    });
    stream.on('end', () => {
      if (stream.sizeExceeded) return callback(new SmtpReply(552, '5.3.4', `Message too big (limit ${this.settings.maxMessageSize} bytes)`));
      const data = Buffer.concat(chunks, size);
      chunks.length = 0;
      this.store(data, session).then(
        (id) => callback(null, `2.0.0 Ok: queued as ${id}`),
        (error: unknown) => callback(error as Error),
      );
    });
  }

  private async store(data: Buffer, session: SMTPServerSession): Promise<string> {
    const bare = findBareLineBreak(data);
    if (bare !== -1) {
      this.log.warn({ event: 'rejected', client: session.remoteAddress, offset: bare }, 'message with bare CR or LF refused (SMTP smuggling defence)');
      throw new SmtpReply(554, '5.6.0', 'Message contains bare CR or LF line endings; use CRLF');
    }
    const sender = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
    const recipients = session.envelope.rcptTo.map((r) => r.address);
    const id = newQueueId();
    const protocol = (session.transmissionType as string | undefined) ?? 'ESMTP';
    const received = receivedHeader({
      helo: session.hostNameAppearsAs,
      clientAddress: session.remoteAddress,
      hostname: this.settings.hostname,
      protocol,
      queueId: id,
      recipients,
    });
    const bytes = Buffer.concat([Buffer.from(received, 'latin1'), data]);
    const messageId = messageIdOf(data);
    try {
      await this.spool.accept({ sender, recipients }, bytes, { id, messageId, origin: { protocol: 'esmtp', client: session.remoteAddress, helo: session.hostNameAppearsAs } });
    } catch (error) {
      this.log.error({ err: error, client: session.remoteAddress }, 'cannot spool message; client told to retry');
      if (error instanceof SpoolError && error.code === 'ESPOOLFULL') throw new SmtpReply(452, '4.3.1', 'Insufficient system storage; try again later');
      throw new SmtpReply(451, '4.3.0', 'Local error in processing; try again later');
    }
    this.log.info(
      { event: 'accepted', queueId: id, messageId, from: sender, recipients, size: bytes.length, client: session.remoteAddress, listen: this.listen.address },
      'accepted',
    );
    return id;
  }
}
