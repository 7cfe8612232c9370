export * from './coordinator.js';
export { InProcessCoordinator } from './in-process.js';
export { RedisCoordinator, type RedisCoordinatorOptions } from './redis.js';
