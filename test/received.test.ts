/** The Received: header: client-supplied values (HELO, recipient) cannot break its lines or grow it without bound. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { receivedHeader } from '../src/intake/received.js';

const base = { clientAddress: '127.0.0.1', hostname: 'relay.example', protocol: 'ESMTP', queueId: 'Q1', date: new Date(0) };

describe('Received: header', () => {
  it('keeps clean values as they are', () => {
    const header = receivedHeader({ ...base, helo: 'client.example', recipients: ['a@example.net'] });
    assert.equal(header, 'Received: from client.example ([127.0.0.1])\r\n\tby relay.example (mailshim) with ESMTP id Q1\r\n\tfor <a@example.net>;\r\n\tThu, 01 Jan 1970 00:00:00 +0000\r\n');
  });

  it('drops spaces, control characters and 8-bit bytes from client values and caps them at 255 characters', () => {
    const header = receivedHeader({ ...base, helo: 'evil\r\nX-Injected: 1 é', recipients: ['b'.repeat(300) + '@example.net'] });
    assert.match(header, /^Received: from evilX-Injected:1 \(\[127\.0\.0\.1\]\)\r\n/);
    assert.equal(header.split('\r\n').length, 5, 'no line was added');
    assert.ok(header.includes(`for <${'b'.repeat(255)}>;`));
  });
});
