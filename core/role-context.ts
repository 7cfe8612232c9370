import type { Catalog } from './catalog/index.js';
import type { Config } from './config.js';
import type { Coordinator } from './coordinator/index.js';
import type { Logger } from './logger.js';
import type { Registry } from './metrics.js';
import type { ProcessOwner } from './postgres/index.js';
import type { SecretBox } from './secrets.js';

/** What every role is started with: the shared parts, built once by `bin/` (DESIGN §1). */
export interface RoleContext {
  config: Config;
  catalog: Catalog;
  coordinator: Coordinator;
  secrets: SecretBox;
  logger: Logger;
  metrics: Registry;
  /** Directory with `postgres` and `initdb`. */
  binDir: string;
  /** OS user for Postgres processes when running as root. */
  owner: ProcessOwner | undefined;
}

/** A started role: stop() ends everything it started, computes included. */
export interface RunningRole {
  stop(): Promise<void>;
}
