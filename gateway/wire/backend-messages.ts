import { AUTH_OK, AUTH_SASL, AUTH_SASL_CONTINUE, AUTH_SASL_FINAL, MSG } from './protocol.js';

/** The few backend messages the gateway itself says to clients; everything else is the compute's bytes, relayed. */
function message(type: number, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + body.length);
  out[0] = type;
  out.writeInt32BE(body.length + 4, 1);
  body.copy(out, 5);
  return out;
}

const cstring = (s: string): Buffer => Buffer.concat([Buffer.from(s, 'utf8'), Buffer.from([0])]);
const int32 = (n: number): Buffer => {
  const b = Buffer.allocUnsafe(4);
  b.writeInt32BE(n, 0);
  return b;
};

export const authenticationOk = (): Buffer => message(MSG.authentication, int32(AUTH_OK));

export const authenticationSasl = (mechanisms: string[]): Buffer =>
  message(MSG.authentication, Buffer.concat([int32(AUTH_SASL), ...mechanisms.map(cstring), Buffer.from([0])]));

export const authenticationSaslContinue = (data: string): Buffer =>
  message(MSG.authentication, Buffer.concat([int32(AUTH_SASL_CONTINUE), Buffer.from(data, 'utf8')]));

export const authenticationSaslFinal = (data: string): Buffer =>
  message(MSG.authentication, Buffer.concat([int32(AUTH_SASL_FINAL), Buffer.from(data, 'utf8')]));

export const backendKeyData = (processId: number, secretKey: number): Buffer => message(MSG.backendKeyData, Buffer.concat([int32(processId), int32(secretKey)]));

/** Tells a client asking for 3.x (x > 0) or `_pq_.` options what this server speaks: 3.0, none of them. */
export const negotiateProtocolVersion = (newestMinor: number, unsupportedOptions: string[]): Buffer =>
  message(MSG.negotiateProtocolVersion, Buffer.concat([int32((3 << 16) | newestMinor), int32(unsupportedOptions.length), ...unsupportedOptions.map(cstring)]));

export const parameterStatus = (name: string, value: string): Buffer => message(MSG.parameterStatus, Buffer.concat([cstring(name), cstring(value)]));

const READY_FOR_QUERY: Record<string, Buffer> = {
  I: Buffer.from([MSG.readyForQuery, 0, 0, 0, 5, 0x49]),
  T: Buffer.from([MSG.readyForQuery, 0, 0, 0, 5, 0x54]),
  E: Buffer.from([MSG.readyForQuery, 0, 0, 0, 5, 0x45]),
};
/** ReadyForQuery with transaction status I (idle), T (in a transaction) or E (in a failed one). */
export const readyForQuery = (status: 'I' | 'T' | 'E'): Buffer => READY_FOR_QUERY[status]!;

/** ParseComplete ('1') and CloseComplete ('3'): what the gateway answers for a Parse or Close it did not need to send. */
export const PARSE_COMPLETE = Buffer.from([0x31, 0, 0, 0, 4]);
export const CLOSE_COMPLETE = Buffer.from([0x33, 0, 0, 0, 4]);
