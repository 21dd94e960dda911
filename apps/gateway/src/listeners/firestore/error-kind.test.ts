import { dirname } from 'node:path';
import { errorKind, SDK_RETRIES_EXHAUSTED } from './error-kind';

/** The Firestore client's own backoff (@google-cloud/firestore, a dependency of firebase-admin). */
function sdkBackoff(): { backoffAndWait(): Promise<void> } {
  const path = require.resolve('@google-cloud/firestore/build/src/backoff', {
    paths: [dirname(require.resolve('firebase-admin/firestore'))],
  });
  const { ExponentialBackoff } = require(path);
  return new ExponentialBackoff({ initialDelayMs: 0, maxDelayMs: 0, jitterFactor: 0 });
}

describe('errorKind', () => {
  it('names a gRPC status code', () => {
    expect(errorKind(Object.assign(new Error('7 PERMISSION_DENIED: denied'), { code: 7 }))).toBe('permission_denied');
    expect(errorKind(Object.assign(new Error('14 UNAVAILABLE: No connection'), { code: 14 }))).toBe('unavailable');
    expect(errorKind(Object.assign(new Error('odd'), { code: 99 }))).toBe('other');
  });

  it("takes the Firestore client giving up its own retries (a plain Error, no code) as unavailable: the client's very error", async () => {
    // The listen stream's retries: the twelfth wait is refused, and Watch hands that error to onError.
    const backoff = sdkBackoff();
    for (let i = 0; i < 11; i++) await backoff.backoffAndWait();
    const refused = await backoff.backoffAndWait().then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(Error);
    expect(refused).toMatchObject({ message: SDK_RETRIES_EXHAUSTED });
    expect((refused as { code?: unknown }).code).toBeUndefined();
    expect(errorKind(refused)).toBe('unavailable');
  });

  it('takes the code of a query the server removed (the client says it in the message only)', () => {
    // Watch.onData on a target change REMOVE: `new Error('Error ' + code + ': ' + message)`.
    const index = new Error(
      'Error 9: The query requires an index. You can create it here: https://console.firebase.google.com/v1/r/project/p/firestore/indexes?create_composite=Cg',
    );
    expect(errorKind(index)).toBe('failed_precondition');
    expect(errorKind(new Error("Error 3: 'IN' supports up to 30 comparison values."))).toBe('invalid_argument');
    expect(errorKind(new Error('Error 8: Quota exceeded.'))).toBe('resource_exhausted');
    expect(errorKind(new Error('Error 99: odd'))).toBe('other');
  });

  it('is other for an error without a code that the client did not give up on', () => {
    expect(errorKind(new Error('Unexpected target ID sent by server'))).toBe('other');
    expect(errorKind('a string')).toBe('other');
    expect(errorKind(undefined)).toBe('other');
  });
});
