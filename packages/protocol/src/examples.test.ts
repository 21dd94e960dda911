import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseClientFrame, parseServerFrame, serializeFrame } from './codec';
import { renderProtocolDoc } from './docs';
import { AppEventSchema } from './events';
import { appEventExamples, clientFrameExamples, methodExamples, serverFrameExamples } from './examples';
import { RPC_METHODS } from './methods';
import { validateRpcArgs, validateRpcResult } from './rpc';

describe('documented examples', () => {
  it.each(clientFrameExamples.map((e) => [e.title, e.frame] as const))('client frame: %s', (_title, frame) => {
    const parsed = parseClientFrame(JSON.stringify(frame));
    expect(parsed).toEqual({ ok: true, value: frame });
    expect(JSON.parse(serializeFrame(frame))).toEqual(frame);
  });

  it.each(serverFrameExamples.map((e) => [e.title, e.frame] as const))('server frame: %s', (_title, frame) => {
    const parsed = parseServerFrame(JSON.stringify(frame));
    expect(parsed).toEqual({ ok: true, value: frame });
    expect(JSON.parse(serializeFrame(frame))).toEqual(frame);
  });

  it.each(RPC_METHODS)('method %s: example args and result validate', (method) => {
    const example = methodExamples[method];
    expect(validateRpcArgs(method, example.args)).toEqual({ ok: true, value: example.args });
    expect(validateRpcResult(method, example.result)).toEqual({ ok: true, value: example.result });
  });

  it('covers every frame type in both directions', () => {
    const server = new Set(serverFrameExamples.map((e) => e.frame.type));
    const client = new Set(clientFrameExamples.map((e) => e.frame.type));
    expect([...client].sort()).toEqual(['auth', 'hello', 'ping', 'pong', 'rpc']);
    expect([...server].sort()).toEqual([
      'error',
      'event',
      'notice',
      'ping',
      'pong',
      'rpc_error',
      'rpc_result',
      'welcome',
    ]);
  });

  it.each(appEventExamples.map((e) => [e.event, e] as const))('published event %s validates', (_name, event) => {
    expect(AppEventSchema.parse(event)).toEqual(event);
  });

  it('docs/protocol.md is the rendering of the current schemas and examples', () => {
    const committed = readFileSync(join(__dirname, '..', '..', '..', 'docs', 'protocol.md'), 'utf8');
    // A mismatch means the schemas or examples changed: run `pnpm --filter @livebus/protocol gen:docs`.
    expect(committed).toBe(renderProtocolDoc());
  });
});
