export { postgresBinDir } from './binaries.js';
export { processOwnerFor, giveTo, type ProcessOwner } from './os-user.js';
export { freePort } from './free-port.js';
export { initDataDir, copyDataDir } from './initdb.js';
export { MAX_UNIX_SOCKET_PATH_BYTES, PostgresServer, unixSocketPathOf, type PostgresServerOptions } from './server-process.js';
