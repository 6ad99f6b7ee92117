/** `mailshim test-upstream` against real SMTP servers: healthy, bad credentials, wrong TLS pairing, nothing listening. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startCapture, type Capture } from './helpers/capture.js';
import { runCli } from './helpers/cli.js';
import { relayConfig } from './helpers/config.js';
import { writeConfig } from './helpers/daemon.js';
import { startStrictSink } from './helpers/strict-sink.js';
import { makeCert } from './helpers/tls.js';
import { closedPort, tempDir } from './helpers/tmp.js';

function smtpUpstream(name: string, port: number, extra = ''): string {
  return `[[upstream]]\nname = "${name}"\ntype = "smtp"\nhost = "127.0.0.1"\nport = ${port}\ntls = "none"\ntimeout = "2s"\n${extra}\n`;
}

describe('mailshim test-upstream', () => {
  let dir: ReturnType<typeof tempDir>;
  let open: Capture;
  let authed: Capture;
  let implicit: Capture;
  let config: string;
  let refusedPort: number;

  before(async () => {
    dir = tempDir();
    open = await startCapture();
    authed = await startCapture({ users: { relay: 'right-password' } });
    implicit = await startCapture({ secure: true });
    refusedPort = await closedPort();
    const upstreams = [
      smtpUpstream('open', open.port),
      smtpUpstream('authed', authed.port, 'username = "relay"\npassword = "wrong-password"'),
      smtpUpstream('good-auth', authed.port, 'username = "relay"\npassword = "right-password"'),
      smtpUpstream('plain-as-tls', open.port).replace('tls = "none"', 'tls = "implicit"'),
      smtpUpstream('tls-as-plain', implicit.port),
      smtpUpstream('refused', refusedPort),
    ].join('\n');
    config = writeConfig(dir.path, relayConfig({ spool: `${dir.path}/spool`, upstreams }));
  });

  after(async () => {
    await Promise.all([open.close(), authed.close(), implicit.close()]);
    dir.cleanup();
  });

  const cli = (...args: string[]) => runCli(['test-upstream', ...args, '--config', config]);

  it('a healthy upstream: every step ok with timings, exit 0', async () => {
    const result = await cli('open');
    assert.equal(result.code, 0, result.stdout);
    assert.match(result.stdout, new RegExp(`^open: smtp 127\\.0\\.0\\.1:${open.port} \\(none\\)$`, 'm'));
    assert.match(result.stdout, new RegExp(`^  ok   tcp connect 127\\.0\\.0\\.1:${open.port} \\(\\d+ ms\\): connected$`, 'm'));
    assert.match(result.stdout, /^  ok   greeting \(no TLS\) \(\d+ ms\): plain text, 250/m);
    assert.match(result.stdout, /^  ok   auth \(0 ms\): no username configured/m);
    assert.match(result.stdout, /^  result: OK$/m);
    assert.equal(open.messages.length, 0, 'nothing sent without --send-to');
  });

  it('--send-to sends a real test message through the upstream, authenticated', async () => {
    const result = await cli('good-auth', '--send-to', 'ops@example.net', '--from', 'relay@example.org');
    assert.equal(result.code, 0, result.stdout);
    assert.match(result.stdout, /^  ok   auth as relay \(\d+ ms\): 235/m);
    assert.match(result.stdout, /^  ok   send to ops@example\.net \(\d+ ms\): 250 /m);
    const [message] = await authed.waitFor(1);
    assert.equal(message!.sender, 'relay@example.org');
    assert.deepEqual(message!.recipients, ['ops@example.net']);
    assert.equal(message!.user, 'relay');
    assert.match(message!.raw.toString(), /^Subject: mailshim test message from relay\.test via good-auth$/m);
  });

  it('bad credentials: exit 78 and says so', async () => {
    const result = await cli('authed');
    assert.equal(result.code, 78, result.stdout);
    assert.match(result.stdout, /^  FAIL auth as relay \(\d+ ms\): .*535/m);
    assert.match(result.stdout, /→ the credentials were rejected: check username and password/);
    assert.match(result.stdout, /^  result: FAILED$/m);
    assert.ok(!result.stdout.includes('wrong-password'), 'never prints the password');
  });

  it('implicit TLS against a plain SMTP port: exit 78, suggests starttls', async () => {
    const result = await cli('plain-as-tls');
    assert.equal(result.code, 78, result.stdout);
    assert.match(result.stdout, /^  FAIL greeting \+ implicit TLS/m);
    assert.match(result.stdout, /→ the server speaks plain SMTP on this port, not TLS: use tls = "starttls"/);
  });

  it('plain SMTP against an implicit-TLS port: the greeting never comes; exit 78, suggests tls = "implicit"', async () => {
    const result = await cli('tls-as-plain');
    assert.equal(result.code, 78, result.stdout);
    assert.match(result.stdout, /^  FAIL greeting \(no TLS\)/m);
    assert.match(result.stdout, /→ connected, but the server sent no SMTP greeting: .*set tls = "implicit"/);
  });

  it('nothing listening: exit 69 and names the port/TLS pairing', async () => {
    const result = await cli('refused');
    assert.equal(result.code, 69, result.stdout);
    assert.match(result.stdout, new RegExp(`^  FAIL tcp connect 127\\.0\\.0\\.1:${refusedPort} \\(\\d+ ms\\): connect ECONNREFUSED`, 'm'));
    assert.match(result.stdout, /→ nothing accepts connections on 127\.0\.0\.1:\d+: wrong host or port\?/);
  });

  it('an unknown name: exit 64 listing the configured upstreams', async () => {
    const result = await cli('nope');
    assert.equal(result.code, 64);
    assert.match(result.stderr, /no upstream named "nope"; configured: open, authed, good-auth, plain-as-tls, tls-as-plain, refused/);
  });
});

describe('mailshim test-upstream: TLS and policy advice', () => {
  it('530 5.7.0 "Must issue a STARTTLS command first" at AUTH advises tls = "starttls", not the password', async () => {
    const dir = tempDir();
    const sink = await startStrictSink({ extensions: ['AUTH PLAIN LOGIN'], authReply: '530 5.7.0 Must issue a STARTTLS command first' });
    try {
      const config = writeConfig(dir.path, relayConfig({ spool: `${dir.path}/spool`, upstreams: smtpUpstream('plain', sink.port, 'username = "relay"\npassword = "pw"') }));
      const result = await runCli(['test-upstream', 'plain', '--config', config]);
      assert.equal(result.code, 78, result.stdout);
      assert.match(result.stdout, /→ the server requires TLS before AUTH and mail: set tls = "starttls"/);
      assert.doesNotMatch(result.stdout, /check username and password/);
    } finally {
      await sink.close();
      dir.cleanup();
    }
  });

  const tlsCase = async (cn: string, host: string, caFile: (dir: string) => string | undefined, check: (stdout: string) => void) => {
    const dir = tempDir();
    const cert = makeCert(dir.path, 'server', cn);
    const capture = await startCapture({ key: readFileSync(cert.key), cert: readFileSync(cert.cert) });
    try {
      const ca = caFile(dir.path);
      const upstream = `[[upstream]]\nname = "tls"\ntype = "smtp"\nhost = "${host}"\nport = ${capture.port}\ntls = "starttls"\ntimeout = "3s"\n${ca ? `ca_file = "${ca}"` : ''}\n`;
      const config = writeConfig(dir.path, relayConfig({ spool: `${dir.path}/spool`, upstreams: upstream }));
      const result = await runCli(['test-upstream', 'tls', '--config', config]);
      assert.equal(result.code, 78, result.stdout);
      check(result.stdout);
    } finally {
      await capture.close();
      dir.cleanup();
    }
  };

  it('host name mismatch: shows the names the certificate carries', async () => {
    await tlsCase(
      'other.test',
      'localhost',
      (d) => join(d, 'server.crt'),
      (out) => {
        assert.match(out, /→ the certificate does not carry the name "localhost"; it is for DNS:other\.test/);
        assert.doesNotMatch(out, /ca_file/, 'ca_file is set and the CA is trusted: no ca_file advice');
      },
    );
  });

  it('unknown CA: shows the issuer and suggests ca_file', async () => {
    await tlsCase(
      'localhost',
      'localhost',
      () => undefined,
      (out) => {
        assert.match(out, /→ the certificate \(for DNS:localhost.*\) is issued by "CN=localhost", which is not trusted: for a private CA, put the CA certificate in ca_file/);
      },
    );
  });

  it('unknown CA with ca_file set: says the ca_file does not vouch for it, rather than suggesting ca_file', async () => {
    await tlsCase(
      'localhost',
      'localhost',
      (d) => makeCert(d, 'unrelated', 'ca.test').cert,
      (out) => {
        assert.match(out, /is issued by "CN=localhost", which is not trusted, not even by the CA in ca_file/);
        assert.doesNotMatch(out, /for a private CA, put/);
      },
    );
  });
});
