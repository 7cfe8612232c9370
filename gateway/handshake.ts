import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { ClientGone, GatewayError, protocolError, SQLSTATE } from './errors.js';
import { upgradeToTls, type TlsSetup } from './tls.js';
import { PacketReader } from './wire/packet-reader.js';
import { CANCEL_REQUEST_CODE, GSSENC_REQUEST_CODE, PROTOCOL_3_0, SSL_REQUEST_CODE } from './wire/protocol.js';

/** A client that finished the first exchange: either it wants a session, or it wants a query cancelled. */
export type Handshake = StartupRequest | CancelRequest;

export interface StartupRequest {
  kind: 'startup';
  /** The socket to talk on from now: the TLS one when the client asked for TLS. */
  socket: Socket;
  reader: PacketReader;
  tls: TLSSocket | null;
  /** Server name the client sent in the TLS handshake (SNI), if any. */
  sni: string | null;
  params: Map<string, string>;
  /** The minor protocol version asked for; above 0, and for any `_pq_.` option, the gateway answers NegotiateProtocolVersion. */
  minorVersion: number;
  unsupportedOptions: string[];
}

export interface CancelRequest {
  kind: 'cancel';
  processId: number;
  /** The key as sent: 4 bytes for protocol 3.0 keys, which are the only ones the gateway hands out. */
  secretKey: Buffer;
}

const clientGone = () => new ClientGone();

/**
 * Reads SSLRequest / GSSENCRequest / CancelRequest / StartupMessage (DESIGN §4, first
 * step) and upgrades to TLS on request. Throws GatewayError for anything else.
 * `onSocket` hears which socket and reader are current (no reader during the TLS
 * handshake), so an error can be sent on the right one.
 */
export async function readHandshake(raw: Socket, tlsSetup: TlsSetup, onSocket: (socket: Socket, reader: PacketReader | null) => void): Promise<Handshake> {
  let socket: Socket = raw;
  let reader = new PacketReader(raw, clientGone);
  onSocket(raw, reader);
  let secure: TLSSocket | null = null;
  let gssAnswered = false;
  for (;;) {
    const packet = await reader.readStartupPacket();
    const code = packet.readInt32BE(0);
    if (code === SSL_REQUEST_CODE) {
      if (secure) throw protocolError('SSLRequest on a connection that already uses TLS');
      await write(socket, Buffer.from('S'));
      // Bytes sent after SSLRequest but before the TLS handshake would be read as if they came over TLS (CVE-2021-23214).
      if (reader.buffered > 0) throw protocolError('received unencrypted data after SSL request', 'this could be either a client-software bug or evidence of an attempted man-in-the-middle attack');
      reader.detach();
      onSocket(raw, null);
      // The client's broken or abandoned TLS handshake is its protocol error, not the gateway's internal one.
      secure = await upgradeToTls(raw, tlsSetup).catch((err: Error) => {
        throw protocolError('TLS handshake failed', err.message);
      });
      socket = secure;
      reader = new PacketReader(secure, clientGone);
      onSocket(secure, reader);
      continue;
    }
    if (code === GSSENC_REQUEST_CODE) {
      if (secure || gssAnswered) throw protocolError('GSSENCRequest after the connection was already negotiated');
      gssAnswered = true;
      await write(socket, Buffer.from('N'));
      continue;
    }
    if (code === CANCEL_REQUEST_CODE) {
      if (packet.length < 12) throw protocolError('invalid length of cancel request packet');
      return { kind: 'cancel', processId: packet.readInt32BE(4), secretKey: Buffer.from(packet.subarray(8)) };
    }
    const major = code >>> 16;
    const minor = code & 0xffff;
    if (major !== PROTOCOL_3_0 >>> 16) {
      throw new GatewayError(SQLSTATE.featureNotSupported, `unsupported frontend protocol ${major}.${minor}: server supports 3.0 to 3.0`, 'protocol_error');
    }
    const params = parseStartupParameters(packet.subarray(4));
    const unsupportedOptions = [...params.keys()].filter((k) => k.startsWith('_pq_.'));
    for (const k of unsupportedOptions) params.delete(k);
    return { kind: 'startup', socket, reader, tls: secure, sni: secure && typeof secure.servername === 'string' ? secure.servername : null, params, minorVersion: minor, unsupportedOptions };
  }
}

/** name\0value\0 … \0 — the StartupMessage's parameters. */
export function parseStartupParameters(body: Buffer): Map<string, string> {
  const params = new Map<string, string>();
  let at = 0;
  const next = (): string => {
    const end = body.indexOf(0, at);
    if (end < 0) throw protocolError('invalid startup packet layout: expected terminator as last byte');
    const s = body.toString('utf8', at, end);
    at = end + 1;
    return s;
  };
  for (;;) {
    if (at >= body.length) throw protocolError('invalid startup packet layout: expected terminator as last byte');
    const name = next();
    if (name === '') break;
    if (at >= body.length) throw protocolError(`invalid startup packet layout: parameter "${name}" has no value`);
    params.set(name, next());
  }
  if (at !== body.length) throw protocolError('invalid startup packet layout: data after the terminator');
  return params;
}

function write(socket: Socket, data: Buffer): Promise<void> {
  return new Promise((resolve, reject) => socket.write(data, (err) => (err ? reject(new ClientGone(err.message)) : resolve())));
}
