/** Protocol numbers from the Postgres docs ("Message Formats"), named once. */
export const PROTOCOL_3_0 = 196608; // (3 << 16) | 0
export const SSL_REQUEST_CODE = 80877103;
export const GSSENC_REQUEST_CODE = 80877104;
export const CANCEL_REQUEST_CODE = 80877102;

/** Postgres's own MAX_STARTUP_PACKET_LENGTH: anything longer is an attack or garbage. */
export const MAX_STARTUP_PACKET_BYTES = 10_000;
/** Authentication messages (SASL) are small; Postgres caps them at PG_MAX_AUTH_TOKEN_LENGTH. */
export const MAX_AUTH_MESSAGE_BYTES = 65_535;

export const AUTH_OK = 0;
export const AUTH_SASL = 10;
export const AUTH_SASL_CONTINUE = 11;
export const AUTH_SASL_FINAL = 12;

/** Type bytes of the messages the gateway reads or writes itself. */
export const MSG = {
  authentication: 0x52, // 'R'
  parameterStatus: 0x53, // 'S'
  backendKeyData: 0x4b, // 'K'
  readyForQuery: 0x5a, // 'Z'
  errorResponse: 0x45, // 'E'
  noticeResponse: 0x4e, // 'N'
  negotiateProtocolVersion: 0x76, // 'v'
  saslResponse: 0x70, // 'p' (SASLInitialResponse and SASLResponse)
  terminate: 0x58, // 'X'
} as const;
