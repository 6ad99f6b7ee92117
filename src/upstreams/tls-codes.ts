/**
 * Node/OpenSSL error codes that mean the peer's certificate or TLS parameters are unacceptable:
 * our configuration (ca_file, tls mode, host name), not a passing network problem. Decided by the
 * error's code, never its message: "socket disconnected before secure TLS connection was
 * established" is an ECONNRESET (the network), whatever the words say.
 */
export const TLS_CONFIG_CODE =
  /^(CERT_[A-Z_]+|ERR_TLS_CERT_ALTNAME_INVALID|HOSTNAME_MISMATCH|UNABLE_TO_[A-Z_]+|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|INVALID_CA|INVALID_PURPOSE|PATH_LENGTH_EXCEEDED|ERR_SSL_[A-Z0-9_]+|EPROTO|ERR_TLS_INVALID_PROTOCOL_VERSION|ERR_TLS_PROTOCOL_VERSION_CONFLICT|ERR_TLS_DH_PARAM_SIZE)$/;

export function isTlsConfigCode(code: string | undefined): boolean {
  return code !== undefined && TLS_CONFIG_CODE.test(code);
}
