/**
 * The local submission protocol between the sendmail command and the daemon, over a unix
 * socket: one frame = a JSON header line, then exactly `size` message bytes. The daemon answers
 * with one JSON line, sent only after the message is fsynced to the spool. A maildrop file
 * holds the same frame. Hand-rolled because it is a dozen lines and sits on the hot path.
 */
import type { SubmitErrorCode } from '../errors.js';
import { isSubmitToken } from '../spool/ids.js';

export interface SubmitRequest {
  op: 'submit';
  /**
   * Idempotency token (ids.ts newSubmitToken), proposed by the submitter; never a queue id (the
   * daemon picks those). The same token from the same uid queues one message, however often it is
   * submitted (socket retry, maildrop fallback). Names the maildrop file. Optional on the socket.
   */
  token?: string;
  sender: string;
  recipients: string[];
  /** The invoking user's name and uid, as the submitter claims them. */
  user: string;
  uid: number;
  size: number;
}

export type Request = SubmitRequest | { op: 'flush' } | { op: 'reload-aliases' } | { op: 'list' };

export type Reply = ({ ok: true } & Record<string, unknown>) | { ok: false; code: SubmitErrorCode; error: string };

export const MAX_HEADER = 1024 * 1024;

export function encodeFrame(request: Request, body?: Buffer): Buffer {
  const head = Buffer.from(JSON.stringify(request) + '\n', 'utf8');
  return body ? Buffer.concat([head, body]) : head;
}

/**
 * A parsed request line, or undefined when it is not a request object. Sockets and maildrop files
 * are written by any local user, so nothing is assumed about the JSON found there.
 */
export function asRequest(parsed: unknown): Request | undefined {
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
  return typeof (parsed as { op?: unknown }).op === 'string' ? (parsed as Request) : undefined;
}

/** Splits a complete frame (a maildrop file); undefined when it is not one. */
export function decodeFrame(data: Buffer): { request: Request; body: Buffer } | undefined {
  const newline = data.indexOf(0x0a);
  if (newline === -1 || newline > MAX_HEADER) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(data.subarray(0, newline).toString('utf8'));
  } catch {
    return undefined;
  }
  const request = asRequest(parsed);
  if (!request) return undefined;
  const body = data.subarray(newline + 1);
  if (request.op === 'submit' && !isSubmitRequest(request, body.length)) return undefined;
  return { request, body };
}

export function isSubmitRequest(r: SubmitRequest, bodySize: number): boolean {
  return (
    (r.token === undefined || isSubmitToken(r.token)) &&
    typeof r.sender === 'string' &&
    Array.isArray(r.recipients) &&
    r.recipients.every((a) => typeof a === 'string') &&
    typeof r.user === 'string' &&
    typeof r.uid === 'number' &&
    r.size === bodySize
  );
}
