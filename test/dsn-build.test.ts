/**
 * buildDsn, read back with mailparser and mailsplit (helpers/dsn.ts): the RFC 3464 fields per
 * message and per recipient, RET=HDRS vs RET=FULL and the size limit, 8-bit and SMTPUTF8
 * originals (RFC 6533), the three kinds of notice, and the synchronous serialiser against
 * nodemailer's own build().
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BOUNCE_SIZE_LIMIT, buildDsn, composeDsn, dsnMessages, noticeMessages, plainTextNotice, type DsnInput } from '../src/delivery/dsn.js';
import { buildMimeSync } from '../src/message/mime-sync.js';
import type { MessageRecord, RecipientState } from '../src/spool/types.js';
import { parseDsn } from './helpers/dsn.js';

const RECEIVED = Date.UTC(2026, 10, 27, 8, 0, 0);
const TRIED = RECEIVED + 90_000;

function recipient(address: string, extra: Partial<RecipientState> = {}): RecipientState {
  return { address, status: 'failed', attempts: 1, history: [], dsnStatus: '5.1.1', lastReply: '550 5.1.1 no such user', lastAttemptAt: TRIED, upstream: 'smarthost', ...extra };
}

function record(extra: Partial<MessageRecord> = {}): MessageRecord {
  return {
    id: '238G6C9HKN5WB1HP',
    sender: 'cron@example.org',
    recipients: [],
    receivedAt: RECEIVED,
    size: 100,
    origin: { protocol: 'sendmail' },
    isBounce: false,
    held: false,
    nextAttemptAt: null,
    attempts: 1,
    ...extra,
  };
}

const ORIGINAL = Buffer.from('From: cron@example.org\r\nTo: gone@example.net\r\nSubject: nightly backup\r\n\r\nthe body of the backup report\r\n');

function input(extra: Partial<DsnInput> = {}): DsnInput {
  const failed = [recipient('gone@example.net', { orcpt: 'rfc822;list@example.net' }), recipient('old@example.net', { dsnStatus: '4.4.7', lastReply: 'connection timed out', lastClass: 'transient' })];
  return { record: record({ recipients: failed, envid: 'job-42' }), failed, originalMessage: ORIGINAL, hostname: 'relay.test', bounceFrom: 'MAILER-DAEMON@relay.test', now: new Date(TRIED), ...extra };
}

describe('a failure notice (bounce), as a bounce processor reads it', () => {
  it('is a multipart/report of delivery-status from the mailer daemon to the envelope sender', async () => {
    const dsn = await parseDsn(buildDsn(input()));
    assert.equal(dsn.mail.headers.get('content-type') && (dsn.mail.headers.get('content-type') as { value: string }).value, 'multipart/report');
    assert.equal(dsn.reportType, 'delivery-status');
    assert.deepEqual(dsn.mail.from?.value, [{ name: 'Mail Delivery System', address: 'MAILER-DAEMON@relay.test' }]);
    assert.equal((dsn.mail.to as { value: Array<{ address: string }> }).value[0]!.address, 'cron@example.org');
    assert.equal(dsn.mail.subject, 'Undelivered Mail Returned to Sender: nightly backup');
    assert.equal(dsn.mail.headers.get('auto-submitted'), 'auto-replied');
    assert.match(dsn.mail.messageId ?? '', /^<238G6C9HKN5WB1HP\.[0-9a-f]{8}\.dsn@relay\.test>$/);
    assert.deepEqual(
      dsn.parts.map((p) => p.contentType),
      ['text/plain', 'message/delivery-status', 'text/rfc822-headers'],
    );
  });

  it('per message: Reporting-MTA, Original-Envelope-Id (ENVID), Arrival-Date', async () => {
    const dsn = await parseDsn(buildDsn(input()));
    assert.equal(dsn.perMessage['reporting-mta'], 'dns; relay.test');
    assert.equal(dsn.perMessage['original-envelope-id'], 'job-42');
    assert.equal(Date.parse(dsn.perMessage['arrival-date']!), RECEIVED);
    assert.equal(dsn.perMessage['x-original-envelope-from'], 'rfc822; cron@example.org');
  });

  it('per recipient: Final-Recipient, Original-Recipient from ORCPT, Action, Status, Diagnostic-Code, Last-Attempt-Date', async () => {
    const dsn = await parseDsn(buildDsn(input()));
    assert.equal(dsn.recipients.length, 2);
    const [gone, old] = dsn.recipients;
    assert.deepEqual(
      { ...gone, 'last-attempt-date': Date.parse(gone!['last-attempt-date']!) },
      {
        'final-recipient': 'rfc822; gone@example.net',
        'original-recipient': 'rfc822;list@example.net',
        action: 'failed',
        status: '5.1.1',
        'diagnostic-code': 'smtp; 550 5.1.1 no such user',
        'last-attempt-date': TRIED,
      },
    );
    assert.equal(old!['original-recipient'], undefined, 'no ORCPT given: no Original-Recipient');
    assert.equal(old!.status, '4.4.7');
    assert.equal(old!['diagnostic-code'], 'x-mailshim; connection timed out', 'a reply that is not SMTP is not typed smtp');
    // Remote-MTA is not reported: an upstream is known by its configured name, not a DNS name.
    assert.equal(gone!['remote-mta'], undefined);
    assert.match(dsn.human, /^<gone@example\.net>: 550 5\.1\.1 no such user\r$/m);
    assert.match(dsn.human, /retried until the maximum queue lifetime passed/);
  });

  it('a reply text cannot add fields or recipients to the report (CR/LF from a remote server)', async () => {
    const evil = recipient('gone@example.net', { lastReply: '550 no\r\n\r\nFinal-Recipient: rfc822; forged@example.net\r\nAction: delivered' });
    const dsn = await parseDsn(buildDsn(input({ failed: [evil], record: record({ recipients: [evil] }) })));
    assert.equal(dsn.recipients.length, 1);
    assert.equal(dsn.recipients[0]!['final-recipient'], 'rfc822; gone@example.net');
    assert.equal(dsn.recipients[0]!.action, 'failed');
  });
});

describe('what is returned of the original', () => {
  it('RET=HDRS (and no RET): only the header, as text/rfc822-headers', async () => {
    for (const dsnRet of ['HDRS', undefined] as const) {
      const dsn = await parseDsn(buildDsn(input({ record: record({ dsnRet }) })));
      assert.equal(dsn.returned?.contentType, 'text/rfc822-headers');
      assert.equal(dsn.returned.body.toString(), 'From: cron@example.org\r\nTo: gone@example.net\r\nSubject: nightly backup\r\n');
    }
  });

  it('RET=FULL: the whole message as message/rfc822, up to BOUNCE_SIZE_LIMIT; headers beyond it', async () => {
    const full = await parseDsn(buildDsn(input({ record: record({ dsnRet: 'FULL' }) })));
    assert.equal(full.returned?.contentType, 'message/rfc822');
    assert.deepEqual(full.returned.body, ORIGINAL);
    const big = Buffer.concat([ORIGINAL, Buffer.alloc(BOUNCE_SIZE_LIMIT, 'x')]);
    const limited = await parseDsn(buildDsn(input({ record: record({ dsnRet: 'FULL' }), originalMessage: big })));
    assert.equal(limited.returned?.contentType, 'text/rfc822-headers');
    assert.ok(limited.returned.body.length < 200, 'headers only');
  });

  it('RET=FULL applies to failures only: delay and success notices return headers', async () => {
    for (const kind of ['delay', 'success'] as const) {
      const dsn = await parseDsn(buildDsn(input({ kind, record: record({ dsnRet: 'FULL' }) })));
      assert.equal(dsn.returned?.contentType, 'text/rfc822-headers', kind);
    }
  });

  it('an 8-bit body (8BITMIME) returned in full is labelled 8bit and comes back byte for byte', async () => {
    const original = Buffer.concat([Buffer.from('From: a@example.org\r\nSubject: caf\r\n\r\n'), Buffer.from('caf\xe9 cr\xe8me\r\n', 'latin1')]);
    const dsn = await parseDsn(buildDsn(input({ record: record({ dsnRet: 'FULL' }), originalMessage: original })));
    assert.equal(dsn.returned?.contentType, 'message/rfc822');
    assert.equal(dsn.returned.encoding, '8bit');
    assert.deepEqual(dsn.returned.body, original);
  });

  it('an 8-bit header that is not UTF-8 is returned quoted-printable, its bytes intact', async () => {
    const header = Buffer.from('From: a@example.org\r\nSubject: caf\xe9\r\n', 'latin1');
    const dsn = await parseDsn(buildDsn(input({ originalMessage: Buffer.concat([header, Buffer.from('\r\nbody\r\n')]) })));
    assert.equal(dsn.returned?.contentType, 'text/rfc822-headers');
    assert.equal(dsn.returned.encoding, 'quoted-printable');
    assert.deepEqual(dsn.returned.body, header);
  });

  it('an SMTPUTF8 original (UTF-8 header): message/global-headers, or message/global with RET=FULL (RFC 6533)', async () => {
    const original = Buffer.from('From: José <josé@exemple.fr>\r\nSubject: résumé du jour\r\n\r\nbonjour\r\n', 'utf8');
    const hdrs = await parseDsn(buildDsn(input({ originalMessage: original })));
    assert.equal(hdrs.returned?.contentType, 'message/global-headers');
    assert.equal(hdrs.returned.body.toString('utf8'), 'From: José <josé@exemple.fr>\r\nSubject: résumé du jour\r\n');
    assert.equal(hdrs.mail.subject, 'Undelivered Mail Returned to Sender: résumé du jour', 'the subject is an encoded word, decoded intact');
    const full = await parseDsn(buildDsn(input({ record: record({ dsnRet: 'FULL' }), originalMessage: original })));
    assert.equal(full.returned?.contentType, 'message/global');
    assert.deepEqual(full.returned.body, original);
  });

  it('a UTF-8 recipient is reported in message/global-delivery-status with the utf-8 address type', async () => {
    const failed = [recipient('用户@例子.example'), recipient('ascii@example.net')];
    const dsn = await parseDsn(buildDsn(input({ failed, record: record({ recipients: failed }) })));
    assert.equal(dsn.parts[1]!.contentType, 'message/global-delivery-status');
    assert.deepEqual(
      dsn.recipients.map((r) => r['final-recipient']),
      ['utf-8; 用户@例子.example', 'rfc822; ascii@example.net'],
    );
    assert.match(dsn.human, /<用户@例子\.example>: 550 5\.1\.1/);
  });
});

describe('delay and success notices', () => {
  it('delay: Action delayed, the status of the last transient reply, Will-Retry-Until', async () => {
    const deferred = recipient('busy@example.net', { status: 'deferred', dsnStatus: undefined, lastReply: '450 4.2.1 mailbox busy' });
    const dsn = await parseDsn(buildDsn({ ...input({ failed: [deferred] }), kind: 'delay', maxAge: 5 * 86_400_000 }));
    assert.equal(dsn.mail.subject, 'Delayed Mail (still being retried): nightly backup');
    assert.equal(dsn.recipients[0]!.action, 'delayed');
    assert.equal(dsn.recipients[0]!.status, '4.2.1');
    assert.equal(Date.parse(dsn.recipients[0]!['will-retry-until']!), RECEIVED + 5 * 86_400_000);
    assert.match(dsn.human, /THIS IS A WARNING ONLY/);
  });

  it('success: Action relayed, Status 2.0.0', async () => {
    const delivered = recipient('ops@example.net', { status: 'delivered', dsnStatus: '2.0.0', lastReply: '250 2.0.0 Ok' });
    const dsn = await parseDsn(buildDsn({ ...input({ failed: [delivered] }), kind: 'success' }));
    assert.equal(dsn.mail.subject, 'Successful Mail Delivery Report: nightly backup');
    assert.deepEqual([dsn.recipients[0]!.action, dsn.recipients[0]!.status], ['relayed', '2.0.0']);
    assert.match(dsn.human, /<ops@example\.net>: delivered via smarthost: 250 2\.0\.0 Ok/);
  });
});

describe('the notices committed with an outcome', () => {
  const settings = { hostname: 'relay.test', bounceFrom: 'MAILER-DAEMON@relay.test' };
  it('go from the null reverse-path to the sender, marked as bounces, for the recipients that want them', async () => {
    const quiet = recipient('quiet@example.net', { notify: ['NEVER'] });
    const loud = recipient('loud@example.net', { notify: ['FAILURE'] });
    const [notice, ...more] = dsnMessages(record({ recipients: [quiet, loud] }), [quiet, loud], () => ORIGINAL, settings, TRIED);
    assert.equal(more.length, 0);
    assert.deepEqual(notice!.envelope, { sender: '', recipients: ['cron@example.org'] });
    assert.equal(notice!.meta.isBounce, true);
    const dsn = await parseDsn(notice!.bytes);
    assert.deepEqual(
      dsn.recipients.map((r) => r['final-recipient']),
      ['rfc822; loud@example.net'],
    );
  });

  it('never for a bounce or the null sender (mail loops)', () => {
    const r = recipient('gone@example.net');
    assert.deepEqual(
      dsnMessages(record({ isBounce: true, recipients: [r] }), [r], () => ORIGINAL, settings, TRIED),
      [],
    );
    assert.deepEqual(
      noticeMessages(record({ sender: '', recipients: [r] }), 'failure', [r], () => ORIGINAL, settings, TRIED),
      [],
    );
  });

  it('read the original only to build a notice: not for a bounce, nor when no recipient wants one', () => {
    let reads = 0;
    const original = () => (reads++, ORIGINAL);
    const r = recipient('gone@example.net');
    const quiet = recipient('quiet@example.net', { notify: ['NEVER'] });
    dsnMessages(record({ isBounce: true, recipients: [r] }), [r], original, settings, TRIED);
    dsnMessages(record({ recipients: [quiet] }), [quiet], original, settings, TRIED);
    noticeMessages(record({ recipients: [r] }), 'success', [r], original, settings, TRIED);
    assert.equal(reads, 0);
    assert.equal(dsnMessages(record({ recipients: [r] }), [r], original, settings, TRIED).length, 1);
    assert.equal(reads, 1);
  });
});

describe('serialising', () => {
  it('buildMimeSync writes exactly what nodemailer build() writes, for every kind of part', async () => {
    const cases: DsnInput[] = [
      input(),
      input({ record: record({ dsnRet: 'FULL' }), originalMessage: Buffer.from('Subject: caf\xe9\r\n\r\ncr\xe8me\r\n', 'latin1') }),
      input({ originalMessage: Buffer.from('Subject: caf\xe9 ' + 'x'.repeat(200) + '\r\n\r\nbody\r\n', 'latin1') }),
      input({ originalMessage: Buffer.from('Subject: résumé\r\n\r\nbonjour\r\n', 'utf8') }),
      input({ failed: [recipient('用户@例子.example', { lastReply: '550 ' + 'long reply '.repeat(30) })] }),
    ];
    for (const [i, c] of cases.entries()) {
      const tree = composeDsn(c);
      const sync = buildMimeSync(tree);
      assert.deepEqual(sync.toString('latin1'), (await tree.build()).toString('latin1'), `case ${i}`);
    }
  });

  it('the plain-text form decodes quoted-printable parts', () => {
    const header = Buffer.from('Subject: caf\xe9\r\n', 'latin1');
    const plain = plainTextNotice(buildDsn(input({ originalMessage: Buffer.concat([header, Buffer.from('\r\nbody\r\n')]) })))!;
    assert.ok(plain.includes(header), 'the returned header bytes, decoded');
    assert.match(plain.toString('latin1'), /^Content-Type: text\/plain; charset=utf-8$/m);
  });
});
