/**
 * Validation of [[upstream]] tables of type "m365" (Microsoft 365 / Exchange Online) and "gmail"
 * (Google Workspace). Secrets come from *_file keys (or ${ENV}) and are listed for the permission
 * check at start, like every other secret file.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import type { TableReader } from './reader.js';
import type { GmailUpstreamConfig, M365UpstreamConfig, OAuthSmtpTarget, OAuthUpstreamConfig } from './types.js';
import { DEFAULT_PORTS, readEndpoint } from './endpoint.js';

type Common = { name: string; matchFrom: string[]; maxConcurrency: number; timeout: number };

export const GRAPH_ENDPOINT = 'https://graph.microsoft.com';
export const GMAIL_ENDPOINT = 'https://gmail.googleapis.com';
export const GOOGLE_TOKEN_ENDPOINT = 'https://oauth2.googleapis.com/token';

export function microsoftTokenEndpoint(tenant: string): string {
  return `https://login.microsoftonline.com/${encodeURIComponent(tenant)}/oauth2/v2.0/token`;
}

const TENANT = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+)$/i;
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MAILBOX = /^[^\s@<>]+@[^\s@<>]+\.[^\s@<>]+$/;

export function readOAuthUpstream(table: TableReader, type: 'm365' | 'gmail', common: Common): OAuthUpstreamConfig {
  const sendAs = table.string('send_as');
  if (sendAs !== undefined && !MAILBOX.test(sendAs)) table.problem('send_as', `expected a mailbox address like "scanner@example.com", got ${JSON.stringify(sendAs)}`);
  const mailboxDomains = table.stringList('mailbox_domains', sendAs ? [sendAs.slice(sendAs.lastIndexOf('@') + 1)] : []).map((d) => d.toLowerCase());
  const shared = { ...common, sendAs, mailboxDomains };
  return type === 'm365' ? readM365(table, shared) : readGmail(table, shared);
}

function readSmtpTarget(table: TableReader, host: string): OAuthSmtpTarget {
  const tls = table.oneOf('tls', ['starttls', 'implicit', 'none'] as const, 'starttls');
  const caFile = table.path_('ca_file');
  return {
    host: table.string('host', host),
    port: table.integer('port', 1, 65535, DEFAULT_PORTS[tls]),
    tls,
    ca: caFile ? table.readFile('ca_file', caFile) : undefined,
  };
}

function readM365(table: TableReader, shared: Common & { sendAs?: string; mailboxDomains: string[] }): M365UpstreamConfig {
  const tenant = table.required('tenant') ?? '';
  if (tenant && !TENANT.test(tenant)) table.problem('tenant', `expected the tenant's domain ("contoso.onmicrosoft.com") or its GUID, got ${JSON.stringify(tenant)}`);
  const clientId = table.required('client_id') ?? '';
  if (clientId && !GUID.test(clientId)) table.problem('client_id', `expected the app's Application (client) ID, a GUID, got ${JSON.stringify(clientId)}`);
  const via = table.oneOf('via', ['graph', 'smtp'] as const, 'graph');
  const clientSecret = table.secret('client_secret');
  const certificateFile = table.path_('certificate_file');
  const privateKey = table.secret('private_key');
  let certificate: string | undefined;
  if (certificateFile !== undefined) certificate = table.readFile('certificate_file', certificateFile);
  if (clientSecret !== undefined && (certificateFile !== undefined || privateKey !== undefined)) {
    table.problem('client_secret', 'set either client_secret(_file) or certificate_file + private_key_file, not both');
  } else if (clientSecret === undefined && certificateFile === undefined && privateKey === undefined) {
    table.problem('client_secret', 'is required (client_secret_file), or certificate_file + private_key_file for a certificate credential');
  } else if (clientSecret === '') {
    table.problem('client_secret', 'must not be empty');
  } else if ((certificateFile === undefined) !== (privateKey === undefined)) {
    table.problem(certificateFile === undefined ? 'certificate_file' : 'private_key_file', 'certificate_file and private_key_file go together');
  } else if (certificate !== undefined && privateKey !== undefined) {
    checkCertificatePair(table, certificate, privateKey);
  }
  return {
    ...shared,
    type: 'm365',
    via,
    tenant,
    clientId,
    clientSecret,
    certificate,
    privateKey,
    endpoint: readEndpoint(table, GRAPH_ENDPOINT),
    tokenEndpoint: readEndpoint(table, microsoftTokenEndpoint(tenant), 'token_endpoint'),
    smtp: readSmtpTarget(table, 'smtp.office365.com'),
  };
}

/** The certificate must parse, match the key, and should not be expired (a warning: the daemon still starts and holds mail). */
function checkCertificatePair(table: TableReader, certificate: string, privateKey: string): void {
  try {
    const cert = new X509Certificate(certificate);
    if (!cert.checkPrivateKey(createPrivateKey(privateKey))) table.problem('private_key_file', 'does not belong to the certificate in certificate_file');
    if (Date.parse(cert.validTo) < Date.now()) table.warn('certificate_file', `the certificate expired on ${cert.validTo}: Microsoft will refuse it; upload a new certificate to the app registration`);
  } catch (error) {
    table.problem('certificate_file', `cannot use the certificate and key: ${(error as Error).message}`);
  }
}

interface ServiceAccountFile {
  type?: unknown;
  client_email?: unknown;
  client_id?: unknown;
  private_key?: unknown;
  private_key_id?: unknown;
  token_uri?: unknown;
}

function readGmail(table: TableReader, shared: Common & { sendAs?: string; mailboxDomains: string[] }): GmailUpstreamConfig {
  const via = table.oneOf('via', ['api', 'smtp'] as const, 'api');
  // The key file is a secret: listed for the permission check like every *_file secret.
  const file = table.privateFile('service_account_file');
  let account: ServiceAccountFile = {};
  if (file === undefined) {
    table.problem('service_account_file', "is required (the service account's JSON key file)");
  } else {
    const text = table.readFile('service_account_file', file);
    if (text !== undefined) {
      try {
        account = JSON.parse(text) as ServiceAccountFile;
      } catch {
        table.problem('service_account_file', `${file} is not JSON: expected the key file downloaded from the service account's Keys tab`);
      }
    }
  }
  const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
  const clientEmail = str(account.client_email);
  const privateKey = str(account.private_key);
  if (file !== undefined && Object.keys(account).length > 0) {
    if (account.type !== 'service_account') table.problem('service_account_file', `expected "type": "service_account" in ${file}, got ${JSON.stringify(account.type)}`);
    if (!clientEmail || !privateKey) table.problem('service_account_file', `${file} lacks client_email or private_key`);
    else {
      try {
        createPrivateKey(privateKey);
      } catch (error) {
        table.problem('service_account_file', `the private_key in ${file} is unusable: ${(error as Error).message}`);
      }
    }
  }
  const tokenUri = str(account.token_uri);
  return {
    ...shared,
    type: 'gmail',
    via,
    clientEmail: clientEmail ?? '',
    clientId: str(account.client_id),
    privateKey: privateKey ?? '',
    privateKeyId: str(account.private_key_id),
    endpoint: readEndpoint(table, GMAIL_ENDPOINT),
    tokenEndpoint: readEndpoint(table, tokenUri && tokenUri.startsWith('https://') ? tokenUri : GOOGLE_TOKEN_ENDPOINT, 'token_endpoint'),
    smtp: readSmtpTarget(table, 'smtp.gmail.com'),
  };
}
