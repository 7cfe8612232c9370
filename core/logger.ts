import { pino, type Logger } from 'pino';

export type { Logger };

/** One JSON line per event; pretty when a person is watching. Secrets are redacted by path. */
export function createLogger(level: string, name = 'pgwake'): Logger {
  const pretty = process.stdout.isTTY && !process.env.CI;
  return pino({
    name,
    level,
    redact: {
      paths: ['password', '*.password', 'pg_password', '*.pg_password', 'api_key', '*.api_key', 'token', '*.token', 'req.headers.authorization'],
      censor: '[redacted]',
    },
    ...(pretty ? { transport: { target: 'pino-pretty', options: { colorize: true } } } : {}),
  });
}
