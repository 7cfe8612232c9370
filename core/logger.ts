import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/**
 * One JSON line per event; pretty when a person is watching. Secrets are redacted by path.
 * `destination`: where the lines go instead of stdout (tests read them back).
 */
export function createLogger(level: string, name = 'pgwake', destination?: DestinationStream): Logger {
  const pretty = !destination && process.stdout.isTTY && !process.env.CI;
  const options = {
    name,
    level,
    redact: {
      paths: ['password', '*.password', 'pg_password', '*.pg_password', 'api_key', '*.api_key', 'token', '*.token', 'req.headers.authorization'],
      censor: '[redacted]',
    },
    ...(pretty ? { transport: { target: 'pino-pretty', options: { colorize: true } } } : {}),
  };
  return destination ? pino(options, destination) : pino(options);
}
