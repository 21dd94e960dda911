/**
 * How the `gateway_listening` and `registry_op` logs name a store: `redis` when the
 * fleet shares it, `memory` when only this process has it. Operators query these
 * values (docs/operations.md); the ports themselves only say whether they are shared.
 */
export function storeLabel(store: { readonly sharedAcrossInstances: boolean }): 'memory' | 'redis' {
  return store.sharedAcrossInstances ? 'redis' : 'memory';
}
