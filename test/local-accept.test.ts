/** The last step of the sendmail path (src/intake/local-accept.ts): what it stores. */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { acceptLocal } from '../src/intake/local-accept.js';
import { createLogger } from '../src/log.js';
import { Spool } from '../src/spool/spool.js';
import { tempDir } from './helpers/tmp.js';

const quiet = createLogger('info', new Writable({ write: (_chunk, _encoding, done) => done() }));

describe('acceptLocal', () => {
  it('stores a bare LF as CRLF, keeps a bare CR and NUL as content, drops Bcc', async () => {
    const dir = tempDir();
    const spool = Spool.open(`${dir.path}/spool`);
    try {
      const bytes = Buffer.from('Subject: raw\nBcc: hidden@example.net\n\n10%\r50%\rdone\0\nend\n', 'latin1');
      const { id } = await acceptLocal(spool, 'relay.test', quiet, { envelope: { sender: 'a@relay.test', recipients: ['b@example.net'] }, bytes, user: 'cron', uid: 0, via: 'socket' });
      const stored = spool.body(id)!.toString('latin1');
      assert.doesNotMatch(stored, /(^|[^\r])\n/, 'no bare LF is stored');
      assert.match(stored, /\r\nSubject: raw\r\n\r\n10%\r50%\rdone\0\r\nend\r\n$/, 'bare CR and NUL kept, lines ended with CRLF');
      assert.doesNotMatch(stored, /^Bcc:/im);
    } finally {
      await spool.close();
      dir.cleanup();
    }
  });

  it('refuses a submission without recipients', async () => {
    const dir = tempDir();
    const spool = Spool.open(`${dir.path}/spool`);
    try {
      await assert.rejects(acceptLocal(spool, 'relay.test', quiet, { envelope: { sender: 'a@relay.test', recipients: [] }, bytes: Buffer.from('x\r\n'), user: 'cron', uid: 0, via: 'socket' }), {
        code: 'EUSAGE',
      });
    } finally {
      await spool.close();
      dir.cleanup();
    }
  });
});
