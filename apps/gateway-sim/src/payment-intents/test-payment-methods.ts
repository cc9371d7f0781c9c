/** How a test card behaves when a payment intent is created with it. */
export interface TestPaymentMethod {
  outcome: 'authorize' | 'decline' | 'async';
  /** Answers after GATEWAY_SLOW_MS. */
  slow?: boolean;
  /** The first request (per Idempotency-Key) answers 500 and changes nothing. */
  flaky?: boolean;
  decline?: { decline_code: string; message: string };
}

/** Stripe's test payment methods, plus the simulator's own fault-injecting ones. */
export const TEST_PAYMENT_METHODS: Readonly<Record<string, TestPaymentMethod>> = {
  pm_card_visa: { outcome: 'authorize' },
  pm_card_declined: {
    outcome: 'decline',
    decline: { decline_code: 'generic_decline', message: 'Your card was declined.' },
  },
  pm_card_insufficient_funds: {
    outcome: 'decline',
    decline: { decline_code: 'insufficient_funds', message: 'Your card has insufficient funds.' },
  },
  pm_card_async: { outcome: 'async' },
  pm_card_slow: { outcome: 'authorize', slow: true },
  pm_card_flaky: { outcome: 'authorize', flaky: true },
};
