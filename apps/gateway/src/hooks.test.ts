import { Hooks } from './hooks';

interface Events {
  a: { n: number };
  b: { s: string };
}

describe('Hooks', () => {
  it('tells each listener of a name, in subscription order, until it stops listening', () => {
    const hooks = new Hooks<Events>();
    const heard: string[] = [];
    const off = hooks.on('a', (e) => heard.push(`first ${e.n}`));
    hooks.on('a', (e) => heard.push(`second ${e.n}`));
    hooks.on('b', (e) => heard.push(`b ${e.s}`));
    hooks.emit('a', { n: 1 });
    off();
    hooks.emit('a', { n: 2 });
    expect(heard).toEqual(['first 1', 'second 1', 'second 2']);
    expect(hooks.has('a')).toBe(true);
  });

  it('tells those listening when an emit began: one that joins or leaves meanwhile counts from the next emit', () => {
    const hooks = new Hooks<Events>();
    const heard: string[] = [];
    let offLast: () => void = () => {};
    let joined = false;
    hooks.on('a', (e) => {
      heard.push(`first ${e.n}`);
      offLast();
      if (!joined) hooks.on('a', (e2) => heard.push(`joined ${e2.n}`));
      joined = true;
    });
    offLast = hooks.on('a', (e) => heard.push(`last ${e.n}`));
    hooks.emit('a', { n: 1 });
    hooks.emit('a', { n: 2 });
    hooks.emit('a', { n: 3 });
    expect(heard).toEqual(['first 1', 'last 1', 'first 2', 'joined 2', 'first 3', 'joined 3']);
  });

  it('reports a throwing listener and still tells the others', () => {
    const errors: string[] = [];
    const hooks = new Hooks<Events>({ onListenerError: (name, error) => errors.push(`${name}: ${String(error)}`) });
    const heard: number[] = [];
    hooks.on('a', () => {
      throw new Error('boom');
    });
    hooks.on('a', (e) => heard.push(e.n));
    hooks.emit('a', { n: 7 });
    expect(heard).toEqual([7]);
    expect(errors).toEqual(['a: Error: boom']);
  });

  it('lets a propagating listener fail the emitter, once every listener was told', () => {
    const errors: string[] = [];
    const hooks = new Hooks<Events>({ onListenerError: (name) => errors.push(name) });
    const heard: number[] = [];
    hooks.on(
      'a',
      () => {
        throw new Error('log write failed');
      },
      { propagate: true },
    );
    hooks.on('a', (e) => heard.push(e.n));
    expect(() => hooks.emit('a', { n: 3 })).toThrow('log write failed');
    expect(heard).toEqual([3]);
    expect(errors).toEqual([]);
  });

  it('next() resolves with the first matching event and stops listening', async () => {
    const hooks = new Hooks<Events>();
    const next = hooks.next('a', (e) => e.n > 1);
    hooks.emit('a', { n: 1 });
    hooks.emit('a', { n: 2 });
    await expect(next).resolves.toEqual({ n: 2 });
    expect(hooks.has('a')).toBe(false);
  });

  it('next() rejects naming the event when none came', async () => {
    const hooks = new Hooks<Events>();
    await expect(hooks.next('b', undefined, { timeoutMs: 1 })).rejects.toThrow("no 'b' event");
    expect(hooks.has('b')).toBe(false);
  });
});
