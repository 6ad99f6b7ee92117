/**
 * Rough throughput of the REST path (not a test: numbers, no assertions). Measures MIME→JSON
 * conversion of the rich test message, and sends through the SendGrid upstream to the local strict
 * fake over keep-alive HTTP at max_concurrency 1 and 8.
 *   npm run build && node dist/bench/rest-send.js
 */
import { bufferBody } from '../src/message/body.js';
import { convertMessage } from '../src/upstreams/rest/convert.js';
import { SendgridUpstream } from '../src/upstreams/sendgrid.js';
import { startSendgridFake } from '../test/fakes/sendgrid.js';
import { buildMessage } from '../test/helpers/rest.js';

const built = await buildMessage({ tag: 'bench' });
const rules = { provider: 'bench', reserved: new Set<string>(), regenerated: new Set<string>(), inlineImages: true };

let start = performance.now();
const N = 500;
for (let i = 0; i < N; i++) await convertMessage(built.raw, rules);
console.log(`convert: ${(N / ((performance.now() - start) / 1000)).toFixed(0)} messages/s (${built.raw.length} bytes each)`);

const fake = await startSendgridFake('SG.bench');
for (const concurrency of [1, 8]) {
  const upstream = new SendgridUpstream({ name: 'b', type: 'sendgrid', apiKey: 'SG.bench', endpoint: fake.url, matchFrom: [], maxConcurrency: concurrency, timeout: 10_000 });
  start = performance.now();
  const M = 400;
  const results = await Promise.all(Array.from({ length: M }, (_, i) => upstream.send({ id: `B${i}`, sender: built.envelope.from, recipients: built.envelope.to, body: bufferBody(built.raw) })));
  const ok = results.flat().filter((r) => r.result.kind === 'accepted').length;
  console.log(`sendgrid via fake, max_concurrency ${concurrency}: ${(M / ((performance.now() - start) / 1000)).toFixed(0)} messages/s (${ok}/${M * built.envelope.to.length} recipients accepted)`);
}
await fake.close();
