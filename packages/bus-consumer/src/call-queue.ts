import type { RpcErrorFrame, RpcMethod, RpcResult, RpcResultFrame } from '@livebus/protocol';
import { serializeClientFrame, validateRpcResult } from '@livebus/protocol/client';
import { RpcError } from './errors';

/** RPC counters, shared with the client's `counters`. */
export interface RpcCounters {
  ok: number;
  error: number;
  timeout: number;
}

/** Limits of a {@link CallQueue}, taken from the client's options. */
export interface CallQueueOptions {
  rpcTimeoutMs: number;
  whileDisconnected: 'queue' | 'fail';
  maxQueuedCalls: number;
}

/** Sends one serialized frame on the current socket; false when no socket is open. */
export type SendFrame = (frame: string) => boolean;

interface PendingCall {
  id: number;
  method: string;
  frame: string;
  resolve: (value: unknown) => void;
  reject: (error: RpcError) => void;
  timer: ReturnType<typeof setTimeout>;
  /** Sent on some socket: its outcome is unknown if that socket drops, so it is never resent. */
  sent: boolean;
}

/**
 * The RPC calls in flight: queued while disconnected, sent when a session
 * opens, settled by `rpc_result` / `rpc_error`, failed on timeout or when the
 * connection drops after sending them.
 */
export class CallQueue {
  declare private readonly o: CallQueueOptions;
  declare private readonly counters: RpcCounters;
  private readonly calls = new Map<number, PendingCall>();
  private nextId = 1;

  constructor(options: CallQueueOptions, counters: RpcCounters) {
    this.o = options;
    this.counters = counters;
  }

  /**
   * Registers a call and sends it at once when `open`; otherwise queues it or
   * fails it, as `whileDisconnected` and `maxQueuedCalls` say. The result is
   * validated against the protocol's method table.
   */
  call<M extends RpcMethod>(method: M, args: unknown[], open: boolean, send: SendFrame): Promise<RpcResult<M>> {
    return new Promise<RpcResult<M>>((resolve, reject) => {
      if (!open && this.o.whileDisconnected === 'fail') {
        this.counters.error++;
        return reject(new RpcError('unavailable', 'not connected'));
      }
      const queued = [...this.calls.values()].filter((c) => !c.sent).length;
      if (!open && queued >= this.o.maxQueuedCalls) {
        this.counters.error++;
        return reject(new RpcError('unavailable', `not connected and ${queued} calls already queued`));
      }
      const id = this.nextId++;
      const call: PendingCall = {
        id,
        method,
        frame: serializeClientFrame({ type: 'rpc', id, method, args: args as never }),
        // Counted by its outcome: a result of the wrong shape fails the call, as an error.
        resolve: (value) => {
          const checked = validateRpcResult(method, value);
          if (checked.ok) {
            this.counters.ok++;
            resolve(checked.value as RpcResult<M>);
          } else {
            this.counters.error++;
            reject(
              new RpcError('internal', `the gateway answered ${method} with an unexpected shape`, checked.error.issues),
            );
          }
        },
        reject,
        sent: false,
        // Counted from the call, so time spent queued is included.
        timer: setTimeout(() => {
          this.calls.delete(id);
          this.counters.timeout++;
          reject(new RpcError('timeout', `${method} timed out after ${this.o.rpcTimeoutMs} ms`));
        }, this.o.rpcTimeoutMs),
      };
      this.calls.set(id, call);
      if (open) this.send(call, send);
    });
  }

  /** Sends every call still queued (a session just opened). */
  sendQueued(send: SendFrame): void {
    for (const call of this.calls.values()) if (!call.sent) this.send(call, send);
  }

  /** Settles the call an answer belongs to; answers to calls that timed out are ignored. */
  settle(frame: RpcResultFrame | RpcErrorFrame): void {
    const call = typeof frame.id === 'number' ? this.calls.get(frame.id) : undefined;
    if (!call) return;
    this.calls.delete(call.id);
    clearTimeout(call.timer);
    if (frame.type === 'rpc_result') {
      call.resolve(frame.result);
    } else {
      this.counters.error++;
      call.reject(new RpcError(frame.error.code, frame.error.message, frame.error.data));
    }
  }

  /**
   * Fails the calls already sent (`'sent'`) or all of them (`'all'`). Sent calls
   * may or may not have run when a connection drops: failing them is safer than
   * resending and running them twice. `error` makes the one error they all fail with, only when
   * there is a call to fail (most closes have none, and an error's stack trace is not free).
   */
  fail(which: 'sent' | 'all', error: () => RpcError): void {
    let failure: RpcError | undefined;
    for (const call of [...this.calls.values()]) {
      if (which === 'sent' && !call.sent) continue;
      this.calls.delete(call.id);
      clearTimeout(call.timer);
      this.counters.error++;
      failure ??= error();
      call.reject(failure);
    }
  }

  private send(call: PendingCall, send: SendFrame): void {
    if (send(call.frame)) call.sent = true;
  }
}
