import { createHmac } from 'node:crypto';
import { signWebhook, webhookSignatureProblem } from './webhook-signature';

describe('webhook signatures (t=<unix>,v1=<HMAC-SHA256 of "t.body">)', () => {
  const secret = 'whsec_unit_0123456789';
  const body = '{"id":"evt_1","type":"payment_intent.succeeded"}';
  const now = 1_800_000_000;

  it('accepts what it signed, within the tolerance either way', () => {
    expect(webhookSignatureProblem(secret, body, signWebhook(secret, body, now), now)).toBeNull();
    expect(
      webhookSignatureProblem(secret, body, signWebhook(secret, body, now - 300), now),
    ).toBeNull();
    expect(
      webhookSignatureProblem(secret, body, signWebhook(secret, body, now + 300), now),
    ).toBeNull();
  });

  it('matches an HMAC computed independently of this module', () => {
    const expected = createHmac('sha256', secret).update(`${now}.${body}`).digest('hex');
    expect(signWebhook(secret, body, now)).toBe(`t=${now},v1=${expected}`);
  });

  it('refuses a missing, malformed, stale, future, tampered or foreign signature, saying why', () => {
    const good = signWebhook(secret, body, now);
    expect(webhookSignatureProblem(secret, body, undefined, now)).toMatch(/missing/);
    expect(webhookSignatureProblem(secret, body, 'v1=abc', now)).toMatch(/must look like/);
    expect(
      webhookSignatureProblem(secret, body, signWebhook(secret, body, now - 301), now),
    ).toMatch(/300 s/);
    expect(
      webhookSignatureProblem(secret, body, signWebhook(secret, body, now + 301), now),
    ).toMatch(/300 s/);
    expect(webhookSignatureProblem(secret, `${body} `, good, now)).toMatch(/does not match/);
    expect(webhookSignatureProblem('whsec_other_secret', body, good, now)).toMatch(
      /does not match/,
    );
    // The timestamp is signed too: moving it breaks the signature.
    expect(
      webhookSignatureProblem(secret, body, good.replace(`t=${now}`, `t=${now + 1}`), now),
    ).toMatch(/does not match/);
  });

  it('accepts any one of several v1 entries (a secret being rotated)', () => {
    const old = signWebhook('whsec_old_secret_0', body, now).split(',')[1];
    const header = `${signWebhook(secret, body, now)},${old}`;
    expect(webhookSignatureProblem(secret, body, header, now)).toBeNull();
    expect(webhookSignatureProblem('whsec_old_secret_0', body, header, now)).toBeNull();
  });
});
