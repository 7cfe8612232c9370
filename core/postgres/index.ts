export { postgresBinDir } from './binaries.js';
export { processOwnerFor, giveTo, type ProcessOwner } from './os-user.js';
export { freePort } from './free-port.js';
export { initDataDir, copyDataDir } from './initdb.js';
export { PostgresServer, type PostgresServerOptions } from './server-process.js';
