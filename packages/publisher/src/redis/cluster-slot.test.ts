import { slotOf, userSlot } from './cluster-slot';
import { userKeys } from './keyspace';

describe('slotOf and userSlot', () => {
  it("computes Redis Cluster's slot (CLUSTER KEYSLOT foo is 12182), hash tags included", () => {
    expect(slotOf('foo')).toBe(12182);
    expect(slotOf('{foo}.bar')).toBe(12182);
    expect(slotOf('x{}y')).not.toBe(slotOf('{}'));
  });

  it('gives each user the slot of its keys, whatever characters its id has', () => {
    for (const id of ['u1', 'user-42', 'a{b}c', '50%', 'é', 'ü{x}', '用户', '']) {
      expect(userSlot(id)).toBe(slotOf(userKeys(id).stream));
    }
  });
});
