/**
 * For `test-upstream`, after certificate verification failed: what to change, from the
 * verification error and the certificate the server showed (probe.ts peekCertificate).
 */
import type { PeerCertificateSummary } from './probe.js';

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
