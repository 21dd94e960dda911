import { RedisWorkflowWatchStore } from '../src/listeners/redis-workflow-watch-store';
import { MemoryWorkflowWatchStore } from '../src/listeners/workflow-watch-store';
import { workflowWatchStoreContract } from '../src/listeners/workflow-watch-store.contract';
import { useFleetBackends } from './fleet-backends';

const backends = useFleetBackends();

workflowWatchStoreContract('in-memory', async () => new MemoryWorkflowWatchStore());
for (const backend of [backends.standalone, backends.cluster]) {
  workflowWatchStoreContract(backend.name, async () => new RedisWorkflowWatchStore(backend.connect()));
}
