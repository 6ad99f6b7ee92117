/** pino JSON logs to stdout (journald friendly). Secrets are redacted by key name wherever they appear. */
import { pino, type Logger } from 'pino';

export type { Logger };

export const CENSOR = '[redacted]';
/** Keys whose value is replaced by CENSOR at the top level of a log line. */
const TOP_SECRETS = ['password', 'pass', 'auth'] as const;
/** Keys whose value is replaced by CENSOR one level down, in any object logged at the top level (an upstream's config, an error). */
const NESTED_SECRETS = ['password', 'pass', 'api_key', 'apiKey', 'secret', 'auth'] as const;

/**
 * A copy with the same prototype and own properties. An error's `stack` is read from the original
 * and kept as plain data: on Node 22 and later V8 makes it an own accessor that answers only for
 * the object it was captured on, so a copied descriptor would log an empty stack.
 */
function copyOf<T extends object>(value: T): T {
  const copy = Object.create(Object.getPrototypeOf(value) as object, Object.getOwnPropertyDescriptors(value)) as T;
  if (value instanceof Error) Object.defineProperty(copy, 'stack', { value: value.stack, enumerable: false, writable: true, configurable: true });
  return copy;
}

/** `value` with the keys in `secrets` it has (own or inherited) set to CENSOR, as a copy; `value` itself when it has none. */
function censored<T extends object>(value: T, secrets: readonly string[]): T {
  let copy: T | undefined;
  for (const key of secrets) {
    if (!(key in value)) continue;
    // Same prototype and properties (an Error stays an Error for pino's err serializer); never the caller's object.
    copy ??= copyOf(value);
    Object.defineProperty(copy, key, { value: CENSOR, enumerable: true, writable: true, configurable: true });
  }
  return copy ?? value;
}

/**
 * The fields of a log line (or a child logger's bindings) with secrets censored: the top-level
 * keys password, pass and auth, and password, pass, api_key, apiKey, secret and auth inside any
 * object at the top level. The same rule pino's `redact` paths ('password', '*.password', …) apply,
 * but pino runs a redaction pass over every top-level value of every line once any path starts
 * with a wildcard (a clone and a JSON.stringify per field: the largest share of the daemon's
 * logging CPU, two lines per message). Here a line without secrets costs a few `in` checks and is
 * passed on as it is. Tested by test/log.test.ts.
 */
function redactSecrets(fields: Record<string, unknown>): Record<string, unknown> {
  let out = censored(fields, TOP_SECRETS);
  for (const key in out) {
    const value = out[key];
    if (value === null || typeof value !== 'object') continue;
    const clean = censored(value, NESTED_SECRETS);
    if (clean === value) continue;
    if (out === fields) out = { ...fields };
    out[key] = clean;
  }
  return out;
}

export function createLogger(level: string = 'info', destination?: NodeJS.WritableStream): Logger {
  const logger = pino(
    {
      level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { log: redactSecrets },
    },
    destination ?? pino.destination({ dest: 1, sync: false }),
  );
  // A child's bindings are serialized once, when it is made (pino applies no log formatter to
  // them); its own children inherit this `child` (pino builds them with Object.create).
  const proto = Object.getPrototypeOf(logger) as Logger; // pino's own child(), on its prototype
  logger.child = function (this: Logger, bindings, options) {
    return proto.child.call(this, redactSecrets(bindings), options);
  } as Logger['child'];
  return logger;
}
