import { randomBytes, randomUUID } from 'node:crypto';
import { Agent, request } from 'undici';
import { registerCustomer } from './support/fixtures';
import { PgCountingProxy } from './support/pg-counting-proxy';
import { RedisServer } from './support/redis-server';
import { TestApp } from './support/test-app';
import { testDatabaseUrl } from './support/test-env';

/** A client on its own loopback address (Linux routes all of 127/8 to lo). */
class Client {
  private readonly agent: Agent;

  constructor(readonly address: string) {
    this.agent = new Agent({ localAddress: address, connections: 128 });
  }

  async send(
    api: TestApp,
    method: 'GET' | 'POST',
    path: string,
    options: { authorization?: string; body?: unknown; forwardedFor?: string } = {},
  ): Promise<{ status: number; headers: Record<string, unknown>; body: any }> {
    const response = await request(`${api.url}${path}`, {
      method,
      dispatcher: this.agent,
      headers: {
        ...(options.authorization ? { authorization: options.authorization } : {}),
        ...(options.forwardedFor ? { 'x-forwarded-for': options.forwardedFor } : {}),
        ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
    });
    const text = await response.body.text();
    return {
      status: response.statusCode,
      headers: response.headers,
      body:
        text && String(response.headers['content-type']).includes('json') ? JSON.parse(text) : text,
    };
  }

  register(api: TestApp) {
    return this.send(api, 'POST', '/customers', {
      body: { email: `c-${randomUUID()}@example.test`, name: 'Rate Limited' },
    });
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}

function tally(statuses: number[]): Record<number, number> {
  const counts: Record<number, number> = {};
  for (const status of statuses) counts[status] = (counts[status] ?? 0) + 1;
  return counts;
}

/** `count` requests, `width` at a time. */
async function waves<T>(count: number, width: number, send: (i: number) => Promise<T>) {
  const results: T[] = [];
  for (let i = 0; i < count; i += width) {
    const slice = Array.from({ length: Math.min(width, count - i) }, (_, j) => send(i + j));
    results.push(...(await Promise.all(slice)));
  }
  return results;
}

const randomBearer = () => `Bearer slk_${randomBytes(32).toString('base64url')}`;

/**
 * Each describe has a Redis of its own: the counters are shared through Redis for a minute, so
 * another file's requests from 127.0.0.1 must not spend these budgets (nor these theirs).
 */
describe('rate limits (RATE_LIMIT_PER_MINUTE=5): per customer, whatever the spelling', () => {
  let redis: RedisServer;
  let api: TestApp;

  beforeAll(async () => {
    redis = await RedisServer.start();
    api = await TestApp.start({ RATE_LIMIT_PER_MINUTE: '5', REDIS_URL: redis.url });
  });

  afterAll(async () => {
    await api.close();
    await redis.stop();
  });

  it('answers 429 problem+json with Retry-After past the limit; a new spelling opens no new budget', async () => {
    const alice = await registerCustomer(api);
    const bob = await registerCustomer(api);
    const spellings = [
      `Bearer ${alice.token}`,
      `bearer ${alice.token}`,
      `BEARER   ${alice.token}`,
      `Bearer ${alice.token}`,
      `bEaReR ${alice.token}`,
      `Bearer  ${alice.token}`,
    ];
    const statuses: number[] = [];
    let limited;
    for (const authorization of spellings) {
      const response = await api.get('/bookings', { headers: { authorization } });
      statuses.push(response.status);
      limited = response;
    }
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
    expect(limited!.headers['content-type']).toContain('application/problem+json');
    expect(limited!.body).toMatchObject({ status: 429, code: 'REQUEST.RATE_LIMITED' });
    expect(Number(limited!.headers['retry-after'])).toBeGreaterThan(0);
    expect(Number(limited!.headers['retry-after'])).toBeLessThanOrEqual(60);

    // Another customer has its own budget; health and metrics are never limited.
    expect((await api.get('/bookings', { token: bob.token })).status).toBe(200);
    for (let i = 0; i < 10; i += 1) expect((await api.get('/health/live')).status).toBe(200);
  });
});

describe('rate limits per client address: anonymous calls and failed authentications', () => {
  const LIMIT = 100;
  let redis: RedisServer;
  let proxy: PgCountingProxy;
  let apis: TestApp[];
  const clients: Client[] = [];

  beforeAll(async () => {
    redis = await RedisServer.start();
    const url = new URL(testDatabaseUrl());
    proxy = await PgCountingProxy.start(url.hostname, Number(url.port || 5432), {
      logStatements: true,
    });
    const env = {
      RATE_LIMIT_PER_MINUTE: String(LIMIT),
      REDIS_URL: redis.url,
      DATABASE_URL: proxy.urlFor(testDatabaseUrl()),
    };
    apis = [await TestApp.start(env), await TestApp.start(env)];
  });

  afterAll(async () => {
    await Promise.all(clients.map((client) => client.close()));
    await Promise.all(apis.map((api) => api.close()));
    await proxy.stop();
    await redis.stop();
  });

  function client(address: string): Client {
    const made = new Client(address);
    clients.push(made);
    return made;
  }

  const tokenLookups = () =>
    proxy.statementLog().filter((sql) => /FROM customers WHERE token_hash/.test(sql)).length;

  it('1,000 random bearer tokens from one address over 2 instances: 429 past the limit, few look-ups, a real customer on that address still served', async () => {
    const attacker = client('127.0.0.11');
    // A real customer behind the same address (a NAT): registered there, known to both instances.
    const registered = await attacker.register(apis[0]);
    expect(registered.status).toBe(201);
    const real = `Bearer ${registered.body.token}`;
    const lookupsBefore = tokenLookups();

    const answers = await waves(1000, 100, (i) =>
      attacker.send(apis[i % 2], 'GET', '/bookings', { authorization: randomBearer() }),
    );

    const statuses = tally(answers.map((a) => a.status));
    // The registration was the address's first anonymous call: LIMIT - 1 failures, then 429s.
    expect(statuses).toEqual({ 401: LIMIT - 1, 429: 1000 - (LIMIT - 1) });
    const refused = answers.find((a) => a.status === 429)!;
    expect(refused.body.code).toBe('REQUEST.RATE_LIMITED');
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    // Past its budget the address gets no token looked up.
    const lookups = tokenLookups() - lookupsBefore;
    console.log(`random tokens: ${JSON.stringify(statuses)}, ${lookups} token look-ups`);
    expect(lookups).toBeLessThanOrEqual(LIMIT);

    for (const api of apis) {
      const mine = await attacker.send(api, 'GET', '/bookings', { authorization: real });
      expect(mine.status).toBe(200);
    }
    // Another address is not affected.
    const other = client('127.0.0.12');
    expect((await other.send(apis[1], 'GET', '/events')).status).toBe(200);
    expect(
      (await other.send(apis[0], 'GET', '/bookings', { authorization: randomBearer() })).status,
    ).toBe(401);
  });

  it('anonymous reads and malformed headers share the address budget across instances', async () => {
    const crawler = client('127.0.0.13');
    const answers = await waves(300, 50, (i) =>
      crawler.send(apis[i % 2], 'GET', i % 3 === 0 ? '/events' : '/bookings', {
        authorization: i % 3 === 2 ? 'Basic Zm9vOmJhcg==' : undefined,
      }),
    );
    const statuses = tally(answers.map((a) => a.status));
    expect(statuses[429]).toBe(300 - LIMIT);
    expect((statuses[200] ?? 0) + (statuses[401] ?? 0)).toBe(LIMIT);
  });

  it('with Redis down each instance counts alone: limited per instance, never unlimited', async () => {
    const prober = client('127.0.0.14');
    await redis.kill();
    try {
      const answers = await waves(600, 50, (i) =>
        prober.send(apis[i % 2], 'GET', '/bookings', { authorization: randomBearer() }),
      );
      const statuses = tally(answers.map((a) => a.status));
      console.log(`Redis down: ${JSON.stringify(statuses)}`);
      expect(statuses[401]).toBe(2 * LIMIT);
      expect(statuses[429]).toBe(600 - 2 * LIMIT);
    } finally {
      await redis.restart();
    }
  });
});

describe('REGISTRATIONS_PER_IP_PER_HOUR', () => {
  let redis: RedisServer;
  let apis: TestApp[];
  const clients: Client[] = [];

  beforeAll(async () => {
    redis = await RedisServer.start();
    const env = { REGISTRATIONS_PER_IP_PER_HOUR: '3', REDIS_URL: redis.url };
    apis = [await TestApp.start(env), await TestApp.start(env)];
  });

  afterAll(async () => {
    await Promise.all(clients.map((client) => client.close()));
    await Promise.all(apis.map((api) => api.close()));
    await redis.stop();
  });

  it('a fourth registration from one address within the hour is 429, counted across instances', async () => {
    const scripted = new Client('127.0.0.21');
    const other = new Client('127.0.0.22');
    clients.push(scripted, other);
    const statuses: number[] = [];
    let refused;
    for (let i = 0; i < 5; i += 1) {
      const response = await scripted.register(apis[i % 2]);
      statuses.push(response.status);
      if (response.status === 429) refused = response;
    }
    expect(statuses).toEqual([201, 201, 201, 429, 429]);
    expect(refused!.body).toMatchObject({ status: 429, code: 'REQUEST.RATE_LIMITED' });
    expect(refused!.body.detail).toMatch(/3 registrations an hour/);
    const retryAfter = Number(refused!.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(3000);
    expect(retryAfter).toBeLessThanOrEqual(3600);
    // Another address registers as usual.
    expect((await other.register(apis[1])).status).toBe(201);
  });
});

describe('TRUST_PROXY: behind a proxy, the client it forwards for', () => {
  let redis: RedisServer;
  let api: TestApp;
  const proxy = new Client('127.0.0.31');
  const stranger = new Client('127.0.0.32');

  beforeAll(async () => {
    redis = await RedisServer.start();
    api = await TestApp.start({
      RATE_LIMIT_PER_MINUTE: '3',
      REDIS_URL: redis.url,
      TRUST_PROXY: '127.0.0.31',
    });
  });

  afterAll(async () => {
    await Promise.all([proxy.close(), stranger.close()]);
    await api.close();
    await redis.stop();
  });

  it('counts each forwarded client apart, and believes the header from the proxy only', async () => {
    const statuses = async (client: Client, forwardedFor: string) => {
      const answers = [];
      for (let i = 0; i < 4; i += 1) {
        answers.push((await client.send(api, 'GET', '/events', { forwardedFor })).status);
      }
      return answers;
    };
    expect(await statuses(proxy, '198.51.100.1')).toEqual([200, 200, 200, 429]);
    expect(await statuses(proxy, '198.51.100.2')).toEqual([200, 200, 200, 429]);
    // Anyone else writing the header is counted as itself, whatever it claims.
    const claims = [];
    for (let i = 0; i < 4; i += 1) {
      const forwardedFor = `203.0.113.${i}`;
      claims.push((await stranger.send(api, 'GET', '/events', { forwardedFor })).status);
    }
    expect(claims).toEqual([200, 200, 200, 429]);
  });
});
