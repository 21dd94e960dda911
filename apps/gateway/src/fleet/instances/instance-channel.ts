import { z } from 'zod';

/** Orders one instance sends another about a session it holds. */
export const ControlMessageSchema = z.strictObject({
  /** `replace`: the session reconnected on another instance; close the old socket with 4008. */
  type: z.literal('replace'),
  uid: z.string().min(1).max(128),
  session_id: z.string().min(1).max(128),
});
export type ControlMessage = z.infer<typeof ControlMessageSchema>;

/** Port: a message channel to one instance of the fleet. */
export interface InstanceChannel {
  /** Starts receiving this instance's messages; resolves once listening. */
  listen(onMessage: (message: ControlMessage) => void): Promise<void>;
  /** Sends a message to another instance (dropped if it is gone: its sessions went with it). */
  send(instanceId: string, message: ControlMessage): Promise<void>;
  close(): Promise<void>;
}

/** One process, one instance: nothing to send anywhere. */
export class LocalInstanceChannel implements InstanceChannel {
  async listen(): Promise<void> {}
  async send(): Promise<void> {}
  async close(): Promise<void> {}
}
