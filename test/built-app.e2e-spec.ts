import { BuiltApp, runToExit } from './support/built-app';
import { freePort } from './support/redis-server';
import { testDatabaseUrl, testRedisUrl } from './support/test-env';

type Operation = {
  requestBody?: { content: Record<string, { schema: { $ref?: string } }> };
  responses: Record<string, { content?: Record<string, { schema: Record<string, unknown> }> }>;
  security?: unknown[];
  parameters?: { name: string; in: string }[];
};

describe('the built API (as npm start runs it)', () => {
  let app: BuiltApp;
  let doc: {
    paths: Record<string, Record<string, Operation>>;
    components: {
      schemas: Record<string, { properties?: Record<string, unknown>; required?: string[] }>;
    };
  };

  beforeAll(async () => {
    app = await BuiltApp.start({
      DATABASE_URL: testDatabaseUrl(),
      REDIS_URL: testRedisUrl(),
      ADMIN_TOKEN: undefined,
      LOG_LEVEL: 'info',
      MIGRATIONS_RUN: 'true',
    });
    doc = (await (await fetch(`${app.url}/docs-json`)).json()) as typeof doc;
  });

  afterAll(async () => {
    await app?.stop();
  });

  const routes: [
    method: string,
    path: string,
    success: string,
    problems: string[],
    body: string | null,
  ][] = [
    ['post', '/customers', '201', ['400', '409'], 'CreateCustomerDto'],
    ['get', '/events', '200', ['400'], null],
    ['get', '/events/{eventId}', '200', ['400', '404'], null],
    ['get', '/events/{eventId}/seats', '200', ['400', '404'], null],
    ['get', '/events/{eventId}/seats/stream', '200', ['400', '404', '429', '503'], null],
    ['post', '/admin/events', '201', ['400', '401', '403', '422'], 'CreateEventDto'],
    ['post', '/bookings', '201', ['400', '401', '404', '409', '422'], 'CreateBookingDto'],
    ['get', '/bookings', '200', ['400', '401'], null],
    ['get', '/bookings/{id}', '200', ['400', '401', '404'], null],
    ['delete', '/bookings/{id}', '200', ['400', '401', '404'], null],
    ['get', '/bookings/{id}/events', '200', ['400', '401', '404'], null],
    ['post', '/bookings/{id}/extend', '200', ['400', '401', '404', '409'], null],
    [
      'post',
      '/bookings/{id}/payments',
      '201',
      ['400', '401', '402', '404', '409', '422', '502', '503'],
      'CreatePaymentDto',
    ],
    ['get', '/bookings/{id}/payments', '200', ['400', '401', '404'], null],
    ['post', '/payments/webhook', '200', ['400'], null],
    ['get', '/notifications', '200', ['400', '401'], null],
    ['post', '/notifications/{id}/read', '200', ['400', '401', '404'], null],
    ['get', '/admin/outbox', '200', ['400', '401', '403'], null],
    ['post', '/admin/outbox/{id}/retry', '200', ['400', '401', '403', '404', '409'], null],
    ['post', '/webhook-endpoints', '201', ['400', '401', '422'], 'CreateWebhookEndpointDto'],
    ['get', '/webhook-endpoints', '200', ['400', '401'], null],
    ['get', '/webhook-endpoints/{id}', '200', ['400', '401', '404'], null],
    ['delete', '/webhook-endpoints/{id}', '200', ['400', '401', '404'], null],
    ['get', '/webhook-endpoints/{id}/deliveries', '200', ['400', '401', '404'], null],
    ['get', '/health/live', '200', [], null],
    ['get', '/health/ready', '200', [], null],
  ];

  it.each(routes)(
    'documents %s %s with request and response schemas',
    (method, path, success, problems, body) => {
      const operation = doc.paths[path]?.[method];
      expect(operation).toBeDefined();
      // The seat stream is Server-Sent Events; everything else answers JSON.
      const media = path.endsWith('/stream') ? 'text/event-stream' : 'application/json';
      const schema = operation.responses[success]?.content?.[media]?.schema;
      expect(schema).toBeDefined();
      for (const status of problems) {
        expect(operation.responses[status]?.content?.['application/problem+json']?.schema).toEqual({
          $ref: '#/components/schemas/ProblemDetailsDto',
        });
      }
      if (body) {
        expect(operation.requestBody?.content['application/json'].schema.$ref).toBe(
          `#/components/schemas/${body}`,
        );
      }
      if (problems.includes('401')) expect(operation.security).toEqual([{ bearer: [] }]);
    },
  );

  it('lists no route it does not document, and every DTO has its fields', () => {
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops).map((method) => `${method} ${path}`),
    );
    expect(documented.sort()).toEqual(
      [...routes.map(([m, p]) => `${m} ${p}`), 'get /metrics'].sort(),
    );
    const schemas = doc.components.schemas;
    expect(Object.keys(schemas.CreateBookingDto.properties ?? {}).sort()).toEqual([
      'eventId',
      'quantity',
      'seatIds',
      'section',
      'together',
    ]);
    // Exactly one of seatIds and quantity: neither is required on its own.
    expect(schemas.CreateBookingDto.required?.sort()).toEqual(['eventId']);
    expect(Object.keys(schemas.BookingDto.properties ?? {}).sort()).toEqual([
      'amountCents',
      'createdAt',
      'currency',
      'eventId',
      'expiresAt',
      'fencingToken',
      'id',
      'nextToEachOther',
      'seats',
      'status',
    ]);
    expect(schemas.CreatePaymentDto.required).toEqual(['paymentMethod']);
    expect(Object.keys(schemas.PaymentDto.properties ?? {}).sort()).toEqual([
      'amountCents',
      'bookingId',
      'createdAt',
      'currency',
      'failureCode',
      'failureMessage',
      'gatewayIntentId',
      'id',
      'paymentMethod',
      'refundedCents',
      'status',
    ]);
    const pay = doc.paths['/bookings/{id}/payments'].post as unknown as {
      parameters: { name: string; in: string; required: boolean }[];
    };
    expect(pay.parameters).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ name: 'Idempotency-Key', in: 'header', required: true }),
      ]),
    );
    expect(Object.keys(schemas.CreateEventDto.properties ?? {}).sort()).toEqual([
      'currency',
      'name',
      'orphanPolicy',
      'sections',
      'startsAt',
      'venue',
    ]);
    expect(Object.keys(schemas.SeatDto.properties ?? {}).sort()).toEqual([
      'currency',
      'label',
      'priceCents',
      'section',
      'status',
    ]);
    for (const field of ['type', 'title', 'status', 'detail', 'code']) {
      expect(schemas.ProblemDetailsDto.properties).toHaveProperty(field);
    }
    expect(doc).toHaveProperty('components.securitySchemes.bearer.scheme', 'bearer');
  });

  it('serves Swagger UI at /docs', async () => {
    const page = await fetch(`${app.url}/docs`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('swagger-ui');
  });

  it('with no ADMIN_TOKEN, prints a generated one once and accepts it', async () => {
    const matches = [
      ...app.output.matchAll(/ADMIN_TOKEN is not set; generated one for this run: (\S+?)["\s]/g),
    ];
    expect(matches).toHaveLength(1);
    const token = matches[0][1];
    const created = await fetch(`${app.url}/admin/events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        name: 'Built app event',
        startsAt: '2027-02-01T20:00:00Z',
        venue: 'Hall',
        currency: 'EUR',
        sections: [{ name: 'Floor', rows: 1, seatsPerRow: 2, priceCents: 100 }],
      }),
    });
    expect(created.status).toBe(201);
  });

  it('logs JSON lines with a request id, and echoes X-Request-Id', async () => {
    const response = await fetch(`${app.url}/health/live`, {
      headers: { 'x-request-id': 'trace-42' },
    });
    expect(response.headers.get('x-request-id')).toBe('trace-42');
    await new Promise((r) => setTimeout(r, 200));
    const lines = app.output.split('\n').filter((l) => l.includes('"trace-42"'));
    expect(lines.length).toBeGreaterThanOrEqual(1);
    expect(JSON.parse(lines[0])).toMatchObject({ req: { id: 'trace-42', url: '/health/live' } });
  });

  it('logs the method and URL of a request, never its bearer token or Idempotency-Key', async () => {
    const token = 'sl_never-in-the-logs-0123456789';
    const key = 'idem-never-in-the-logs-0123456789';
    const response = await fetch(
      `${app.url}/bookings/${'0'.repeat(8)}-0000-4000-8000-${'0'.repeat(12)}/payments`,
      {
        method: 'POST',
        headers: {
          authorization: `Bearer ${token}`,
          'idempotency-key': key,
          'content-type': 'application/json',
          'x-request-id': 'trace-secret-headers',
        },
        body: JSON.stringify({ paymentMethod: 'pm_card_visa' }),
      },
    );
    expect(response.status).toBe(401);
    await new Promise((r) => setTimeout(r, 200));
    const line = app.output.split('\n').find((l) => l.includes('"trace-secret-headers"'));
    expect(JSON.parse(line ?? '{}')).toMatchObject({
      req: {
        id: 'trace-secret-headers',
        method: 'POST',
        url: expect.stringContaining('/payments'),
      },
      res: { statusCode: 401 },
    });
    expect(app.output).not.toContain(token);
    expect(app.output).not.toContain(key);
  });
});

describe('bad configuration', () => {
  it('refuses to start and names every wrong variable', async () => {
    const { code, output } = await runToExit({
      DATABASE_URL: testDatabaseUrl(),
      HOLD_TTL_SECONDS: 'soon',
      LOCK_MODE: 'sometimes',
      MAX_SEATS_PER_BOOKING: '0',
      PORT: '0',
    });
    expect(code).not.toBe(0);
    expect(output).toContain('Invalid configuration');
    expect(output).toMatch(/HOLD_TTL_SECONDS="soon"/);
    expect(output).toMatch(/LOCK_MODE="sometimes"/);
    expect(output).toMatch(/MAX_SEATS_PER_BOOKING=0/);
    expect(output).not.toMatch(/^\s+at /m);
  });
});

describe('Redis unreachable from the start', () => {
  it('says so once in the log, however often it retries, and keeps serving', async () => {
    const app = await BuiltApp.start({
      DATABASE_URL: testDatabaseUrl(),
      REDIS_URL: `redis://127.0.0.1:${await freePort()}`,
      ADMIN_TOKEN: 'built-app-admin-token-0123',
      LOG_LEVEL: 'info',
      MIGRATIONS_RUN: 'false',
    });
    try {
      // Several reconnect attempts happen in this time (every 0.2–2 s).
      await new Promise((r) => setTimeout(r, 4000));
      const ready = await fetch(`${app.url}/health/ready`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toMatchObject({ status: 'degraded' });
      expect(app.output.match(/Redis unreachable/g)).toHaveLength(1);
    } finally {
      await app.stop();
    }
  });
});
