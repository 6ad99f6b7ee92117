/**
 * Issue 10 item 9: a maildrop file is written by any local user, so the importer applies the same
 * limits and checks as the submission socket and trusts nothing the file claims: `localized: true`
 * does not skip the policy (an unqualified sender is qualified), a NUL or a bare LF is refused, a
 * file over max_message_size is set aside without being read, and so is a file without recipients.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { encodeFrame } from '../src/intake/submission-protocol.js';
import { startCapture } from './helpers/capture.js';
import { relayConfig } from './helpers/config.js';
import { startDaemon, writeConfig } from './helpers/daemon.js';
import { tempDir } from './helpers/tmp.js';

function dropFile(maildrop: string, id: string, header: Record<string, unknown>, body: Buffer): void {
  mkdirSync(maildrop, { recursive: true });
  const frame = encodeFrame({ op: 'submit', id, user: 'mallory', uid: 1234, size: body.length, ...header } as never, body);
  writeFileSync(join(maildrop, id), frame);
}

describe('maildrop import trusts nothing in the file', () => {
  it('re-applies the local policy and the message checks, and caps the size', async () => {
    const dir = tempDir();
    const capture = await startCapture();
    const spool = join(dir.path, 'spool');
    const maildrop = `${spool}-maildrop`;
    const good = Buffer.from('Subject: hand-made\r\n\r\nhello\r\n');
    // Left while the daemon was down, so all are imported at start, before any delivery.
    dropFile(maildrop, 'QNQLFD0000000001', { sender: 'root', recipients: ['x@example.net'], localized: true }, good);
    dropFile(maildrop, 'QNLBRLF000000001', { sender: 'root@relay.test', recipients: ['x@example.net'], localized: true }, Buffer.from('Subject: smuggle\r\n\r\nhello\0\n.\nMAIL FROM:<a@b>\r\n'));
    dropFile(maildrop, 'QNL0000000000001', { sender: 'root@relay.test', recipients: ['x@example.net'], localized: true }, Buffer.from('Subject: nul\r\n\r\nhel\0lo\r\n'));
    dropFile(maildrop, 'QBRLF00000000001', { sender: 'root@relay.test', recipients: ['x@example.net'] }, Buffer.from('Subject: lf\n\nhello\n'));
    dropFile(maildrop, 'QNRCPTS000000001', { sender: 'root@relay.test', recipients: [], localized: true }, good);
    dropFile(maildrop, 'QBDDDR0000000001', { sender: 'root@relay.test', recipients: ['x@example.net\r\nRCPT TO:<y@example.org>'], localized: true }, good);
    dropFile(maildrop, 'QTBG000000000001', { sender: 'root@relay.test', recipients: ['x@example.net'] }, Buffer.alloc(3 * 1024 * 1024, 'a'));
    const daemon = await startDaemon(writeConfig(dir.path, relayConfig({ spool, upstreamPort: capture.port })));
    try {
      const [message] = await capture.waitFor(1);
      assert.equal(message!.sender, 'root@relay.test', 'the unqualified sender was qualified although the file said localized: true');
      assert.deepEqual(message!.recipients, ['x@example.net']);
      const bad = (reason: RegExp) => daemon.logs.find((l) => l.event === 'maildrop-bad' && reason.test(String(l.msg)));
      assert.ok(bad(/^maildrop entry is refused \(message contains (bare CR or LF|NUL).*; kept as \.bad\.QNLBRLF000000001$/), 'NUL and bare LF set aside');
      assert.ok(bad(/^maildrop entry is refused \(message contains bare CR or LF.*; kept as \.bad\.QBRLF00000000001$/), 'bare LF set aside');
      assert.ok(bad(/^maildrop entry is refused \(message contains NUL characters\); kept as \.bad\.QNL0000000000001$/), 'NUL set aside');
      assert.ok(bad(/^maildrop entry is refused \(no recipients\); kept as \.bad\.QNRCPTS000000001$/), 'no recipients set aside');
      assert.ok(bad(/^maildrop entry is refused \(invalid address .*; kept as \.bad\.QBDDDR0000000001$/), 'an address with CRLF set aside');
      assert.ok(bad(/^maildrop entry is too big \(\d+ bytes; max_message_size is 1048576\); kept as \.bad\.QTBG000000000001$/), 'oversized file set aside');
      const left = readdirSync(maildrop).sort();
      assert.deepEqual(left, ['.bad.QBDDDR0000000001', '.bad.QBRLF00000000001', '.bad.QNL0000000000001', '.bad.QNLBRLF000000001', '.bad.QNRCPTS000000001', '.bad.QTBG000000000001']);
      const accepted = daemon.logs.filter((l) => l.event === 'accepted');
      assert.equal(accepted.length, 1, 'only the well-formed file was spooled (under a queue id the daemon chose)');
      assert.equal(capture.messages.length, 1);
      assert.ok(!capture.messages.some((m) => m.raw.includes(0)), 'no NUL reached the upstream');
      assert.ok(existsSync(join(maildrop, '.bad.QTBG000000000001')));
    } finally {
      await daemon.stop();
      await capture.close();
      dir.cleanup();
    }
  });
});
