export { Catalog, inTransaction, isUniqueViolation } from './catalog.js';
export { AccountStore, hashApiKey, type Account, type ApiKeyRecord, type IssuedApiKey } from './accounts.js';
export { TenantStore, type TenantRecord } from './tenants.js';
export { DbStore, publicDb, type PublicDb, type DbPatch, type DbUpdateGuard } from './dbs.js';
export { EventStore, type CatalogEvent, type NewEvent } from './events.js';
export { startEmbeddedCatalog, type EmbeddedCatalog } from './embedded.js';
export { ApiKeyStore, type ApiKey, type NewApiKey, type RotateResult, type RevokeResult } from './api-keys.js';
export { UsageStore, type UsageLine } from './usage.js';
export { IdempotencyStore, type IdempotencyClaim, type StoredResponse } from './idempotency.js';
