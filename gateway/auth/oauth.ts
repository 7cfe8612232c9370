import type { Socket } from 'node:net';
import type { DbRecord, RoleRecord } from '../../core/index.js';
import { ClientGone, GatewayError, protocolError, SQLSTATE } from '../errors.js';
import type { PacketReader } from '../wire/packet-reader.js';
import { MAX_AUTH_MESSAGE_BYTES, MSG } from '../wire/protocol.js';
import { AuthFailure } from './scram.js';
import { TokenRefusal, type TokenVerifier } from './token-verifier.js';

/** AuthenticationCleartextPassword: 'R', length 8, code 3. */
const AUTH_CLEARTEXT = Buffer.from([MSG.authentication, 0, 0, 0, 8, 0, 0, 0, 3]);

export interface TokenExchange {
  socket: Socket;
  reader: PacketReader;
  user: string;
  role: RoleRecord;
  db: DbRecord;
  /** The client is on TLS: only then does a token travel (a bearer secret in clear could be replayed). */
  tls: boolean;
  /** PGWAKE_ALLOW_CLEARTEXT_TOKENS_ON_LOOPBACK and the client is on this machine. */
  cleartextAllowed: boolean;
  verifier: TokenVerifier;
}

/**
 * An oauth role logs in with a token as its password (DESIGN §4), as psql and
 * drivers send it: the gateway asks for a cleartext password, over TLS only, and
 * checks the token (TokenVerifier). A wrong token is 28P01; an expired one says so.
 */
export async function authenticateToken(x: TokenExchange): Promise<void> {
  if (!x.tls && !x.cleartextAllowed) {
    throw new GatewayError(
      SQLSTATE.invalidAuthorization,
      `role "${x.user}" logs in with an OAuth token, which this gateway accepts only over TLS`,
      'tls_required',
      'a token sent without TLS could be read and replayed by anyone on the way',
      'connect with sslmode=require',
    );
  }
  x.socket.write(AUTH_CLEARTEXT);
  const msg = await x.reader.readMessage(MAX_AUTH_MESSAGE_BYTES);
  if (msg.type === MSG.terminate) throw new ClientGone('client ended the connection during authentication');
  if (msg.type !== MSG.saslResponse) throw new AuthFailure('malformed', protocolError(`expected password response, got message type "${String.fromCharCode(msg.type)}"`));
  const end = msg.body.indexOf(0);
  if (end !== msg.body.length - 1) throw new AuthFailure('malformed', protocolError('invalid password packet size'));
  const token = msg.body.toString('utf8', 0, end).trim();
  const failed = `password authentication failed for user "${x.user}"`;
  if (token === '') throw new AuthFailure('wrong_password', new GatewayError(SQLSTATE.invalidPassword, failed, 'auth_failed', 'an empty password is not a token'));
  try {
    await x.verifier.verify(token, x.role, x.db);
  } catch (err) {
    if (!(err instanceof TokenRefusal)) throw err;
    if (err.reason === 'expired') {
      throw new AuthFailure('wrong_password', new GatewayError(SQLSTATE.invalidPassword, `${failed}: ${err.message}`, 'auth_failed', undefined, 'get a new token (POST /v2/credentials) and connect again'));
    }
    throw new AuthFailure('wrong_password', new GatewayError(SQLSTATE.invalidPassword, failed, 'auth_failed', err.message));
  }
}
