/**
 * The smtp-server adapter (src/intake/smtp-server-adapter.ts): the 220 banner comes without
 * smtp-server's fixed 100 ms pause unless a listener sets greet_pause, and an upgrade of
 * smtp-server that changes the replaced method fails here instead of silently losing the adapter.
 * Behaviour, not timing: a client that talks before the banner is served when there is no pause
 * and refused ("421 You talk too soon") when there is one.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { after, before, describe, it } from 'node:test';
import { relayConfig } from './helpers/config.js';
import { startDaemon, writeConfig, type RunningDaemon } from './helpers/daemon.js';
import { RawSmtp } from './helpers/smtp-client.js';
import { tempDir } from './helpers/tmp.js';

/** Connects and sends EHLO at once, before the banner can have been read. */
async function earlyTalker(port: number): Promise<[string, string]> {
  const client = await RawSmtp.open(port);
  client.write('EHLO early.test\r\n');
  const replies: [string, string] = [await client.reply(), await client.reply()];
  client.close();
  return replies;
}

describe('smtp-server adapter', () => {
  let dir: ReturnType<typeof tempDir>;
  let immediate: RunningDaemon;
  let paused: RunningDaemon;

  before(async () => {
    dir = tempDir();
    immediate = await startDaemon(writeConfig(dir.path, relayConfig({ spool: `${dir.path}/a` }), 'a.toml'));
    paused = await startDaemon(writeConfig(dir.path, relayConfig({ spool: `${dir.path}/b`, listenExtra: 'greet_pause = "2s"' }), 'b.toml'));
  });

  after(async () => {
    await Promise.all([immediate.stop(), paused.stop()]);
    dir.cleanup();
  });

  it('pins the smtp-server code it replaces: SMTPStream.continue() that clears its continuation after running it', () => {
    const require = createRequire(import.meta.url);
    const file = require.resolve('smtp-server/lib/smtp-stream.js').replace('/cjs/', '/esm/');
    const body = /\n {4}continue\(\) \{([\s\S]*?)\n {4}\}\n/.exec(readFileSync(file, 'utf8'))?.[1] ?? '';
    assert.match(body, /this\._continueCallback\(\);\s*this\._continueCallback = false;/, 'smtp-server changed continue(): review src/intake/smtp-server-adapter.ts (it may be fixed upstream)');
  });

  it('pins the smtp-server code it replaces: init() with its fixed 100 ms early-talker pause', () => {
    const require = createRequire(import.meta.url);
    const file = require.resolve('smtp-server/lib/smtp-connection.js').replace('/cjs/', '/esm/');
    const source = readFileSync(file, 'utf8');
    const init = /\n {4}init\(\) \{([\s\S]*?)\n {4}\}\n/.exec(source)?.[1] ?? '';
    assert.match(init, /this\._setListeners\(\(\) => \{/, 'smtp-server changed init(): review src/intake/smtp-server-adapter.ts');
    assert.match(init, /this\._server\.options\.maxClients && this\._server\.connections\.size > this\._server\.options\.maxClients/);
    assert.match(init, /setTimeout\(\(\) => this\.connectionReady\(\), 100\)/);
  });

  it('greets at once by default: a client that talks first is served, not refused', async () => {
    const [banner, ehlo] = await earlyTalker(immediate.port);
    assert.match(banner, /^220 /);
    assert.match(ehlo, /^250[- ]/);
  });

  it('greet_pause keeps the early-talker trap: talking before the banner gets 421', async () => {
    const replies = await earlyTalker(paused.port);
    assert.ok(
      replies.some((r) => /^421 .*talk too soon/i.test(r)),
      replies.join(' | '),
    );
  });

  it('greet_pause still greets a client that waits for the banner', async () => {
    const client = await RawSmtp.open(paused.port);
    assert.match(await client.reply(), /^220 /);
    assert.match(await client.command('EHLO patient.test'), /^250[- ]/);
    client.close();
  });

  it('a reply text with its own enhanced code keeps it (501 5.1.x, not 501 5.x.x 5.1.x)', async () => {
    const client = await RawSmtp.open(immediate.port);
    await client.reply();
    await client.command('EHLO codes.test');
    await client.command('MAIL FROM:<a@example.org>');
    // A domain label starting with "-" passes smtp-server's parser ("Error: Bad recipient address
    // syntax" is its own wording); our check refuses it with an SmtpReply carrying its own code.
    assert.match(await client.command('RCPT TO:<a@-x.net>'), /^501 5\.1\.3 Bad recipient address syntax\r?$/);
    client.close();
  });
});
