// Compiled against the BUILT package with ESM (nodenext) resolution by test/consumer.int.test.ts.
import {
  CloseCode,
  classifyDisconnect,
  type EventData,
  type JsonValue,
  parseServerFrame,
  type RpcCaller,
  type RpcResult,
  serializeFrame,
  type UserRegistryPatch,
} from '@livebus/protocol';

declare const rpc: RpcCaller;

export async function demo(): Promise<string> {
  const started: RpcResult<'TASK.start_document_analysis'> = await rpc(
    'TASK.start_document_analysis',
    'user-1',
    { content: 'hello' },
    'job-1',
  );
  // @ts-expect-error the second argument must be { content: string }
  await rpc('TASK.start_document_analysis', 'user-1', 'not an object', 'job-1');
  // @ts-expect-error unknown method
  await rpc('TASK.nope', 'x');
  // @ts-expect-error missing argument
  await rpc('REGISTRY.register_user', 'user-1', 'session-1');
  const progress: EventData<'task.progress_update'> = { task_id: started.task_id, status: 'running', progress: 5 };
  const parsed = parseServerFrame(
    serializeFrame({ type: 'event', cursor: 'e1:1', ts: 0, event: 'task.progress_update', data: progress }),
  );
  return `${classifyDisconnect(CloseCode.ServiceRestart)} ${parsed.ok}`;
}

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
// The JSON fields are typed with the protocol's own JsonValue, not zod's JSON type.
export const jsonFields: [
  Equal<RpcResult<'UNIFIED_REGISTRY.get_user_registry'>['services'], Record<string, JsonValue>>,
  Equal<UserRegistryPatch['services'], Record<string, JsonValue> | undefined>,
  Equal<EventData<'registry.updated'>['registry'], Record<string, JsonValue> | undefined>,
] = [true, true, true];
