/** Test credentials made at test time: an RSA certificate for the Microsoft app (valid or long expired) and a Google service-account key file. */
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface AppCertificate {
  certFile: string;
  keyFile: string;
  cert: string;
}

/** A self-signed RSA certificate; `expired` makes one valid only in January 2020 (openssl ca -selfsign with explicit dates). */
export function makeAppCertificate(dir: string, name: string, expired = false): AppCertificate {
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  if (!expired) {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '30', '-subj', `/CN=${name}`, '-keyout', keyFile, '-out', certFile], { stdio: 'ignore' });
  } else {
    const csr = join(dir, `${name}.csr`);
    execFileSync('openssl', ['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${name}`, '-keyout', keyFile, '-out', csr], { stdio: 'ignore' });
    writeFileSync(join(dir, `${name}.index`), '');
    writeFileSync(join(dir, `${name}.serial`), '01\n');
    const cnf = join(dir, `${name}.cnf`);
    writeFileSync(
      cnf,
      `[ca]\ndefault_ca=d\n[d]\ndatabase=${join(dir, `${name}.index`)}\nnew_certs_dir=${dir}\nserial=${join(dir, `${name}.serial`)}\ndefault_md=sha256\npolicy=p\n[p]\ncommonName=supplied\n`,
    );
    execFileSync('openssl', ['ca', '-batch', '-config', cnf, '-selfsign', '-keyfile', keyFile, '-in', csr, '-out', certFile, '-startdate', '20200101000000Z', '-enddate', '20200201000000Z'], {
      stdio: 'ignore',
    });
  }
  chmodSync(keyFile, 0o600);
  return { certFile, keyFile, cert: readFileSync(certFile, 'utf8') };
}

export interface ServiceAccount {
  file: string;
  clientEmail: string;
  clientId: string;
  publicKey: string;
  privateKey: string;
}

/** A service-account JSON key file as the Google Cloud console downloads it (fields per the key file format), mode 600. */
export function makeServiceAccount(dir: string, tokenUri: string): ServiceAccount {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
  const clientEmail = 'mailshim-relay@example-project.iam.gserviceaccount.com';
  const clientId = '104857600000000000001';
  const file = join(dir, 'sa.json');
  writeFileSync(
    file,
    JSON.stringify({
      type: 'service_account',
      project_id: 'example-project',
      private_key_id: 'a1b2c3d4e5f6',
      private_key: privateKey,
      client_email: clientEmail,
      client_id: clientId,
      auth_uri: 'https://accounts.google.com/o/oauth2/auth',
      token_uri: tokenUri,
    }),
    { mode: 0o600 },
  );
  return { file, clientEmail, clientId, publicKey, privateKey };
}
