/** `queue delete` asks on a terminal: answered no keeps the message, yes deletes it (real spool, in process). */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { parseConfig } from '../src/config/load.js';
import { remove, type QueueContext } from '../src/cli/queue.js';
import { createLogger } from '../src/log.js';
import { Spool } from '../src/spool/spool.js';
import { textSink } from './helpers/sink.js';
import { tempDir } from './helpers/tmp.js';

/** A stdin that claims to be a terminal and answers `answer`. */
function terminal(answer: string): PassThrough & { isTTY: boolean } {
  const input = Object.assign(new PassThrough(), { isTTY: true });
  setImmediate(() => input.write(answer + '\n'));
  return input;
}

describe('queue delete confirmation', () => {
  let dir: ReturnType<typeof tempDir>;
  let spool: Spool;
  let ctx: QueueContext;
  let out: ReturnType<typeof textSink>;

  before(() => {
    dir = tempDir();
    const config = parseConfig(
      `[spool]\npath = "${dir.path}/spool"\n[control]\nsocket = "${dir.path}/none.sock"\n[[upstream]]\ntype = "maildir"\npath = "${dir.path}/out"\n`,
      `${dir.path}/m.toml`,
      {},
    );
    spool = Spool.open(config.spool.path);
    out = textSink();
    ctx = { config, spool, log: createLogger('info', textSink()), out };
  });

  after(async () => {
    await spool.close();
    dir.cleanup();
  });

  it('"n" keeps the message (exit 1), "y" deletes it (exit 0)', async () => {
    const id = await spool.accept({ sender: 'a@example.org', recipients: ['b@example.net'] }, Buffer.from('Subject: x\r\n\r\nx\r\n'), { origin: { protocol: 'local' } });
    assert.equal(await remove(ctx, id, false, terminal('n')), 1);
    assert.match(out.text, new RegExp(`${id}: not deleted\\n$`));
    assert.ok(spool.get(id), 'still queued');
    assert.equal(await remove(ctx, id, false, terminal('yes')), 0);
    assert.match(out.text, new RegExp(`${id}: deleted\\n$`));
    assert.equal(spool.get(id), undefined);
    assert.equal(spool.body(id), undefined);
  });
});
