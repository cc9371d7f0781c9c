import { signPayload, verifySignature } from './webhook-signature';

const SECRET = 'whsec_test_secret';
const BODY = '{"id":"evt_1","type":"payment_intent.succeeded"}';
const NOW = 1_900_000_000;

describe('webhook signature', () => {
  it('has the format t=<unix>,v1=<hex HMAC-SHA256 of "t.body">', () => {
    expect(signPayload(SECRET, BODY, NOW)).toMatch(/^t=1900000000,v1=[0-9a-f]{64}$/);
  });

  it('accepts a valid signature, from a string or the raw bytes', () => {
    const header = signPayload(SECRET, BODY, NOW);
    expect(verifySignature(SECRET, BODY, header, 300, NOW)).toBe(true);
    expect(verifySignature(SECRET, Buffer.from(BODY), header, 300, NOW + 299)).toBe(true);
  });

  it('refuses a tampered body', () => {
    const header = signPayload(SECRET, BODY, NOW);
    expect(verifySignature(SECRET, BODY.replace('evt_1', 'evt_2'), header, 300, NOW)).toBe(false);
  });

  it('refuses a stale (or far future) timestamp', () => {
    const header = signPayload(SECRET, BODY, NOW);
    expect(verifySignature(SECRET, BODY, header, 300, NOW + 301)).toBe(false);
    expect(verifySignature(SECRET, BODY, header, 300, NOW - 301)).toBe(false);
  });

  it('refuses a wrong secret, a missing or malformed header', () => {
    const header = signPayload('whsec_other', BODY, NOW);
    expect(verifySignature(SECRET, BODY, header, 300, NOW)).toBe(false);
    expect(verifySignature(SECRET, BODY, undefined, 300, NOW)).toBe(false);
    expect(verifySignature(SECRET, BODY, 'v1=abc', 300, NOW)).toBe(false);
    expect(verifySignature(SECRET, BODY, `t=${NOW}`, 300, NOW)).toBe(false);
  });

  it('accepts any one of several v1 signatures', () => {
    const good = signPayload(SECRET, BODY, NOW).split(',')[1];
    const header = `t=${NOW},v1=${'0'.repeat(64)},${good}`;
    expect(verifySignature(SECRET, BODY, header, 300, NOW)).toBe(true);
  });
});
