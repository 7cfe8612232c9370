import { PROTOCOL_3_0 } from './protocol.js';

/**
 * StartupMessage for the compute. Not pg-protocol's `serialize.startup`: that one
 * appends client_encoding=UTF8, which would override the client's own choice.
 */
export function startupMessage(params: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  for (const [k, v] of Object.entries(params)) parts.push(Buffer.from(`${k}\0${v}\0`, 'utf8'));
  parts.push(Buffer.from([0]));
  const body = Buffer.concat(parts);
  const head = Buffer.allocUnsafe(8);
  head.writeInt32BE(body.length + 8, 0);
  head.writeInt32BE(PROTOCOL_3_0, 4);
  return Buffer.concat([head, body]);
}
