import type { AddressInfo } from 'node:net';
import {
  createGateway,
  createLogger,
  defaultConfig,
  type Gateway,
  type GatewayConfig,
  type GatewayPorts,
} from '@livebus/gateway';
import { waitFor } from '@livebus/test-support';
import TransportStream from 'winston-transport';
import type { BusConsumer } from '../src/index';

class Quiet extends TransportStream {
  override log(_info: unknown, next: () => void): void {
    next();
  }
}

/** A real gateway (the built @livebus/gateway) on a port that survives restarts. */
export interface GatewayHandle {
  gw: Gateway;
  port: number;
  url: string;
  /** Stops it gracefully (clients get 1012) and starts a new one on the same port, empty. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export async function startGateway(
  overrides: Partial<GatewayConfig> = {},
  ports: () => GatewayPorts = () => ({}),
): Promise<GatewayHandle> {
  const make = async (port: number) => {
    const config = defaultConfig({
      host: '127.0.0.1',
      port,
      detachDelayMs: 100,
      shutdownGraceMs: 1_000,
      instanceId: 'gw-client-test',
      ...overrides,
    });
    const logger = createLogger({
      level: 'error',
      format: 'json',
      instanceId: config.instanceId,
      transport: new Quiet(),
    });
    const gw = createGateway(config, { logger, ...ports() });
    const address: AddressInfo = await gw.listen();
    return { gw, port: address.port };
  };
  let current = await make(0);
  const handle: GatewayHandle = {
    gw: current.gw,
    port: current.port,
    url: `ws://127.0.0.1:${current.port}/ws`,
    restart: async () => {
      await current.gw.shutdown('restart');
      current = await make(current.port);
      handle.gw = current.gw;
    },
    stop: () => current.gw.shutdown('test'),
  };
  return handle;
}

/** Waits until the client is open (again). */
export function waitOpen(client: BusConsumer, timeoutMs = 5_000) {
  return waitFor(() => client.state === 'open', 'client open', timeoutMs);
}

/** A session.notice event carrying `n`. */
export const numbered = (n: number) => ({
  event: 'session.notice' as const,
  data: { level: 'info' as const, message: String(n) },
});
