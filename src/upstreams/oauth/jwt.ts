/**
 * Signed JWTs (RFC 7519) with Node's crypto: the client assertion for the Microsoft identity
 * platform and the JWT-bearer assertion for a Google service account. Hand-written rather than
 * `jose` because both need exactly one operation — sign header.claims with an RSA key, RS256
 * (PKCS#1 v1.5) or PS256 (PSS, salt = hash length, RFC 7518 §3.5) — which crypto.sign does
 * in a few lines; verification only happens in the test fakes.
 */
import { createHash, createPrivateKey, constants, sign, type KeyObject, X509Certificate } from 'node:crypto';

export type JwtAlgorithm = 'RS256' | 'PS256';

export function base64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

function signature(alg: JwtAlgorithm, input: string, key: KeyObject): Buffer {
  return alg === 'PS256' ? sign('sha256', Buffer.from(input), { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }) : sign('sha256', Buffer.from(input), key);
}

export function signJwt(header: Record<string, unknown>, claims: Record<string, unknown>, privateKeyPem: string): string {
  const alg = header.alg as JwtAlgorithm;
  const input = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
  return `${input}.${base64url(signature(alg, input, createPrivateKey(privateKeyPem)))}`;
}

/** The claims of a JWT, unverified (to show what a token grants); undefined for an opaque token. */
export function peekClaims(token: string): Record<string, unknown> | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as unknown;
    return claims !== null && typeof claims === 'object' && !Array.isArray(claims) ? (claims as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** x5t#S256: base64url SHA-256 of the certificate's DER encoding (RFC 7515 §4.1.8). */
export function thumbprintS256(certificatePem: string): string {
  return base64url(createHash('sha256').update(new X509Certificate(certificatePem).raw).digest());
}
