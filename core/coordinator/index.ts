export * from './coordinator.js';
export { InProcessCoordinator } from './in-process.js';
