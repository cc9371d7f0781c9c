import { requestFingerprint } from './idempotent-request';

describe('requestFingerprint', () => {
  it('is the same for the same request whatever the order of its keys', () => {
    expect(requestFingerprint('POST', '/a', { x: 1, y: { b: 2, a: [1, { d: 1, c: 2 }] } })).toBe(
      requestFingerprint('POST', '/a', { y: { a: [1, { c: 2, d: 1 }], b: 2 }, x: 1 }),
    );
  });

  it('differs for another body, path or method, and for array order', () => {
    const base = requestFingerprint('POST', '/a', { paymentMethod: 'pm_card_visa' });
    expect(requestFingerprint('POST', '/a', { paymentMethod: 'pm_card_declined' })).not.toBe(base);
    expect(requestFingerprint('POST', '/b', { paymentMethod: 'pm_card_visa' })).not.toBe(base);
    expect(requestFingerprint('PUT', '/a', { paymentMethod: 'pm_card_visa' })).not.toBe(base);
    expect(requestFingerprint('POST', '/a', [1, 2])).not.toBe(
      requestFingerprint('POST', '/a', [2, 1]),
    );
  });

  it('tells an empty body from a JSON null only as the body itself does', () => {
    expect(requestFingerprint('POST', '/a', undefined)).toBe(
      requestFingerprint('POST', '/a', null),
    );
    expect(requestFingerprint('POST', '/a', {})).not.toBe(requestFingerprint('POST', '/a', null));
  });
});
