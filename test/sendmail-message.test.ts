/** What sendmail does to the bytes a program pipes in. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SubmitError } from '../src/errors.js';
import { dropHeaders } from '../src/message/headers.js';
import { normalizeInput, prepareMessage } from '../src/sendmail/message.js';

const base = { sender: 'www-data', hostname: 'web1.test', uniqueId: '237ZH4KZBL0VZP2Q', now: new Date('2026-11-23T03:00:00Z') };

describe('sendmail message handling', () => {
  it('turns LF into CRLF, ends at a lone "." without -i and keeps it with -i', () => {
    const input = Buffer.from('Subject: x\n\nline\n.\nafter\n');
    assert.equal(normalizeInput(input, false).toString(), 'Subject: x\r\n\r\nline\r\n');
    assert.equal(normalizeInput(input, true).toString(), 'Subject: x\r\n\r\nline\r\n.\r\nafter\r\n');
    assert.equal(normalizeInput(Buffer.from('Subject: x\r\n\r\nno final newline'), true).toString(), 'Subject: x\r\n\r\nno final newline\r\n');
  });

  it('drops an mbox "From " line', () => {
    assert.equal(normalizeInput(Buffer.from('From root  Mon Nov 23\nSubject: x\n\nb\n'), true).toString(), 'Subject: x\r\n\r\nb\r\n');
  });

  it('keeps every other byte: a CR without LF, NUL, 8-bit, a long line', () => {
    const body = Buffer.concat([Buffer.from(' 10%\r 50%\r100%\na\0b \xe9\x82\xa0\n', 'latin1'), Buffer.alloc(5000, 0x78)]);
    const out = normalizeInput(Buffer.concat([Buffer.from('Subject: x\n\n'), body]), true);
    const expected = Buffer.concat([Buffer.from('Subject: x\r\n\r\n'), Buffer.from(body.toString('latin1').replace(/\n/g, '\r\n'), 'latin1'), Buffer.from('\r\n')]);
    assert.ok(out.equals(expected));
  });

  it('-t collects To, Cc and Bcc (groups, display names, bare local names) and removes Bcc', () => {
    const input = normalizeInput(Buffer.from('To: "A, B" <a@example.net>, root\nCc: team: c@example.net, d@example.net;\nBcc: hidden@example.org,\n  also@example.org\nSubject: s\n\nbody\n'), true);
    const out = prepareMessage(input, { ...base, readRecipients: true });
    assert.deepEqual(out.headerRecipients, ['a@example.net', 'root', 'c@example.net', 'd@example.net', 'hidden@example.org', 'also@example.org']);
    const text = dropHeaders(out.bytes).toString(); // as the daemon does on every path
    assert.doesNotMatch(text, /Bcc|hidden|also@/);
    assert.match(text, /^To: "A, B" <a@example\.net>, root\r\nCc: team: c@example\.net, d@example\.net;\r\nSubject: s\r\n/);
  });

  it('adds Date, Message-ID, From and To: undisclosed-recipients:; only when missing', () => {
    const out = prepareMessage(normalizeInput(Buffer.from('Subject: s\n\nbody\n'), true), { ...base, fullName: 'Web Server' }).bytes.toString();
    assert.match(out, /\r\nDate: \w{3}, \d{2} Nov 2026 \d{2}:\d{2}:\d{2} [+-]\d{4}\r\n/);
    assert.match(out, /\r\nMessage-ID: <237ZH4KZBL0VZP2Q@web1\.test>\r\n/);
    assert.match(out, /\r\nFrom: "Web Server" <www-data>\r\n/);
    assert.match(out, /\r\nTo: undisclosed-recipients:;\r\n\r\nbody\r\n$/);
    const complete = 'Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <x@y>\r\nFrom: a@example.org\r\nCc: c@example.net\r\n\r\nb\r\n';
    assert.equal(prepareMessage(Buffer.from(complete), base).bytes.toString(), complete);
  });

  it('refuses a message with more than 50 Received: headers (hop_count_limit) with EDATAERR', () => {
    const hops = (n: number) => Buffer.from('Received: from a by b\r\n'.repeat(n) + 'Subject: loop\r\n\r\nb\r\n');
    assert.doesNotThrow(() => prepareMessage(hops(49), base));
    assert.throws(
      () => prepareMessage(hops(50), base),
      (e: unknown) => e instanceof SubmitError && e.code === 'EDATAERR' && /too many hops/.test(e.message),
    );
  });

  it('treats input without a header block as body', () => {
    const out = prepareMessage(normalizeInput(Buffer.from('just text: not really\nmore\n'), true), base).bytes.toString();
    assert.match(out, /To: undisclosed-recipients:;\r\n\r\njust text: not really\r\nmore\r\n$/);
  });
});
