import { z } from 'zod';

const id = z.string().min(1).max(128);

/** `replace`: the session reconnected on another instance; close the old socket with 4008. */
export const ReplaceMessageSchema = z.strictObject({ type: z.literal('replace'), uid: id, session_id: id });

/**
 * `watch`: the user watches `job_id` now (WORKFLOW.watch landed on instance `from`); the holder
 * of the user's lease attaches it at once and answers `watched` with the same `id` once the
 * job's initial state is published.
 */
export const WatchMessageSchema = z.strictObject({
  type: z.literal('watch'),
  uid: id,
  job_id: id,
  from: id,
  id,
});

/**
 * `registration`: `REGISTRY.register_user` or `unregister_session` changed the registry entry of
 * a session this instance holds, through another instance. A hint, not the entry: the holder
 * reads the entry itself, in order with its own writes (messages may arrive late or out of
 * order), and keeps it to write back after a stall.
 */
export const RegistrationMessageSchema = z.strictObject({ type: z.literal('registration'), uid: id, session_id: id });

/** `watched`: the answer to `watch` (`ok`: attached here and its initial state published). */
export const WatchedMessageSchema = z.strictObject({ type: z.literal('watched'), uid: id, id, ok: z.boolean() });

/**
 * Messages one instance sends another: about a session it holds (`replace`, `registration`) or a user's
 * listeners it holds (`watch`, `watched`). An instance of an older version drops the kinds it
 * does not know (the schema is strict), so a sender never relies on an answer.
 */
export const ControlMessageSchema = z.discriminatedUnion('type', [
  ReplaceMessageSchema,
  RegistrationMessageSchema,
  WatchMessageSchema,
  WatchedMessageSchema,
]);
export type ControlMessage = z.infer<typeof ControlMessageSchema>;
export type ReplaceMessage = z.infer<typeof ReplaceMessageSchema>;
export type RegistrationMessage = z.infer<typeof RegistrationMessageSchema>;
/** The messages the connection handler handles (about a session it holds). */
export type SessionControlMessage = ReplaceMessage | RegistrationMessage;
/** The messages the listeners manager sends and handles. */
export type ListenerControlMessage = Exclude<ControlMessage, SessionControlMessage>;

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
