/** The one address module: the validator every path uses, and the RFC 5322 list reader. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkAddress, formatDisplayName, parseAddressList, parseMailbox, validAddress } from '../src/message/addresses.js';

describe('checkAddress', () => {
  it('accepts dot-strings, quoted local parts, UTF-8 and address literals; stores the canonical form', () => {
    const full = { requireDomain: true };
    assert.equal(validAddress('user@example.net', full), 'user@example.net');
    assert.equal(validAddress('"john.doe"@example.net', full), 'john.doe@example.net', 'a quoted dot-atom loses its quotes');
    assert.equal(validAddress('"john doe"@example.net', full), '"john doe"@example.net');
    assert.equal(validAddress('"a\\"b"@example.net', full), '"a\\"b"@example.net');
    assert.equal(validAddress('"a@b"@example.net', full), '"a@b"@example.net');
    assert.equal(validAddress('foo..bar@docomo.ne.jp', full), 'foo..bar@docomo.ne.jp', 'like Postfix, dot placement is not policed');
    assert.equal(validAddress('jörg@bücher.example', full), 'jörg@bücher.example');
    assert.equal(validAddress('user@[192.0.2.1]', full), 'user@[192.0.2.1]');
    assert.equal(validAddress('root', { requireDomain: false }), 'root');
  });

  it('refuses what RFC 5321 does not allow, with the reason', () => {
    const full = { requireDomain: true };
    for (const bad of [
      'bad\\@example.net',
      'a b@example.net',
      'a@b@example.net',
      '<a@example.net>',
      'a@',
      '@example.net',
      'a@exa mple.net',
      'a@-x.net',
      'a@x..net',
      '"unterminated@x.net',
      'a\r\n@x.net',
      'a\0@x.net',
      'a,b@x.net',
      '"a"b@x.net',
    ]) {
      assert.deepEqual(checkAddress(bad, full), { ok: false, reason: 'syntax' }, bad);
    }
    assert.deepEqual(checkAddress('root', full), { ok: false, reason: 'unqualified' });
    assert.deepEqual(checkAddress(`${'a'.repeat(250)}@x.net`, full), { ok: false, reason: 'too-long' });
  });
});

describe('parseAddressList', () => {
  it('reads display names, commas inside quotes, comments, groups and bare local names', () => {
    assert.deepEqual(
      parseAddressList('"Doe, J" <j@example.net>, root, Team: a@example.net, k@example.net (Kay);, undisclosed-recipients:;').map((m) => m.address),
      ['j@example.net', 'root', 'a@example.net', 'k@example.net'],
    );
  });

  it('a bare local name before a quoted display name stays its own address (addressparser alone merges them)', () => {
    assert.deepEqual(parseAddressList('root, "Ops" <ops@example.net>'), [
      { name: '', address: 'root' },
      { name: 'Ops', address: 'ops@example.net' },
    ]);
  });

  it('parseMailbox: one mailbox or nothing', () => {
    assert.deepEqual(parseMailbox('"Cron Daemon" <root>'), { name: 'Cron Daemon', address: 'root' });
    assert.equal(parseMailbox('a@x.net, b@x.net'), undefined);
  });
});

describe('formatDisplayName', () => {
  it('never lets a line break through, encoded word or not', () => {
    for (const name of ['=?utf-8?q?Bob\r\nX-Injected: yes?=', '=?utf-8?q?Bob?=\r\nBcc: evil@example.org', 'Bob\r\nX-Injected: yes']) {
      assert.doesNotMatch(formatDisplayName(name), /[\r\n]/, JSON.stringify(name));
    }
    assert.equal(formatDisplayName('=?utf-8?q?J=C3=B6rg?='), '=?utf-8?q?J=C3=B6rg?=');
  });
});
