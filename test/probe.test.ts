/**
 * The one probe connection of `test-upstream` (src/upstreams/probe.ts): plain TCP, implicit TLS
 * and STARTTLS, verified (connectProbe) or not (peekCertificate, to show an untrusted
 * certificate), and one deadline for the whole probe. Against real local servers: a TLS server,
 * the capture SMTP server with STARTTLS, and a listener that accepts and never answers.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { connectProbe, peekCertificate } from '../src/upstreams/probe.js';
import { startCapture, type Capture } from './helpers/capture.js';
import { closedPort, tempDir } from './helpers/tmp.js';
import { makeCert, type TestCert } from './helpers/tls.js';

const listen = async (server: Server): Promise<number> => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
};

describe('upstream probe', () => {
  let dir: ReturnType<typeof tempDir>;
  let cert: TestCert;
  let tlsPort: number;
  let silentPort: number;
  let capture: Capture;
  const servers: Server[] = [];
  const sockets = new Set<Socket>();

  before(async () => {
    dir = tempDir();
    cert = makeCert(dir.path, 'probe', 'probe.test');
    const tlsServer = createTlsServer({ key: readFileSync(cert.key), cert: readFileSync(cert.cert) }, (s) => s.end());
    tlsServer.on('tlsClientError', () => undefined); // the verifying probes abort the handshake
    const silent = createServer((s) => void sockets.add(s)); // accepts, never says a word
    servers.push(tlsServer, silent);
    tlsPort = await listen(tlsServer);
    silentPort = await listen(silent);
    capture = await startCapture({ key: readFileSync(cert.key), cert: readFileSync(cert.cert) });
  });

  after(async () => {
    for (const s of sockets) s.destroy();
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    await capture.close();
    dir.cleanup();
  });

  it('plain TCP: connected; nothing listening: ECONNREFUSED', async () => {
    assert.equal(await connectProbe({ host: '127.0.0.1', port: silentPort, timeoutMs: 5000 }), 'connected');
    await assert.rejects(connectProbe({ host: '127.0.0.1', port: await closedPort(), timeoutMs: 5000 }), { code: 'ECONNREFUSED' });
  });

  it('implicit TLS: trusted with the CA, refused without it', async () => {
    assert.match(await connectProbe({ host: '127.0.0.1', port: tlsPort, timeoutMs: 5000, tls: { servername: 'probe.test', ca: cert.pem } }), /^TLSv1\.[23], certificate trusted$/);
    await assert.rejects(connectProbe({ host: '127.0.0.1', port: tlsPort, timeoutMs: 5000, tls: { servername: 'probe.test' } }), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' });
  });

  it('peekCertificate shows an untrusted certificate, over implicit TLS and over STARTTLS', async () => {
    const implicit = await peekCertificate({ host: '127.0.0.1', port: tlsPort, starttls: false, timeoutMs: 5000, hostname: 'client.test' });
    assert.deepEqual(implicit?.names, ['DNS:probe.test', 'IP Address:127.0.0.1']);
    assert.equal(implicit?.issuer, 'CN=probe.test');
    const starttls = await peekCertificate({ host: '127.0.0.1', port: capture.port, starttls: true, timeoutMs: 5000, hostname: 'client.test' });
    assert.deepEqual(starttls, implicit);
  });

  it('one deadline for the whole probe: a server that never answers fails with ETIMEDOUT, the peek with undefined', async () => {
    await assert.rejects(connectProbe({ host: '127.0.0.1', port: silentPort, timeoutMs: 300, tls: {} }), { code: 'ETIMEDOUT' });
    assert.equal(await peekCertificate({ host: '127.0.0.1', port: silentPort, starttls: true, timeoutMs: 300, hostname: 'client.test' }), undefined);
  });
});
