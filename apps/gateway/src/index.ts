export type { Authenticator, Principal } from './auth/authenticator';
export { AuthError } from './auth/authenticator';
export { type AuthenticatorForOptions, authenticatorFor } from './auth/authenticator-for';
export { FirebaseAuthenticator } from './auth/firebase-authenticator';
export { JwtAuthenticator, type JwtAuthOptions, type SignJwtOptions, signJwt } from './auth/jwt-authenticator';
export { NoneAuthenticator } from './auth/none-authenticator';
export { toPrincipal } from './auth/principal';
export {
  composePorts,
  type GatewayPorts,
  type MemoryPorts,
  memoryPorts,
  type ResolvedPorts,
  resolvePorts,
} from './compose';
export { ConfigError, defaultConfig, EnvSchema, type GatewayConfig, loadConfig } from './config';
export type { EventBus, PublishOptions, ReadResult, StoredEvent } from './fleet/bus/event-bus';
export { MemoryEventBus } from './fleet/bus/memory-event-bus';
export { RedisEventBus } from './fleet/bus/redis-event-bus';
export type { DetachDecision } from './fleet/detach/detach-decision';
export type { InstanceChannel } from './fleet/instances/instance-channel';
export type { InstanceLiveness } from './fleet/instances/instance-liveness';
export type { Lease } from './fleet/lease/lease';
export type { HeldSessions, InstanceInfo, Presence, SessionEntry } from './fleet/presence/presence';
export { MemoryRegistryStore } from './fleet/registry/memory-registry-store';
export { RedisRegistryStore } from './fleet/registry/redis-registry-store';
export type { RegistryStore } from './fleet/registry/registry-store';
export { createGateway, type Gateway } from './gateway';
export { type GatewayHookEvents, type GatewayHooks, type HookListener, Hooks, type HooksOptions } from './hooks';
export type { Detach, ListenerSource } from './listeners/listener-source';
export { createLogger, type LogEvent, type Logger } from './logger';
export {
  DELIVERY_BUCKETS_S,
  DELIVERY_SOURCES,
  DeliveryLatency,
  type DeliverySource,
  type LatencySummary,
} from './metrics/delivery-latency';
export { RpcError } from './rpc/rpc-error';
export type { DependencyStatus, GatewayStats } from './transport/http/http-deps';
export { PortInUseError } from './transport/port-in-use';
export { VERSION } from './version';
