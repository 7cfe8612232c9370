import type { Socket } from 'node:net';
import { parseScramVerifier, sha256, type Catalog, type Config, type DbRecord, type Logger, type ScramVerifier, type SecretBox } from '../core/index.js';
import { authenticateToken } from './auth/oauth.js';
import { AuthFailure, authenticateScram } from './auth/scram.js';
import type { TokenVerifier } from './auth/token-verifier.js';
import { GatewayError } from './errors.js';
import { findLoginTarget, type LoginTarget } from './login-target.js';
import { checkNetworkAccess, isLoopback, recordFailedLogin, type SessionPolicy } from './network-checks.js';
import type { RouteRequest } from './route.js';
import type { TlsSetup } from './tls.js';
import type { PacketReader } from './wire/packet-reader.js';

export interface LoginDeps {
  config: Config;
  catalog: Catalog;
  secrets: SecretBox;
  tls: TlsSetup;
  tokens: TokenVerifier;
}

export interface LoginClient {
  socket: Socket;
  reader: PacketReader;
  tls: boolean;
  /** The client's IP address (an IPv4-mapped IPv6 one as IPv4). */
  address: string | null;
}

/** A client that proved who it is: the db it may reach, how the gateway logs in there for it, and its session's limits. */
export interface LoggedIn {
  target: Exclude<LoginTarget, { kind: 'unknown' }>;
  /** Null for a tenant login to a db name that does not exist: 3D000, said now that the client authenticated. */
  db: DbRecord | null;
  dbMissing: GatewayError | null;
  /** The role on the compute and its password, which only the gateway knows. */
  computeUser: string;
  computePassword: string;
  policy: SessionPolicy;
}

/**
 * Route → network checks → authentication (DESIGN §4): who the client says it is
 * (login-target.ts), whether it may connect from where it is (network-checks.ts:
 * allowlists, bans, TLS; before any password), then proof: SCRAM against the
 * tenant's or the role's verifier, a token for an oauth role (auth/oauth.ts), and
 * for unknown users a SCRAM exchange that always fails the same way. A failure
 * counts toward a ban of the address.
 */
export async function logIn(deps: LoginDeps, client: LoginClient, request: RouteRequest, log: Logger): Promise<LoggedIn> {
  const target = await findLoginTarget(deps.catalog, request);
  const policy = await checkNetworkAccess(deps.catalog, deps.config, target, client.address, client.tls);
  try {
    if (target.kind === 'role' && target.role.kind === 'oauth') {
      await authenticateToken({
        socket: client.socket,
        reader: client.reader,
        user: request.user,
        role: target.role,
        db: target.db,
        tls: client.tls,
        cleartextAllowed: deps.config.allowCleartextTokensOnLoopback && isLoopback(client.address),
        verifier: deps.tokens,
      });
    } else {
      const stored = target.kind === 'tenant' ? target.tenant.scram_verifier : target.kind === 'role' ? target.role.scram_verifier : null;
      await authenticateScram({
        socket: client.socket,
        reader: client.reader,
        user: request.user,
        verifier: stored === null ? null : verifierOf(stored, log),
        mockSalt: mockSaltFor(deps.secrets, request.user),
        channelBinding: client.tls ? deps.tls.serverEndPoint : null,
      });
    }
  } catch (err) {
    if (!(err instanceof AuthFailure)) throw err;
    await recordFailedLogin(deps.catalog, deps.config, target, client.address, log);
    throw err;
  }
  if (target.kind === 'unknown') throw new Error('unreachable: an unknown user cannot authenticate');
  if (target.kind === 'tenant') {
    return { target, db: target.db, dbMissing: target.dbMissing, computeUser: target.tenant.pg_user, computePassword: deps.secrets.internalRolePassword(target.tenant.pg_user), policy };
  }
  return { target, db: target.db, dbMissing: null, computeUser: target.role.name, computePassword: deps.secrets.dbRolePassword(target.db.id, target.role.name), policy };
}

function verifierOf(stored: string, log: Logger): ScramVerifier | null {
  try {
    return parseScramVerifier(stored);
  } catch {
    // Treated like an unknown user: the client sees the same 28P01, operators see why.
    log.error('login has an unusable SCRAM verifier');
    return null;
  }
}

/** A salt for unknown users that is stable per name and unguessable (derived from the secret key). */
function mockSaltFor(secrets: SecretBox, user: string): Buffer {
  return sha256(Buffer.from(secrets.internalRolePassword(`scram-mock-salt:${user}`))).subarray(0, 16);
}
