/**
 * Brevo through the real daemon against the strict fake (test/fakes/brevo.ts). Brevo's API has no
 * Content-ID for attachments and no standard headers, so the rich message (inline cid image,
 * In-Reply-To) is unsupported there: with a raw-MIME upstream behind it, it goes there unchanged;
 * alone, it bounces with the reason. The rest of the suite uses the message without those parts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { brevoError, startBrevoFake, type BrevoFake } from './fakes/brevo.js';
import { header as requestHeader, type Json } from './fakes/server.js';
import { startSparkpostFake, type SparkpostFake } from './fakes/sparkpost.js';
import { startDaemon, writeConfig, type RunningDaemon } from './helpers/daemon.js';
import { providerSuite } from './helpers/provider-suite.js';
import { assertRawUntouched, buildMessage, normalise, PDF, restConfig, RICH, submit } from './helpers/rest.js';
import { tempDir } from './helpers/tmp.js';

const KEY = 'xkeysib-0123456789';
const SP_KEY = 'sparkpost-key-fallback';
const emails = (v: unknown) => ((v as Array<{ email: string }> | undefined) ?? []).map((c) => c.email.toLowerCase());
const brevoUpstream = (url: string) => `[[upstream]]\nname = "brevo"\ntype = "brevo"\napi_key = "\${BREVO_KEY}"\nendpoint = "${url}"\ntimeout = "5s"\n`;

providerSuite<Json>({
  type: 'brevo',
  start: () => startBrevoFake(KEY),
  upstream: brevoUpstream,
  env: { BREVO_KEY: KEY },
  secret: KEY,
  inline: false,
  threading: false,
  recipientsOf: (a) => [...emails(a.payload.to), ...emails(a.payload.cc), ...emails(a.payload.bcc)].sort(),
  assertRich(a, built) {
    const b = a.payload;
    assert.deepEqual(b.sender, { email: RICH.from.address, name: RICH.from.name });
    assert.deepEqual(b.to, [{ email: RICH.to.address, name: RICH.to.name }]);
    assert.deepEqual(b.cc, [{ email: RICH.cc.address, name: RICH.cc.name }]);
    assert.deepEqual(b.bcc, [{ email: RICH.bcc }]);
    assert.deepEqual(b.replyTo, { email: RICH.replyTo });
    assert.equal(b.subject, built.subject);
    assert.equal(normalise(b.textContent), normalise(RICH.text));
    assert.equal(b.htmlContent, '<p>Hello Bob,</p>');
    assert.deepEqual(b.attachment, [{ content: PDF.toString('base64'), name: 'report.pdf' }]);
    const headers = b.headers as Record<string, string>;
    assert.equal(headers['X-Report-ID'], 'Q3-2026');
    assert.match(headers.idempotencyKey ?? '', /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(requestHeader(a.request, 'api-key'), KEY);
  },
  textOf: (a) => `${(a.payload.textContent as string | undefined) ?? ''}\n${(a.payload.htmlContent as string | undefined) ?? ''}`,
  rateLimited: { status: 429, headers: { 'retry-after': '1' }, body: { code: 'too_many_requests', message: 'The expected rate limit is exceeded.' } },
  unauthorized: brevoError(401, 'unauthorized', 'Key not found'),
  rejected: brevoError(400, 'invalid_parameter', 'email is not valid in to'),
  rejectedQuote: /invalid_parameter: email is not valid in to/,
  rejectedStatus: /^5\.1\.3$/,
  // A DSN is multipart/report; its delivery-status part has no file name Brevo accepts.
  dsnUnsupported: true,
});

describe('brevo with messages its API cannot express', () => {
  let brevo: BrevoFake;
  let sparkpost: SparkpostFake;
  let daemon: RunningDaemon;
  let dir: ReturnType<typeof tempDir>;

  before(async () => {
    dir = tempDir();
    brevo = await startBrevoFake(KEY);
    sparkpost = await startSparkpostFake(SP_KEY);
    const upstreams = `${brevoUpstream(brevo.url)}\n[[upstream]]\nname = "raw"\ntype = "sparkpost"\napi_key = "${SP_KEY}"\nendpoint = "${sparkpost.url}"\nmatch_from = ["*@example.org"]\n`;
    daemon = await startDaemon(writeConfig(dir.path, restConfig(`${dir.path}/spool`, upstreams)), { BREVO_KEY: KEY });
  });

  after(async () => {
    await daemon.stop();
    await brevo.close();
    await sparkpost.close();
    dir.cleanup();
  });

  it('sends a message with an inline cid image to the next (raw MIME) upstream, unchanged, and never to Brevo', async () => {
    const built = await buildMessage({ tag: 'brevo-inline' });
    const id = await submit(daemon.port, built);
    const [got] = await sparkpost.waitForAccepted(1);
    assertRawUntouched(Buffer.from((got!.payload.content as { email_rfc822: string }).email_rfc822), built.raw);
    const line = await daemon.waitForLog((l) => l.event === 'delivery' && l.queueId === id && l.result === 'delivered');
    assert.equal(line.upstream, 'raw');
    assert.equal(brevo.received.length, 0, 'Brevo was never sent a mangled message');
  });

  it('bounces with the reason when no upstream can carry it (sender not routed to the raw upstream)', async () => {
    const built = await buildMessage({ tag: 'brevo-inline-only' });
    const id = await submit(daemon.port, { raw: built.raw, envelope: { from: 'ops@elsewhere.example', to: built.envelope.to } });
    const line = await daemon.waitForLog((l) => l.event === 'delivery' && l.queueId === id);
    assert.equal(line.result, 'permanent');
    assert.equal(line.status, '5.6.3');
    assert.match(String(line.reply), /Brevo's API (cannot send inline parts with a Content-ID|does not allow setting the [\w-]+ header)/);
    assert.equal(brevo.received.length, 0);
  });
});
