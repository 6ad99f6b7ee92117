/**
 * The end-to-end suite every REST provider runs through the real daemon against its strict fake:
 * the rich message delivered faithfully to exactly the envelope recipients with the provider's
 * message id recorded, a 429 retried after Retry-After, a 401 held as a configuration error (no
 * bounce) and a payload rejection bounced with the provider's code and text in the DSN.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Accepted, Fake, Reply } from '../fakes/server.js';
import { startDaemon, writeConfig, type RunningDaemon } from './daemon.js';
import { buildMessage, restConfig, submit, type Built } from './rest.js';
import { tempDir } from './tmp.js';

export interface ProviderCase<T> {
  type: string;
  start(): Promise<Fake<T>>;
  /** The [[upstream]] table pointing at the fake (secrets via ${ENV} from `env`). */
  upstream(url: string): string;
  env: Record<string, string>;
  /** The credential that must never appear in the logs. */
  secret: string;
  /** Whether the rich message (with an inline cid image) can go through this provider. */
  inline?: boolean;
  threading?: boolean;
  /** Envelope recipients the accepted request delivers to (lower case, sorted). */
  recipientsOf(accepted: Accepted<T>): string[];
  /** Asserts the accepted request carries the rich message faithfully. */
  assertRich(accepted: Accepted<T>, built: Built): void;
  /** Text of an accepted DSN (to find the provider's error in it). */
  textOf(accepted: Accepted<T>): string;
  rateLimited: Reply;
  unauthorized: Reply;
  rejected: Reply;
  /** What the DSN must quote from `rejected` (the provider's code and text). */
  rejectedQuote: RegExp;
  /** Expected outcome class of `rejected`. */
  rejectedStatus: RegExp;
  /** API requests one three-recipient message takes (SparkPost: one transmission per recipient). */
  requests?: number;
  /** Set when the provider cannot carry a DSN (multipart/report): the notice must still arrive, as plain text. */
  dsnUnsupported?: boolean;
}

export function providerSuite<T>(c: ProviderCase<T>): void {
  describe(`${c.type} upstream through the daemon`, () => {
    let fake: Fake<T>;
    let daemon: RunningDaemon;
    let dir: ReturnType<typeof tempDir>;

    before(async () => {
      dir = tempDir();
      fake = await c.start();
      daemon = await startDaemon(writeConfig(dir.path, restConfig(`${dir.path}/spool`, c.upstream(fake.url))), c.env);
    });

    after(async () => {
      const code = await daemon.stop();
      await fake.close();
      dir.cleanup();
      assert.equal(code, 0);
    });

    const delivered = (id: string) => daemon.waitForLog((l) => l.event === 'delivery' && l.queueId === id && l.result === 'delivered');
    const newAccepted = async (before: number) => (await fake.waitForAccepted(before + 1))[before]!;
    const requests = c.requests ?? 1;

    it('delivers the rich message faithfully to exactly the envelope recipients and records the provider id', async () => {
      const built = await buildMessage({ tag: `rich-${c.type}`, inline: c.inline, threading: c.threading });
      const count = fake.accepted.length;
      const id = await submit(daemon.port, built);
      const all = (await fake.waitForAccepted(count + requests)).slice(count);
      assert.deepEqual(
        all.flatMap((a) => c.recipientsOf(a)).sort(),
        ['bob@example.net', 'carol@example.com', 'erin@example.net'],
        'exactly the envelope recipients (not dave@, who is only in the header)',
      );
      for (const got of all) c.assertRich(got, built);
      const line = await delivered(id);
      assert.ok(
        typeof line.providerMessageId === 'string' && all.some((got) => String(line.providerMessageId).includes(got.id)),
        `provider id ${String(line.providerMessageId)} recorded (fake answered ${all.map((a) => a.id).join(', ')})`,
      );
      assert.equal(line.upstream, c.type);
      assert.ok(!daemon.output().includes(c.secret), 'the API key never appears in the logs');
    });

    it('retries a 429 after Retry-After and delivers once', async () => {
      const built = await buildMessage({ tag: `ratelimited-${c.type}`, inline: c.inline, threading: c.threading });
      fake.script.push(c.rateLimited);
      const count = fake.accepted.length;
      const id = await submit(daemon.port, built);
      const deferred = await daemon.waitForLog((l) => l.event === 'delivery' && l.queueId === id);
      assert.equal(deferred.result, 'transient');
      assert.match(String(deferred.reply), /HTTP 429/);
      await delivered(id);
      await fake.waitForAccepted(count + requests);
      assert.equal(fake.accepted.length, count + requests, 'sent exactly once');
    });

    it('retries a 5xx and delivers once', async () => {
      const built = await buildMessage({ tag: `unavailable-${c.type}`, inline: c.inline, threading: c.threading });
      fake.script.push({ status: 503, body: 'Service Unavailable' });
      const count = fake.accepted.length;
      const id = await submit(daemon.port, built);
      const deferred = await daemon.waitForLog((l) => l.event === 'delivery' && l.queueId === id);
      assert.equal(deferred.result, 'transient');
      assert.equal(deferred.status, '4.3.0');
      await delivered(id);
      await fake.waitForAccepted(count + requests);
      assert.equal(fake.accepted.length, count + requests, 'sent exactly once');
    });

    it('holds on 401 as a configuration error (never bounces), then delivers once the provider accepts', async () => {
      const built = await buildMessage({ tag: `unauth-${c.type}`, inline: c.inline, threading: c.threading });
      fake.script.push(c.unauthorized);
      const count = fake.accepted.length;
      const id = await submit(daemon.port, built);
      const held = await daemon.waitForLog((l) => l.event === 'delivery' && l.queueId === id);
      assert.equal(held.result, 'config');
      assert.equal(held.level, 50, 'logged as an error');
      await delivered(id);
      const all = (await fake.waitForAccepted(count + requests)).slice(count);
      assert.deepEqual(all.flatMap((a) => c.recipientsOf(a)).sort(), ['bob@example.net', 'carol@example.com', 'erin@example.net']);
      assert.equal(fake.accepted.length, count + requests, 'no bounce was sent');
    });

    it('bounces a rejected payload with the provider code and text in the DSN', async () => {
      const built = await buildMessage({ tag: `rejected-${c.type}`, inline: c.inline, threading: c.threading });
      fake.script.push(c.rejected);
      const count = fake.accepted.length;
      // One recipient: with several, an address error is retried per recipient (test/rest-edges.test.ts).
      const id = await submit(daemon.port, { raw: built.raw, envelope: { from: built.envelope.from, to: ['bob@example.net'] } });
      const line = await daemon.waitForLog((l) => l.event === 'delivery' && l.queueId === id);
      assert.equal(line.result, 'permanent');
      assert.match(String(line.status), c.rejectedStatus);
      assert.match(String(line.reply), c.rejectedQuote);
      const dsnIds = line.dsnQueueIds as string[];
      assert.equal(dsnIds.length, 1, 'one DSN queued');
      if (c.dsnUnsupported) {
        // The provider cannot carry multipart/report: the same notice reaches the sender as plain text.
        const attempt = await daemon.waitForLog((l) => l.event === 'delivery' && l.queueId === dsnIds[0]);
        assert.equal(attempt.result, 'delivered', String(attempt.reply));
      }
      const dsn = await newAccepted(count);
      assert.deepEqual(c.recipientsOf(dsn), ['alice@example.org'], 'the DSN goes to the envelope sender');
      assert.match(c.textOf(dsn), c.rejectedQuote);
      if (c.dsnUnsupported) assert.match(c.textOf(dsn), /Final-Recipient: rfc822; /, 'the delivery report travels inline');
    });
  });
}
