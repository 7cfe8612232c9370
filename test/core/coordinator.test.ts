import { InProcessCoordinator } from '../../core/index.js';
import { coordinatorContract } from './coordinator-contract.js';

// In one process every role shares one coordinator: both "processes" are the same object.
coordinatorContract('in-process', async () => {
  const c = new InProcessCoordinator();
  return [c, c, () => c.close()];
});
