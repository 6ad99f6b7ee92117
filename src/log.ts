/** pino JSON logs to stdout (journald friendly). Secrets are redacted by key name wherever they appear. */
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string = 'info', destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: ['password', 'pass', '*.password', '*.pass', '*.api_key', '*.apiKey', '*.secret', '*.auth', 'auth'],
        censor: '[redacted]',
      },
    },
    destination ?? pino.destination({ dest: 1, sync: false }),
  );
}
