/** Aliases file parsing and expansion, and sender masquerading. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LocalConfig } from '../src/config/types.js';
import { SubmitError } from '../src/errors.js';
import { parseAliases } from '../src/local/aliases.js';
import { defaultLocalDomains } from '../src/config/local.js';
import { localDomains } from '../src/local/addresses.js';
import { localize } from '../src/local/localize.js';
import { masqueradeHeaders, masqueradeSender } from '../src/local/masquerade.js';
import { resolveRecipients } from '../src/local/resolve.js';

const FILE = `# system aliases
postmaster: root
root:   ops@example.com,
        "Jane Doe" <jane@example.com>
www-data: root
Webmaster: \\root, web@example.net
backup: "|/usr/local/bin/backup", /var/mail/backup, :include:/etc/list
logs: "|/usr/bin/logger", archive@example.org
loop1: loop2
loop2: loop1
self: self, me@example.org
`;

const domains = localDomains({ domains: defaultLocalDomains('web1.example.com') });

describe('aliases parser', () => {
  const table = parseAliases(FILE, '/etc/aliases');

  it('reads entries with continuation lines, quotes and case-insensitive names', () => {
    assert.deepEqual(
      table.entries.get('root')!.targets.map((t) => (t.kind === 'address' ? t.address : t.text)),
      ['ops@example.com', 'jane@example.com'],
    );
    assert.equal(table.entries.get('root')!.line, 3);
    assert.ok(table.entries.has('webmaster'));
    assert.deepEqual(table.problems, []);
  });

  it('refuses :include:, |program and /file targets with the line named', () => {
    assert.deepEqual(table.warnings, [
      '/etc/aliases:7: backup: refused "\\"|/usr/local/bin/backup\\"" (programs are never run)',
      '/etc/aliases:7: backup: refused "/var/mail/backup" (mailbox files are never written)',
      '/etc/aliases:7: backup: refused ":include:/etc/list" (include files are not supported)',
      '/etc/aliases:8: logs: refused "\\"|/usr/bin/logger\\"" (programs are never run)',
    ]);
  });

  it('reports malformed lines, duplicates, empty and invalid targets by line', () => {
    const bad = parseAliases('ok: a@example.com\nno colon here\nok: b@example.com\nempty:\nweird: a b@example.com\n', 'aliases');
    assert.deepEqual(bad.problems, [
      'aliases:2: expected "name: target, target, ...", got "no colon here"',
      'aliases:3: ok: duplicate alias (first defined on line 1)',
      'aliases:4: empty: no targets',
      'aliases:5: weird: invalid target "a b@example.com"',
    ]);
    assert.deepEqual([...bad.entries.keys()], ['ok']);
  });
});

describe('recipient expansion', () => {
  const aliases = parseAliases(FILE, '/etc/aliases');
  const resolve = (addresses: string[], admin: string | null = 'admin@example.com') => resolveRecipients(addresses, { aliases, domains, admin: admin ?? undefined });

  it('follows chains for bare names and name@hostname, and leaves remote addresses alone', () => {
    assert.deepEqual(resolve(['postmaster']).recipients, ['ops@example.com', 'jane@example.com']);
    assert.deepEqual(resolve(['WWW-DATA@web1.example.com', 'x@example.net']).recipients, ['ops@example.com', 'jane@example.com', 'x@example.net']);
  });

  it('sends a local name without alias, \\name and self references to admin', () => {
    assert.deepEqual(resolve(['nobody']).recipients, ['admin@example.com']);
    assert.deepEqual(resolve(['webmaster']).recipients, ['admin@example.com', 'web@example.net']);
    assert.deepEqual(resolve(['self']).recipients, ['admin@example.com', 'me@example.org']);
  });

  it('records every rewrite to admin with the address the client gave', () => {
    assert.deepEqual(resolve(['Nobody@web1.example.com', 'webmaster']).rewrites, [
      { original: 'Nobody@web1.example.com', to: 'admin@example.com', reason: 'no alias for nobody' },
      { original: 'webmaster', to: 'admin@example.com', reason: 'local mailbox root' },
    ]);
  });

  it('local_domains default: the host name and localhost, never a bare two-label domain the host is named after', () => {
    assert.deepEqual(defaultLocalDomains('web1.example.com'), ['localhost', 'localhost.localdomain', 'web1.example.com']);
    assert.deepEqual(defaultLocalDomains('web1'), ['localhost', 'localhost.localdomain', 'web1']);
    assert.deepEqual(defaultLocalDomains('Example.com'), ['localhost', 'localhost.localdomain']);
    const bare = localDomains({ domains: defaultLocalDomains('example.com') });
    assert.deepEqual(resolveRecipients(['orders@example.com', 'root@localhost'], { aliases, domains: bare, admin: 'ops@example.net' }).recipients, [
      'orders@example.com',
      'ops@example.com',
      'jane@example.com',
    ]);
  });

  it('breaks loops (to admin, with a note) and never drops an alias whose targets are all refused', () => {
    const loop = resolve(['loop1']);
    assert.deepEqual(loop.recipients, ['admin@example.com']);
    assert.match(loop.notes.join('\n'), /alias loop loop1 → loop2 → loop1 broken/);
    const backup = resolve(['backup']);
    assert.deepEqual(backup.recipients, ['admin@example.com']);
    assert.match(backup.notes.join('\n'), /every target of this alias was refused/);
    assert.deepEqual(resolve(['logs']).recipients, ['archive@example.org']);
  });

  it('refuses a local name with EX_NOUSER when there is no admin', () => {
    assert.throws(
      () => resolve(['nobody'], null),
      (e: unknown) => e instanceof SubmitError && e.code === 'ENOUSER' && /nobody: no such alias and \[local\] admin is not set/.test(e.message),
    );
  });
});

describe('masquerading', () => {
  const local = (over: Partial<LocalConfig> = {}): LocalConfig => ({
    aliases: '/dev/null',
    from: 'alerts@example.com',
    rewrite: 'local',
    keepOriginalFromAsReplyTo: false,
    domains: [...domains],
    ...over,
  });
  const policy = (over: Partial<LocalConfig> = {}) => ({ hostname: 'web1.example.com', domains, local: local(over) });
  const msg = (from: string, extra = '') => Buffer.from(`${from ? `From: ${from}\r\n` : ''}Subject: s\r\n${extra}\r\nbody\r\n`);

  it('rewrites local senders and keeps the display name (cron style comment, quoted, bare)', () => {
    assert.match(masqueradeHeaders(msg('root (Cron Daemon)'), policy()).toString(), /^From: "Cron Daemon" <alerts@example\.com>\r\nSubject: s\r\n\r\nbody\r\n$/);
    assert.match(masqueradeHeaders(msg('"Web, Server" <www-data@web1.example.com>'), policy()).toString(), /^From: "Web, Server" <alerts@example\.com>\r\n/);
    assert.match(masqueradeHeaders(msg('=?utf-8?Q?J=C3=B6rg?= <joerg>'), policy()).toString(), /^From: =\?utf-8\?Q\?J=C3=B6rg\?= <alerts@example\.com>\r\n/);
    assert.equal(masqueradeSender('root', policy()), 'alerts@example.com');
    assert.equal(masqueradeSender('', policy()), '');
  });

  it('leaves real domains alone unless rewrite = "all"', () => {
    const original = msg('Shop <noreply@shop.example.org>');
    assert.equal(masqueradeHeaders(original, policy()).toString(), original.toString());
    assert.equal(masqueradeSender('noreply@shop.example.org', policy()), 'noreply@shop.example.org');
    assert.match(masqueradeHeaders(original, policy({ rewrite: 'all' })).toString(), /^From: "Shop" <alerts@example\.com>\r\n/);
    assert.equal(masqueradeSender('noreply@shop.example.org', policy({ rewrite: 'all' })), 'alerts@example.com');
  });

  it('keeps the original in Reply-To only when enabled and none exists', () => {
    assert.match(
      masqueradeHeaders(msg('root (Cron Daemon)'), policy({ keepOriginalFromAsReplyTo: true })).toString(),
      /^From: "Cron Daemon" <alerts@example\.com>\r\nReply-To: "Cron Daemon" <root@web1\.example\.com>\r\n/,
    );
    assert.doesNotMatch(masqueradeHeaders(msg('root', 'Reply-To: x@example.org\r\n'), policy({ keepOriginalFromAsReplyTo: true })).toString(), /Reply-To: <root/);
  });

  it('without [local] from, only qualifies local senders with the host name', () => {
    assert.match(masqueradeHeaders(msg('root (Cron Daemon)'), policy({ from: undefined })).toString(), /^From: "Cron Daemon" <root@web1\.example\.com>\r\n/);
    assert.equal(masqueradeSender('www-data', policy({ from: undefined })), 'www-data@web1.example.com');
  });

  it('localize refuses an address with spaces or control characters as EX_DATAERR', () => {
    assert.throws(
      () => localize({ sender: 'root', recipients: ['a b@example.com'] }, msg('root'), { hostname: 'web1.example.com', local: local(), aliases: parseAliases('', 'x') }),
      (e: unknown) => e instanceof SubmitError && e.code === 'EDATAERR',
    );
  });
});
