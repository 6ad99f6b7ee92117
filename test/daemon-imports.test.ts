/**
 * What the daemon loads at start-up is what every configuration uses (docs/performance.md, idle
 * memory): the MIME parser and encoders of the wire transform, the provider-webhook listener,
 * Prometheus, the SMTP client and the REST providers are imported only when a message or the
 * configuration needs them.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { REPO } from './helpers/daemon.js';
import { staticGraph } from './helpers/import-graph.js';

describe('daemon start-up import graph', () => {
  it('leaves out what the embedded default never uses', () => {
    const { files, packages } = staticGraph(join(REPO, 'dist/src/daemon.js'));
    for (const lazy of ['@zone-eu/mailsplit', 'libqp', 'lossless-json', 'prom-client', 'mailparser', 'nodemailer', 'yargs']) {
      assert.ok(!packages.has(lazy), `${lazy} is imported at start-up: ${[...packages].join(', ')}`);
    }
    const names = [...files].map((f) => f.slice(join(REPO, 'dist/src/').length));
    for (const lazy of ['events/listener.js', 'metrics/metrics.js', 'upstreams/smtp.js', 'upstreams/maildir.js', 'upstreams/rest/http.js']) {
      assert.ok(!names.includes(lazy), `${lazy} is imported at start-up`);
    }
    assert.ok(packages.has('smtp-server') && packages.has('lmdb'), 'the walker sees what is loaded');
  });
});
