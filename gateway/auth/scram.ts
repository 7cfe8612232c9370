import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { constantTimeEqual, hmac, SCRAM_ITERATIONS, sha256, xor, type ScramVerifier } from '../../core/index.js';
import { authFailed, ClientGone, GatewayError, protocolError } from '../errors.js';
import { authenticationSasl, authenticationSaslContinue, authenticationSaslFinal } from '../wire/backend-messages.js';
import type { PacketReader } from '../wire/packet-reader.js';
import { MAX_AUTH_MESSAGE_BYTES, MSG } from '../wire/protocol.js';

export const SCRAM_SHA_256 = 'SCRAM-SHA-256';
export const SCRAM_SHA_256_PLUS = 'SCRAM-SHA-256-PLUS';
const CHANNEL_BINDING_TYPE = 'tls-server-end-point';

export type AuthFailureReason = 'unknown_user' | 'wrong_password' | 'malformed';

/** A failed exchange: the client sees `error` (the same 28P01 for an unknown user and a wrong password); metrics see `reason`. */
export class AuthFailure extends GatewayError {
  constructor(readonly reason: AuthFailureReason, error: GatewayError) {
    super(error.sqlstate, error.message, 'auth_failed', error.detail, error.hint);
  }
}

export interface ScramExchange {
  socket: Socket;
  reader: PacketReader;
  user: string;
  /** The tenant's stored verifier; null for an unknown user, who gets a mock exchange that always fails. */
  verifier: ScramVerifier | null;
  /** A salt for the mock exchange, stable per user name, so repeated probes see what a real user would. */
  mockSalt: Buffer;
  /** tls-server-end-point data when the client is on TLS: then SCRAM-SHA-256-PLUS is offered. */
  channelBinding: Buffer | null;
}

/**
 * The server side of SCRAM-SHA-256 (RFC 5802, RFC 7677) as Postgres speaks it,
 * with SCRAM-SHA-256-PLUS over TLS. Resolves when the client proved it knows the
 * password (the server's signature is sent); throws AuthFailure otherwise.
 */
export async function authenticateScram(x: ScramExchange): Promise<void> {
  const mechanisms = x.channelBinding ? [SCRAM_SHA_256_PLUS, SCRAM_SHA_256] : [SCRAM_SHA_256];
  // Unknown users get key material nobody knows the password for: every check below runs the same way.
  const verifier: ScramVerifier = x.verifier ?? { iterations: SCRAM_ITERATIONS, salt: x.mockSalt, storedKey: randomBytes(32), serverKey: randomBytes(32) };
  const failWith = (reason: AuthFailureReason, error: GatewayError): never => {
    throw new AuthFailure(x.verifier || reason === 'malformed' ? reason : 'unknown_user', error);
  };
  try {
    send(x.socket, authenticationSasl(mechanisms));

    const initial = await readSaslMessage(x.reader);
    const { mechanism, data: clientFirst } = parseInitialResponse(initial);
    if (!mechanisms.includes(mechanism)) throw protocolError('client selected an invalid SASL authentication mechanism');
    const first = parseClientFirst(clientFirst, mechanism, x.channelBinding !== null);

    const nonce = first.clientNonce + randomBytes(18).toString('base64');
    const serverFirst = `r=${nonce},s=${verifier.salt.toString('base64')},i=${verifier.iterations}`;
    send(x.socket, authenticationSaslContinue(serverFirst));

    const final = parseClientFinal((await readSaslMessage(x.reader)).toString('utf8'));
    const expectedBinding = first.gs2Header.startsWith('p=') ? Buffer.concat([Buffer.from(first.gs2Header, 'utf8'), x.channelBinding!]) : Buffer.from(first.gs2Header, 'utf8');
    if (!constantTimeEqual(Buffer.from(final.channelBinding, 'base64'), expectedBinding)) {
      throw protocolError('SCRAM channel binding check failed');
    }
    if (final.nonce !== nonce) throw protocolError('invalid SCRAM response', 'nonce does not match');

    const authMessage = `${first.bare},${serverFirst},${final.withoutProof}`;
    const clientSignature = hmac(verifier.storedKey, authMessage);
    const clientKey = xor(final.proof, clientSignature);
    if (!x.verifier || !constantTimeEqual(sha256(clientKey), verifier.storedKey)) failWith('wrong_password', authFailed(x.user));
    send(x.socket, authenticationSaslFinal(`v=${hmac(verifier.serverKey, authMessage).toString('base64')}`));
  } catch (err) {
    if (err instanceof AuthFailure || err instanceof ClientGone) throw err;
    if (err instanceof GatewayError && err.outcome === 'protocol_error') failWith('malformed', err);
    throw err;
  }
}

function send(socket: Socket, data: Buffer): void {
  socket.write(data);
}

async function readSaslMessage(reader: PacketReader): Promise<Buffer> {
  const msg = await reader.readMessage(MAX_AUTH_MESSAGE_BYTES);
  if (msg.type === MSG.terminate) throw new ClientGone('client ended the connection during authentication');
  if (msg.type !== MSG.saslResponse) throw protocolError(`expected SASL response, got message type "${String.fromCharCode(msg.type)}"`);
  return msg.body;
}

/** SASLInitialResponse: mechanism\0, Int32 length (-1: none), data. */
function parseInitialResponse(body: Buffer): { mechanism: string; data: string } {
  const end = body.indexOf(0);
  if (end < 0 || end + 5 > body.length) throw protocolError('malformed SASLInitialResponse');
  const mechanism = body.toString('utf8', 0, end);
  const length = body.readInt32BE(end + 1);
  const data = body.subarray(end + 5);
  if (length !== data.length) throw protocolError('malformed SASLInitialResponse', 'the data length does not match the message');
  return { mechanism, data: data.toString('utf8') };
}

interface ClientFirst {
  /** "n,," / "y,," / "p=tls-server-end-point,,": what the client must echo, base64'd, in client-final. */
  gs2Header: string;
  bare: string;
  clientNonce: string;
}

const malformed = (detail: string) => protocolError('malformed SCRAM message', detail);
const PRINTABLE = /^[\x21-\x2b\x2d-\x7e]+$/; // RFC 5802 "printable": no comma

export function parseClientFirst(message: string, mechanism: string, serverHasChannelBinding: boolean): ClientFirst {
  const c1 = message.indexOf(',');
  const c2 = c1 < 0 ? -1 : message.indexOf(',', c1 + 1);
  if (c1 < 0 || c2 < 0) throw malformed('expected a GS2 header');
  const flag = message.slice(0, c1);
  const authzid = message.slice(c1 + 1, c2);
  const plus = mechanism === SCRAM_SHA_256_PLUS;
  if (flag === 'n') {
    if (plus) throw protocolError('SCRAM channel binding negotiation error', 'The client selected SCRAM-SHA-256-PLUS, but the SCRAM message does not include channel binding data.');
  } else if (flag === 'y') {
    if (plus) throw protocolError('SCRAM channel binding negotiation error', 'The client selected SCRAM-SHA-256-PLUS, but the SCRAM message does not include channel binding data.');
    // The client could bind but believes we cannot: someone stripped -PLUS from our offer.
    if (serverHasChannelBinding) throw protocolError('SCRAM channel binding negotiation error', 'The client supports SCRAM channel binding but thinks the server does not. However, this server does support channel binding.');
  } else if (flag.startsWith('p=')) {
    if (!plus) throw protocolError('SCRAM channel binding negotiation error', 'The client selected SCRAM-SHA-256 without channel binding, but the SCRAM message includes channel binding data.');
    if (flag.slice(2) !== CHANNEL_BINDING_TYPE) throw protocolError(`unsupported SCRAM channel-binding type "${flag.slice(2)}"`);
  } else {
    throw malformed(`unexpected channel-binding flag "${flag.slice(0, 20)}"`);
  }
  if (authzid !== '') throw protocolError('client uses authorization identity, but it is not supported');
  const bare = message.slice(c2 + 1);
  const attrs = bare.split(',');
  // Postgres ignores n= (the user is the startup packet's), but it must be there.
  if (!attrs[0]?.startsWith('n=')) throw malformed('expected attribute "n"');
  if (!attrs[1]?.startsWith('r=')) throw malformed('expected attribute "r"');
  const clientNonce = attrs[1].slice(2);
  if (!PRINTABLE.test(clientNonce)) throw malformed('the client nonce is not printable');
  return { gs2Header: message.slice(0, c2 + 1), bare, clientNonce };
}

interface ClientFinal {
  channelBinding: string;
  nonce: string;
  proof: Buffer;
  withoutProof: string;
}

export function parseClientFinal(message: string): ClientFinal {
  const p = message.lastIndexOf(',p=');
  if (p < 0) throw malformed('expected attribute "p"');
  const withoutProof = message.slice(0, p);
  const attrs = withoutProof.split(',');
  if (!attrs[0]?.startsWith('c=')) throw malformed('expected attribute "c"');
  if (!attrs[1]?.startsWith('r=')) throw malformed('expected attribute "r"');
  const proofText = message.slice(p + 3);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(proofText)) throw malformed('the proof is not base64');
  const proof = Buffer.from(proofText, 'base64');
  if (proof.length !== 32) throw malformed('the proof has the wrong length');
  return { channelBinding: attrs[0].slice(2), nonce: attrs[1].slice(2), proof, withoutProof };
}
