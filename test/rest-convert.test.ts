/** MIME → JSON conversion (mailparser) and the envelope-recipient rule. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { convertMessage, splitRecipients, type ConvertedMessage, type ProviderRules } from '../src/upstreams/rest/convert.js';

const RULES: ProviderRules = { provider: 'Test', reserved: new Set(['x-reserved']), regenerated: new Set(['x-mailer']), inlineImages: true };

const msg = (headers: string, body = 'hello\r\n') => Buffer.from(`${headers.trim().split('\n').join('\r\n')}\r\n\r\n${body}`);

async function converted(raw: Buffer, rules = RULES): Promise<ConvertedMessage> {
  const result = await convertMessage(raw, rules);
  assert.ok('message' in result, 'unsupported' in result ? result.unsupported : '');
  return result.message;
}

async function unsupported(raw: Buffer, rules = RULES): Promise<string> {
  const result = await convertMessage(raw, rules);
  assert.ok('unsupported' in result, 'expected the message to be unsupported');
  return result.unsupported;
}

const signed = msg(
  `From: a@example.org
To: b@example.net
Subject: signed
MIME-Version: 1.0
Content-Type: multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256; boundary="b1"`,
  '--b1\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b1\r\nContent-Type: application/pkcs7-signature; name="smime.p7s"\r\nContent-Transfer-Encoding: base64\r\n\r\nAAAA\r\n--b1--\r\n',
);

describe('convertMessage', () => {
  it('refuses S/MIME and PGP/MIME signed or encrypted messages (rebuilding them breaks the signature)', async () => {
    assert.match(await unsupported(signed), /multipart\/signed/);
    assert.match(await unsupported(msg('From: a@example.org\nTo: b@example.net\nContent-Type: application/pkcs7-mime; smime-type=enveloped-data', 'AAAA')), /pkcs7-mime/);
    assert.match(
      await unsupported(
        msg(
          'From: a@example.org\nTo: b@example.net\nContent-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary=x',
          '--x\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n--x--\r\n',
        ),
      ),
      /multipart\/encrypted/,
    );
    assert.match(await unsupported(msg('From: a@example.org\nTo: b@example.net', '-----BEGIN PGP SIGNED MESSAGE-----\r\nHash: SHA256\r\n\r\nhi\r\n')), /inline PGP/);
  });

  it('refuses a header the provider reserves, naming it', async () => {
    assert.match(await unsupported(msg('From: a@example.org\nTo: b@example.net\nX-Reserved: 1')), /does not allow setting the X-Reserved header/);
  });

  it('refuses a message without exactly one From address', async () => {
    assert.match(await unsupported(msg('To: b@example.net')), /no From/);
    assert.match(await unsupported(msg('From: a@example.org, c@example.org\nTo: b@example.net')), /exactly one From/);
  });

  it('refuses a message without a subject where the API requires one', async () => {
    assert.match(await unsupported(msg('From: a@example.org\nTo: b@example.net'), { ...RULES, requiresSubject: true }), /requires a subject/);
    assert.equal((await converted(msg('From: a@example.org\nTo: b@example.net'))).subject, '');
  });

  it('keeps custom headers in order, drops structural/trace ones and those the provider regenerates', async () => {
    const m = await converted(
      msg(
        'Received: from x\nFrom: "A, Person" <a@example.org>\nTo: b@example.net\nMessage-ID: <m@x>\nX-Mailer: thing\nX-Custom: one\n two\nDate: Mon, 1 Jan 2026 00:00:00 +0000\nAuto-Submitted: auto-generated',
      ),
    );
    assert.deepEqual(m.headers, [
      { name: 'Message-ID', value: '<m@x>' },
      { name: 'X-Custom', value: 'one two' },
      { name: 'Auto-Submitted', value: 'auto-generated' },
    ]);
    assert.deepEqual(m.from, { address: 'a@example.org', name: 'A, Person' });
  });

  it('never invents a text or html alternative, and keeps cid: links', async () => {
    const html = await converted(msg('From: a@example.org\nTo: b@example.net\nContent-Type: text/html', '<p><img src="cid:x@y"></p>'));
    assert.equal(html.text, undefined);
    assert.equal(html.html, '<p><img src="cid:x@y"></p>');
    const text = await converted(msg('From: a@example.org\nTo: b@example.net'));
    assert.equal(text.html, undefined);
    assert.equal(text.text?.trim(), 'hello');
  });

  it('names attachments that have no file name after their type, and refuses inline parts where the provider has no Content-ID', async () => {
    const raw = msg(
      'From: a@example.org\nTo: b@example.net\nContent-Type: multipart/related; boundary=r',
      '--r\r\nContent-Type: text/html\r\n\r\n<img src="cid:img1@x">\r\n--r\r\nContent-Type: image/png\r\nContent-ID: <img1@x>\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--r--\r\n',
    );
    const m = await converted(raw);
    assert.equal(m.attachments.length, 1);
    assert.equal(m.attachments[0]!.filename, 'part-1.png');
    assert.equal(m.attachments[0]!.contentId, 'img1@x');
    assert.equal(m.attachments[0]!.inline, true);
    assert.match(await unsupported(raw, { ...RULES, inlineImages: false }), /cannot send inline parts with a Content-ID \(cid:img1@x\)/);
    assert.match(await unsupported(raw, { ...RULES, attachmentExtensions: new Set(['pdf']) }), /does not accept attachments named \*\.png/);
  });
});

describe('splitRecipients (the envelope decides)', () => {
  const base: ConvertedMessage = {
    from: { address: 'a@example.org' },
    replyTo: [],
    subject: '',
    headerTo: [{ address: 'Bob@Example.net', name: 'Bob' }, { address: 'dave@example.net' }],
    headerCc: [{ address: 'carol@example.com', name: 'Carol' }],
    attachments: [],
    headers: [],
  };

  it('keeps To/Cc roles and names, makes envelope-only recipients Bcc, and drops header-only addresses', () => {
    assert.deepEqual(splitRecipients(base, ['bob@example.net', 'carol@example.com', 'erin@example.net'], 50), [
      { to: [{ address: 'bob@example.net', name: 'Bob' }], cc: [{ address: 'carol@example.com', name: 'Carol' }], bcc: [{ address: 'erin@example.net' }] },
    ]);
  });

  it('sends each recipient its own request when none is in To (APIs require a To)', () => {
    assert.deepEqual(splitRecipients(base, ['carol@example.com', 'x@example.net'], 50), [
      { to: [{ address: 'carol@example.com', name: 'Carol' }], cc: [], bcc: [] },
      { to: [{ address: 'x@example.net' }], cc: [], bcc: [] },
    ]);
  });

  it('cuts groups at the per-request limit and delivers duplicates once', () => {
    const envelope = ['bob@example.net', 'BOB@example.net', 'a1@x.org', 'a2@x.org', 'a3@x.org'];
    const groups = splitRecipients(base, envelope, 2);
    const all = groups.flatMap((g) => [...g.to, ...g.cc, ...g.bcc].map((a) => a.address));
    assert.deepEqual(all, ['bob@example.net', 'a1@x.org', 'a2@x.org', 'a3@x.org']);
    assert.ok(groups.every((g) => g.to.length > 0 && g.to.length + g.cc.length + g.bcc.length <= 2));
  });
});
