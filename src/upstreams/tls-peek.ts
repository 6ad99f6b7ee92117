/**
 * For `test-upstream` only, after verification failed: fetch the server's certificate *without*
 * verifying it, to show the operator which names it carries and who issued it. Nothing is sent
 * over this connection but EHLO/STARTTLS; it is closed as soon as the certificate is seen.
 */
import { connect as tcpConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type PeerCertificate } from 'node:tls';
import { isIP } from 'node:net';

export interface PeerCertificateSummary {
  /** Subject alternative names ("DNS:mail.example.com"), or the subject CN when there are none. */
  names: string[];
  issuer: string;
  validTo: string;
}

function summarize(cert: PeerCertificate): PeerCertificateSummary | undefined {
  if (!cert || Object.keys(cert).length === 0) return undefined;
  const names = cert.subjectaltname ? cert.subjectaltname.split(/,\s*/) : cert.subject?.CN ? [`CN=${String(cert.subject.CN)}`] : [];
  const issuer = cert.issuer ? Object.entries(cert.issuer).map(([k, v]) => `${k}=${String(v)}`).join(', ') : 'unknown';
  return { names, issuer, validTo: cert.valid_to };
}

/** Reads one SMTP reply (possibly multi-line) from a plain socket. */
function readReply(socket: Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffer = '';
    const onData = (d: Buffer) => {
      buffer += d.toString('latin1');
      if (/(^|\n)\d{3} [^\n]*\r?\n$/.test(buffer)) {
        socket.off('data', onData);
        resolve(buffer);
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
  });
}

export async function peekCertificate(options: { host: string; port: number; starttls: boolean; timeoutMs: number; hostname: string }): Promise<PeerCertificateSummary | undefined> {
  const servername = isIP(options.host) ? undefined : options.host;
  let plain: Socket | undefined;
  const timer = setTimeout(() => plain?.destroy(), options.timeoutMs);
  try {
    if (options.starttls) {
      plain = tcpConnect({ host: options.host, port: options.port });
      await readReply(plain);
      plain.write(`EHLO ${options.hostname}\r\n`);
      await readReply(plain);
      plain.write('STARTTLS\r\n');
      if (!/^220/.test(await readReply(plain))) return undefined;
    }
    const secure = tlsConnect({ ...(plain ? { socket: plain } : { host: options.host, port: options.port }), ...(servername ? { servername } : {}), rejectUnauthorized: false });
    if (!plain) plain = secure;
    return await new Promise<PeerCertificateSummary | undefined>((resolve) => {
      secure.once('secureConnect', () => {
        const summary = summarize(secure.getPeerCertificate());
        secure.destroy();
        resolve(summary);
      });
      secure.once('error', () => resolve(undefined));
      secure.once('close', () => resolve(undefined));
    });
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
    plain?.destroy();
  }
}

const ALTNAME = /^(ERR_TLS_CERT_ALTNAME_INVALID|HOSTNAME_MISMATCH)$/;
const UNTRUSTED = /^(UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT(_LOCALLY)?|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|CERT_UNTRUSTED|CERT_SIGNATURE_FAILURE)$/;

/**
 * What to change, told apart by the verification error: a host name the certificate does not
 * carry (show the names it does), an issuer we do not trust (show it; suggest ca_file only when
 * none is set), an expired certificate.
 */
export function certificateAdvice(errorCode: string, host: string, caFileSet: boolean, cert: PeerCertificateSummary | undefined): string | undefined {
  const names = cert ? cert.names.join(', ') || '(none)' : undefined;
  if (ALTNAME.test(errorCode)) {
    return `the certificate does not carry the name "${host}"${names ? `; it is for ${names}` : ''}: set host to a name the certificate carries (verification is never turned off)`;
  }
  if (UNTRUSTED.test(errorCode)) {
    const issued = cert ? `the certificate (for ${names}) is issued by "${cert.issuer}", which is not trusted` : `the certificate's issuer is not trusted (${errorCode})`;
    return caFileSet
      ? `${issued}, not even by the CA in ca_file: ca_file must hold that issuer's certificate (or the chain's root), and the server must send its intermediates`
      : `${issued}: for a private CA, put the CA certificate in ca_file; for a public one, the server must send its intermediate certificates`;
  }
  if (errorCode === 'CERT_HAS_EXPIRED') return `the server's certificate expired${cert ? ` on ${cert.validTo}` : ''}: it must be renewed on the server`;
  if (errorCode === 'CERT_NOT_YET_VALID') return `the server's certificate is not valid yet: check this machine's clock`;
  return undefined;
}
