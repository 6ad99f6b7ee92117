/** src/message/wire.ts: any spooled message made legal for the wire without losing a byte. */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import mailsplit from '@zone-eu/mailsplit';
import fc from 'fast-check';
import libqp from 'libqp';
import { simpleParser } from 'mailparser';
import { fitForWire, guessCharset, LineScanner, scan, type WireResult } from '../src/message/wire.js';
import { strictRefusal } from './helpers/capture.js';

const SEVEN_BIT = { eightBit: false };
const EIGHT_BIT = { eightBit: true };

function fitted(result: WireResult): Buffer {
  if ('unsupported' in result) throw new Error(`unsupported: ${result.unsupported}`);
  return result.raw;
}

/** Leaf bodies in order, transfer encoding undone (mailsplit parses, libqp/Buffer decode: not the code under test). */
async function leaves(raw: Buffer): Promise<Array<{ contentType: string; charset: string; bytes: Buffer }>> {
  const out: Array<{ contentType: string; charset: string; encoding: string; body: Buffer[] }> = [];
  const splitter = new mailsplit.Splitter({ maxHeadSize: 64 * raw.length + 1024 });
  splitter.on('data', (d: { type: string; multipart?: string | false; contentType?: string | false; charset?: string | false; encoding?: string | false; value?: Buffer }) => {
    if (d.type === 'node' && !d.multipart) out.push({ contentType: d.contentType || '', charset: d.charset || '', encoding: d.encoding || '', body: [] });
    else if (d.type === 'node') out.push({ contentType: 'multipart', charset: '', encoding: '', body: [] });
    else if (d.type === 'body') out[out.length - 1]!.body.push(d.value!);
  });
  const done = once(splitter, 'end');
  splitter.end(raw);
  await done;
  return out
    .filter((l) => l.contentType !== 'multipart')
    .map((l) => {
      const body = Buffer.concat(l.body);
      const bytes = l.encoding === 'base64' ? Buffer.from(body.toString('latin1'), 'base64') : l.encoding === 'quoted-printable' ? libqp.decode(body) : body;
      return { contentType: l.contentType, charset: l.charset, bytes };
    });
}

const message = (header: string, body: Buffer | string) => Buffer.concat([Buffer.from(header.replace(/\n/g, '\r\n') + '\r\n', 'latin1'), Buffer.isBuffer(body) ? body : Buffer.from(body, 'latin1')]);

describe('wire: making messages legal on the way out', () => {
  it('leaves a legal 7-bit message alone (same buffer)', async () => {
    const raw = message('Subject: x\n', 'hello\r\n');
    const result = await fitForWire(raw, SEVEN_BIT);
    assert.ok(!('unsupported' in result) && result.raw === raw && !result.changed);
  });

  it('any body bytes: legal 7-bit on the wire, and every byte decodes back (property)', async () => {
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 3000 }),
      fc
        .array(fc.oneof(fc.constantFrom('\r', '\n', '\r\n', '\0', '=', ' ', '\t', '-', '.', '\xe9', '\x82\xa0'), fc.string({ maxLength: 1200 })), { maxLength: 20 })
        .map((parts) => Buffer.from(parts.join(''), 'latin1')),
    );
    const headers = fc.constantFrom(
      'Subject: plain\n',
      'Subject: cron\nMIME-Version: 1.0\nContent-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: 8bit\n',
      'Content-Type: application/octet-stream\nContent-Transfer-Encoding: binary\n',
    );
    await fc.assert(
      fc.asyncProperty(headers, bytes, async (header, body) => {
        const raw = message(header, Buffer.from(body));
        const out = fitted(await fitForWire(raw, SEVEN_BIT));
        assert.equal(strictRefusal(out, undefined), undefined);
        const [leaf] = await leaves(out);
        assert.ok(leaf!.bytes.equals(Buffer.from(body)), 'decoded body equals the stored body');
      }),
      { numRuns: 300 },
    );
  });

  it('any bytes in the parts of a multipart: legal, structure kept, each part decodes back (property)', async () => {
    // (not empty: mailsplit, which reads the result here, reports an empty part as the CRLF before the boundary)
    const part = fc.oneof(
      fc.uint8Array({ minLength: 1, maxLength: 1500 }),
      fc.string({ minLength: 1, maxLength: 1500 }).map((s) => Buffer.from(s, 'latin1')),
    );
    const type = fc.constantFrom('text/plain', 'text/html; charset=utf-8', 'application/octet-stream');
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(type, part), { minLength: 1, maxLength: 4 }), fc.boolean(), async (parts, eightBit) => {
        const boundary = '=_mailshim-test-3f9c2a';
        const body = parts.map(([t, bytes]) => Buffer.concat([Buffer.from(`--${boundary}\r\nContent-Type: ${t}\r\nContent-Transfer-Encoding: 8bit\r\n\r\n`), Buffer.from(bytes), Buffer.from('\r\n')]));
        const raw = message(`Subject: p\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="${boundary}"\n`, Buffer.concat([...body, Buffer.from(`--${boundary}--\r\n`)]));
        const out = fitted(await fitForWire(raw, { eightBit }));
        const refusal = strictRefusal(out, eightBit ? '8BITMIME' : undefined);
        assert.equal(refusal, undefined);
        const decoded = await leaves(out);
        assert.deepEqual(
          decoded.map((l) => l.bytes.toString('hex')),
          parts.map(([, bytes]) => Buffer.from(bytes).toString('hex')),
        );
      }),
      { numRuns: 200 },
    );
  });

  it('with 8-bit allowed, keeps correctly declared 8-bit text as it is and fixes only the rest', async () => {
    const utf8 = message('Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n', Buffer.from('Grüße\r\n'));
    const same = await fitForWire(utf8, EIGHT_BIT);
    assert.ok(!('unsupported' in same) && same.raw === utf8);
    // declared UTF-8 but Latin-1 bytes (cron's header over a Latin-1 program): relabelled, re-encoded
    const latin1 = message('Content-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: 8bit\n', 'Gr\xfc\xdfe\r\n');
    const out = fitted(await fitForWire(latin1, EIGHT_BIT));
    assert.equal(strictRefusal(out, undefined), undefined);
    assert.equal((await simpleParser(out)).text, 'Grüße\n');
    // 8-bit without any declaration gets one
    const bare = message('Subject: x\n', Buffer.from('naïve\r\n'));
    const labelled = fitted(await fitForWire(bare, EIGHT_BIT));
    assert.match(labelled.toString(), /^MIME-Version: 1\.0\r\nContent-Type: text\/plain; charset=utf-8\r\n/m);
    assert.equal((await simpleParser(labelled)).text, 'naïve\n');
  });

  it('re-encodes with quoted-printable for mostly-ASCII text and base64 otherwise, keeping the trace headers on top', async () => {
    const progress = fitted(await fitForWire(message('Received: by relay.test\nSubject: x\n', ' 10%\r 50%\r100%\r\n'), SEVEN_BIT)).toString();
    assert.match(
      progress,
      /^Received: by relay\.test\r\nSubject: x\r\nMIME-Version: 1\.0\r\nContent-Type: text\/plain; charset=us-ascii\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n 10%=0D 50%=0D100%\r\n$/,
    );
    const sjis = Buffer.from('836f8362834e83418362837682aa8aae97b982b582dc82b582bd81420a'.repeat(3), 'hex'); // バックアップが完了しました。\n
    const japanese = fitted(await fitForWire(message('Subject: x\n', sjis), SEVEN_BIT)).toString();
    assert.match(japanese, /charset=shift_jis\r\nContent-Transfer-Encoding: base64\r\n/);
    assert.equal((await simpleParser(Buffer.from(japanese))).text, 'バックアップが完了しました。\n'.repeat(3));
  });

  it('guesses charsets without mistaking Latin-1 for Japanese', () => {
    assert.equal(guessCharset(Buffer.from('plain')), 'us-ascii');
    assert.equal(guessCharset(Buffer.from('Grüße')), 'utf-8');
    // ログを確認してください
    assert.equal(guessCharset(Buffer.from('838d834f82f08a6d944682b582c482ad82be82b382a2', 'hex')), 'shift_jis');
    assert.equal(guessCharset(Buffer.from('a5eda5b0a4f2b3cec7a7a4b7a4c6a4afa4c0a4b5a4a4', 'hex')), 'euc-jp');
    for (const latin of ['école élève état', 'Größe Prüfsumme Maß', 'Año señal ¿sí?', 'déjà vu - café crème']) {
      assert.equal(guessCharset(Buffer.from(latin, 'latin1')), 'iso-8859-1', latin);
    }
  });

  it('multipart: fixes each leaf, base64 for a non-text 8-bit part, recurses into message/rfc822, keeps the structure', async () => {
    const raw = message(
      'Subject: m\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=XX\n',
      'preamble\r\n--XX\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nfine\r\n--XX\r\nContent-Type: text/plain\r\n\r\nab\rc\r\n--XX\r\n' +
        'Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\x00\x01\xff\xfe\r\n--XX\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner \xe9\r\n--XX--\r\n',
    );
    const out = fitted(await fitForWire(raw, SEVEN_BIT));
    assert.equal(strictRefusal(out, undefined), undefined);
    const parts = await leaves(out);
    assert.deepEqual(
      parts.map((p) => [p.contentType, p.bytes.toString('latin1')]),
      [
        ['text/plain', 'fine'],
        ['text/plain', 'ab\rc'],
        ['application/octet-stream', '\x00\x01\xff\xfe'],
        ['message/rfc822', 'Subject: inner\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ninner =E9'],
      ],
    );
    const [inner] = await leaves(parts[3]!.bytes);
    assert.equal(inner!.bytes.toString('latin1'), 'inner \xe9', 'the attached message, fixed in place (it may not be encoded itself)');
    assert.match(out.toString(), /\r\n--XX\r\nContent-Type: text\/plain; charset=us-ascii\r\n\r\nfine\r\n--XX\r\n/, 'a legal part is untouched');
  });

  it('headers: unstructured fields become encoded words, long structured ones are folded, impossible ones are refused', async () => {
    const latin = fitted(await fitForWire(message('Subject: Cron caf\xe9\nX-Cron-Env: <LANG=fr_FR.ISO-8859-1 \xe9>\n', 'x\r\n'), SEVEN_BIT));
    const parsed = await simpleParser(latin);
    assert.equal(parsed.subject, 'Cron café');
    assert.equal(strictRefusal(latin, undefined), undefined);
    const long = fitted(await fitForWire(message(`Subject: ${'x'.repeat(2000)}\nTo: ${Array.from({ length: 80 }, (_, i) => `user${i}@example.net`).join(', ')}\n`, 'x\r\n'), SEVEN_BIT));
    assert.equal(strictRefusal(long, undefined), undefined);
    const longParsed = await simpleParser(long);
    assert.equal(longParsed.subject, 'x'.repeat(2000));
    assert.equal((longParsed.to as { value: unknown[] }).value.length, 80);
    const names = fitted(await fitForWire(message('From: J\xc3\xbcrgen M\xc3\xbcller <j@example.de>\nTo: "Caf\xe9, Team" <team@example.net>, ops@example.net\n', 'x\r\n'), SEVEN_BIT));
    assert.equal(strictRefusal(names, undefined), undefined, 'display names become encoded words');
    const named = await simpleParser(names);
    assert.deepEqual((named.from as { value: unknown[] }).value, [{ address: 'j@example.de', name: 'Jürgen Müller' }]);
    assert.deepEqual((named.to as { value: unknown[] }).value, [
      { address: 'team@example.net', name: 'Café, Team' },
      { address: 'ops@example.net', name: '' },
    ]);
    const eai = message('To: J\xc3\xbcrgen <j\xc3\xbcrgen@example.de>\n', 'x\r\n');
    assert.ok(fitted(await fitForWire(eai, SEVEN_BIT)).includes(Buffer.from('To: J\xc3\xbcrgen <j\xc3\xbcrgen@example.de>\r\n', 'latin1')), 'a UTF-8 address needs SMTPUTF8: left as written');
    const refused = await fitForWire(message('To: a\x00b@example.net\n', 'x\r\n'), SEVEN_BIT);
    assert.ok('unsupported' in refused && /To header contains a NUL byte/.test(refused.unsupported));
  });

  it('never re-encodes signed mail: 8-bit alone goes out as it is, anything illegal is refused with the reason', async () => {
    const dkim = message('DKIM-Signature: v=1; a=rsa-sha256; d=example.com; b=abc\nSubject: x\n', Buffer.from('Grüße\r\n'));
    const same = await fitForWire(dkim, SEVEN_BIT);
    assert.ok(!('unsupported' in same) && same.raw === dkim && !same.changed);
    const broken = await fitForWire(message('DKIM-Signature: v=1\nSubject: x\n', 'a\rb\r\n'), SEVEN_BIT);
    assert.ok('unsupported' in broken && /signed \(DKIM-Signature\) and contains a CR without LF/.test(broken.unsupported));
    const smime = message('Content-Type: multipart/signed; protocol="application/pkcs7-signature"; boundary=S\n', `--S\r\nContent-Type: text/plain\r\n\r\n${'y'.repeat(1200)}\r\n--S--\r\n`);
    const refused = await fitForWire(smime, SEVEN_BIT);
    assert.ok('unsupported' in refused && /multipart\/signed.*a line over 998 octets/.test(refused.unsupported));
  });

  it('a header block of any size is handled (20,000 lines)', async () => {
    const out = fitted(await fitForWire(message('Subject: x\n' + 'X-Cron-Env: <A=b>\n'.repeat(20_000), 'a\0b\r\n'), SEVEN_BIT));
    assert.equal(strictRefusal(out, undefined), undefined);
    assert.equal((await leaves(out))[0]!.bytes.toString('latin1'), 'a\0b\r\n');
  });

  it('scan finds each problem', () => {
    assert.deepEqual(scan(Buffer.from('ok\r\n')), { nul: false, bareCr: false, bareLf: false, longLine: false, eightBit: false });
    assert.deepEqual(scan(Buffer.from(`a\rb\nc\0\xe9${'x'.repeat(999)}`, 'latin1')), { nul: true, bareCr: true, bareLf: true, longLine: true, eightBit: true });
    assert.equal(scan(Buffer.from(`${'x'.repeat(998)}\r\n`)).longLine, false);
    assert.equal(scan(Buffer.from(`${'x'.repeat(999)}\r\n`)).longLine, true);
  });

  it('scan agrees with the rules read byte by byte, for any bytes (property)', () => {
    // The rules of RFC 5321 §2.3.8 / RFC 5322 §2.1.1 one byte at a time: the reference scan() is checked against.
    const reference = (bytes: Buffer) => {
      const p = { nul: false, bareCr: false, bareLf: false, longLine: false, eightBit: false };
      let lineStart = 0;
      for (let i = 0; i < bytes.length; i++) {
        const b = bytes[i]!;
        if (b >= 0x80) p.eightBit = true;
        else if (b === 0) p.nul = true;
        else if (b === 0x0d && bytes[i + 1] === 0x0a) {
          if (i - lineStart > 998) p.longLine = true;
          lineStart = i + 2;
          i++;
        } else if (b === 0x0d) p.bareCr = true;
        else if (b === 0x0a) p.bareLf = true;
      }
      if (bytes.length - lineStart > 998) p.longLine = true;
      return p;
    };
    const piece = fc.oneof(fc.constantFrom('\r\n', '\r', '\n', '\0', '\xe9', 'x'.repeat(997), 'x'.repeat(999)), fc.string({ maxLength: 20 }));
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 12 }), (pieces) => {
        const bytes = Buffer.from(pieces.join(''), 'latin1');
        assert.deepEqual(scan(bytes), reference(bytes));
      }),
      { numRuns: 3000 },
    );
  });
});

describe('wire: LineScanner (scan() of bytes that arrive in pieces)', () => {
  it('gives what scan() gives for the pieces joined, wherever the pieces are cut (property)', () => {
    // Bytes where the problems are: CR, LF, NUL, 8-bit, and runs long enough to make long lines.
    const piece = fc.oneof(
      fc.constantFrom('\r\n', '\r', '\n', '\0', '\xe9', 'a', '.'),
      fc.nat({ max: 1200 }).map((n) => 'x'.repeat(n)),
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 40 }), fc.array(fc.nat(), { maxLength: 8 }), (parts, cuts) => {
        const bytes = Buffer.from(parts.join(''), 'latin1');
        const at = [...new Set(cuts.map((c) => (bytes.length === 0 ? 0 : c % bytes.length)))].sort((a, b) => a - b);
        const scanner = new LineScanner();
        let from = 0;
        for (const cut of [...at, bytes.length]) {
          scanner.update(bytes.subarray(from, cut));
          from = cut;
        }
        assert.deepEqual(scanner.problems(), scan(bytes));
      }),
      { numRuns: 2000 },
    );
  });
});
