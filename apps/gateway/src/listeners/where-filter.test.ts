import { fillValue } from './where-filter';

describe('fillValue', () => {
  it('puts the id in place of the placeholder, as the value or inside an array (in, array-contains-any), and leaves the rest', () => {
    expect(fillValue('{uid}', '{uid}', 'alice')).toBe('alice');
    expect(fillValue(['{uid}', 'all', 3], '{uid}', 'alice')).toEqual(['alice', 'all', 3]);
    expect(fillValue('x{uid}', '{uid}', 'alice')).toBe('x{uid}');
    expect(fillValue({ a: '{uid}' }, '{uid}', 'alice')).toEqual({ a: '{uid}' });
    expect(fillValue(null, '{uid}', 'alice')).toBeNull();
  });
});
