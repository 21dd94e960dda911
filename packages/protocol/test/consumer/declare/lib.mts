// Compiled with `declaration: true` against the BUILT package by test/consumer.int.test.ts: a
// library wrapping the protocol's calls, whose emitted types must name no zod type (under pnpm
// a zod type there is TS2742, as zod is not the library's own dependency).
import type { AppEvent, EventData, RpcCaller, UserRegistryPatch } from '@livebus/protocol';

declare const rpc: RpcCaller;

export const registry = () => rpc('UNIFIED_REGISTRY.get_user_registry', 'user-1');
export const patch = (services: NonNullable<UserRegistryPatch['services']>) => ({ services });
export const updated = (data: EventData<'registry.updated'>) => ({ registry: data.registry });
export const event = (e: AppEvent) => [e];
