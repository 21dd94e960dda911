import { parseClientFrame, parseServerFrame, serializeFrame } from './codec';
import { FrameError } from './errors';
import type { Frame } from './frames';

function expectIssue(result: ReturnType<typeof parseClientFrame>, path: string) {
  expect(result.ok).toBe(false);
  if (result.ok) return;
  expect(result.error).toBeInstanceOf(FrameError);
  expect(result.error.kind).toBe('invalid');
  expect(result.error.issues.map((i) => i.path)).toContain(path);
  expect(result.error.message).toContain(path);
}

describe('parseClientFrame', () => {
  it('accepts strings, Buffers, ArrayBuffers and Buffer lists', () => {
    const text = '{"type":"ping","ts":5}';
    const buf = Buffer.from(text);
    for (const input of [
      text,
      buf,
      buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength),
      [buf.subarray(0, 3), buf.subarray(3)],
    ]) {
      expect(parseClientFrame(input)).toEqual({ ok: true, value: { type: 'ping', ts: 5 } });
    }
  });

  it('names the path of a wrong field', () => {
    expectIssue(parseClientFrame('{"type":"hello","v":0}'), 'v');
    expectIssue(parseClientFrame('{"type":"rpc","method":"REGISTRY.get_sessions","args":[]}'), 'id');
    expectIssue(parseClientFrame('{"type":"rpc","id":1,"method":"X.y","args":"nope"}'), 'args');
    expectIssue(parseClientFrame('{"type":"hello","v":1,"last_cursor":"e1:-1"}'), 'last_cursor');
    expectIssue(parseClientFrame('{"type":"teleport"}'), 'type');
  });

  it('rejects unknown fields (schemas are strict)', () => {
    const result = parseClientFrame('{"type":"ping","extra":true}');
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error.message).toMatch(/extra/);
  });

  it('rejects server-only frames sent by a client', () => {
    expectIssue(parseClientFrame('{"type":"notice","kind":"info","message":"x"}'), 'type');
  });

  it('rejects malformed JSON, non-objects and non-text input with a typed error', () => {
    const bad = parseClientFrame('{"type":');
    expect(bad.ok || bad.error.kind).toBe('bad_json');
    const arr = parseClientFrame('[1,2]');
    expect(arr.ok || arr.error.kind).toBe('invalid');
    const num = parseClientFrame(42);
    expect(num.ok || num.error.kind).toBe('not_text');
    const utf8 = parseClientFrame(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]));
    expect(utf8.ok || utf8.error.kind).toBe('not_text');
  });

  it('rejects oversize input before parsing it', () => {
    // Not valid JSON either: a too_large verdict proves the size check ran first.
    const huge = `{${'x'.repeat(2048)}`;
    const result = parseClientFrame(huge, { maxBytes: 1024 });
    expect(result.ok || result.error.kind).toBe('too_large');
    const asBuffer = parseClientFrame(Buffer.from(huge), { maxBytes: 1024 });
    expect(asBuffer.ok || asBuffer.error.kind).toBe('too_large');
    // Multi-byte characters count in bytes, not UTF-16 units.
    const wide = parseClientFrame(`"${'é'.repeat(600)}"`, { maxBytes: 1024 });
    expect(wide.ok || wide.error.kind).toBe('too_large');
  });
});

describe('parseServerFrame', () => {
  it('validates event data against the event table', () => {
    const frame = {
      type: 'event',
      cursor: 'e1:1',
      ts: 1,
      event: 'task.progress_update',
      data: { task_id: 't', status: 'running', progress: 150 },
    };
    const result = parseServerFrame(JSON.stringify(frame));
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error.issues[0]?.path).toBe('data.progress');
  });

  it('rejects unknown event types', () => {
    const result = parseServerFrame('{"type":"event","cursor":"e1:1","ts":1,"event":"nope","data":{}}');
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error.issues[0]?.path).toBe('event');
  });
});

describe('untrusted JSON', () => {
  it('drops "__proto__" keys instead of letting them reach an object prototype', () => {
    const text =
      '{"type":"event","cursor":"e1:1","ts":1,"event":"listener.change","data":{"source":"s","path":"p","change":"added","data":{"__proto__":{"polluted":true},"ok":1}}}';
    const result = parseServerFrame(text);
    expect(result.ok).toBe(true);
    if (!result.ok || result.value.type !== 'event' || result.value.event !== 'listener.change') {
      throw new Error('expected a listener.change event');
    }
    expect(result.value.data.data).toEqual({ ok: 1 });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('serializeFrame', () => {
  it('throws a FrameError naming the path instead of sending an invalid frame', () => {
    const bad = { type: 'rpc_error', id: 1, error: { code: 'bogus', message: 'x' } } as unknown as Frame;
    expect(() => serializeFrame(bad)).toThrow(FrameError);
    try {
      serializeFrame(bad);
    } catch (e) {
      expect((e as FrameError).issues[0]?.path).toBe('error.code');
    }
  });

  it('validates client-only frames against the client schema', () => {
    const bad = { type: 'hello', v: 1, token: '' } as unknown as Frame;
    expect(() => serializeFrame(bad)).toThrow(/token/);
  });
});
