/**
 * The pool (DESIGN §4, §7 PgDog): server connections per (role, database),
 * checked out per transaction in transaction mode through a fair queue, with
 * protocol-level prepared statements mapped across them, the freeze that holds
 * new checkouts during a handoff, and the client loop both pool modes run.
 *
 * pools.ts            every pool of a gateway, by (role, db); what db changes and freezes reach
 * pool.ts             one pool: size, idle connections, checkout, release, janitor
 * checkout-queue.ts   fair FIFO of waiting clients, checkout timeout (53300)
 * pool-server.ts      one server connection: answers matched to requests, passed on as byte ranges
 * request-queue.ts    what a server connection still owes, in order
 * pooled-client.ts    one client after startup: its messages, its checkouts, its moves
 * prepared-statements.ts  content-addressed statement names, per-client map, per-server LRU
 * startup-params.ts   a client's startup parameters carried to whichever server it gets
 * server-reset.ts     what is reset between clients, and when
 * freeze.ts           freeze_new_checkouts by generation, deadlines, lifts
 * session-move.ts     a session-mode client's settings and statements carried to a new writer
 */
export { ServerPools } from './pools.js';
export { ServerPool, type PoolDeps, type PoolStats } from './pool.js';
export { PoolServer } from './pool-server.js';
export { PooledClient } from './pooled-client.js';
export { ClientParams, welcomeFor } from './startup-params.js';
export { Freezes, HANDOFF_SQLSTATE, type Freeze } from './freeze.js';
