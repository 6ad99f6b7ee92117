/** A stand-in for Amazon SNS's signing certificate (RSA, made with openssl) and a signer using its key. */
import { execFileSync } from 'node:child_process';
import { createSign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { snsStringToSign, type SnsMessage } from '../../src/events/sns.js';

/** An RSA certificate like SNS's signing certificate, made with openssl; returns PEM and a signer. */
export function snsTestCertificate(dir: string): { pem: string; sign: (message: SnsMessage) => string } {
  const key = join(dir, 'sns.key');
  const cert = join(dir, 'sns.crt');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=sns.amazonaws.com', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  const privateKey = readFileSync(key, 'utf8');
  return {
    pem: readFileSync(cert, 'utf8'),
    sign: (message) =>
      createSign(message.SignatureVersion === '1' ? 'sha1' : 'sha256')
        .update(snsStringToSign(message))
        .sign(privateKey, 'base64'),
  };
}
