import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { signWebhook } from '../../apps/api/src/common/http/webhook-signature';

/**
 * Request generators for the fuzz test, derived from the served OpenAPI document: every operation,
 * its path, query and header parameters, its security and its request-body schema. Each generated
 * request knows what it must get:
 *
 * - `rejected`: it carries at least one defect the API must refuse (bad or missing token, wrong
 *   role, malformed or unknown or someone else's id, bad query, bad Idempotency-Key, a body that
 *   breaks its schema or cannot be done). Must be a 4xx problem and change nothing.
 * - `ok`: valid and changes nothing (reads, the repeated release of a released booking, a signed
 *   gateway event that changes nothing). Must be a 2xx.
 * - `any`: valid, or borderline (odd Unicode in a name): may change state, may be refused, never 5xx.
 */

export interface OpenApiSchema {
  $ref?: string;
  type?: string;
  format?: string;
  pattern?: string;
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  default?: unknown;
  items?: OpenApiSchema;
  properties?: Record<string, OpenApiSchema>;
  required?: string[];
}

export interface OpenApiParameter {
  name: string;
  in: 'path' | 'query' | 'header';
  required?: boolean;
  schema?: OpenApiSchema;
}

interface OpenApiOperation {
  parameters?: OpenApiParameter[];
  security?: Record<string, unknown>[];
  requestBody?: { content?: Record<string, { schema?: OpenApiSchema }> };
  responses: Record<string, unknown>;
}

export interface OpenApiDocument {
  paths: Record<string, Record<string, OpenApiOperation>>;
  components: { schemas: Record<string, OpenApiSchema> };
}

/** One operation as the fuzzer sees it. */
export interface Operation {
  method: string;
  template: string;
  /** `GET /bookings/{id}` */
  name: string;
  auth: 'none' | 'customer' | 'admin';
  pathParams: OpenApiParameter[];
  queryParams: OpenApiParameter[];
  headerParams: OpenApiParameter[];
  body: OpenApiSchema | null;
  /** The $ref name of the body schema, for the hints. */
  bodyName: string | null;
}

export type Expectation = 'rejected' | 'ok' | 'any';

export interface FuzzRequest {
  op: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
  expect: Expectation;
  /** Why it is expected so: the defects, or "valid". */
  why: string[];
}

/** A copy-pasteable description of a request (fast-check prints counterexamples with it). */
export function describeRequest(r: Omit<FuzzRequest, 'op'>): string {
  const shorten = (s: string) =>
    s.length > 400 ? `${s.slice(0, 300)}…(${s.length} chars)…${s.slice(-60)}` : s;
  const headers = Object.entries(r.headers)
    .map(([k, v]) => ` -H ${JSON.stringify(`${k}: ${shorten(v)}`)}`)
    .join('');
  const body = r.body === undefined ? '' : ` --data-raw ${JSON.stringify(shorten(r.body))}`;
  return `[${r.expect}: ${r.why.join('; ')}] ${r.method} ${shorten(r.path)}${headers}${body}`;
}

function withToString(r: FuzzRequest): FuzzRequest {
  Object.defineProperty(r, fc.toStringMethod, { value: () => describeRequest(r) });
  return r;
}

/** The operations of the document, $refs resolved, admin routes told apart by their 403. */
export function operationsOf(doc: OpenApiDocument): Operation[] {
  const ops: Operation[] = [];
  for (const [template, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const params = op.parameters ?? [];
      const schema = op.requestBody?.content?.['application/json']?.schema ?? null;
      const secured = (op.security ?? []).length > 0;
      ops.push({
        method: method.toUpperCase(),
        template,
        name: `${method.toUpperCase()} ${template}`,
        auth: !secured ? 'none' : '403' in op.responses ? 'admin' : 'customer',
        pathParams: params.filter((p) => p.in === 'path'),
        queryParams: params.filter((p) => p.in === 'query'),
        // The same header documented twice (by the decorator and by the guard) counts once.
        headerParams: params
          .filter((p) => p.in === 'header')
          .filter(
            (p, i, all) =>
              all.findIndex((q) => q.name.toLowerCase() === p.name.toLowerCase()) === i,
          ),
        body: schema ? resolve(doc, schema) : null,
        bodyName: schema?.$ref ? schema.$ref.split('/').pop()! : null,
      });
    }
  }
  return ops;
}

function resolve(doc: OpenApiDocument, schema: OpenApiSchema): OpenApiSchema {
  if (schema.$ref) {
    const resolved = resolve(doc, doc.components.schemas[schema.$ref.split('/').pop()!]);
    return { ...resolved, format: resolved.format, $ref: schema.$ref };
  }
  const out: OpenApiSchema = { ...schema };
  if (schema.items) out.items = resolve(doc, schema.items);
  if (schema.properties) {
    out.properties = Object.fromEntries(
      Object.entries(schema.properties).map(([k, v]) => [k, resolve(doc, v)]),
    );
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The world the requests are aimed at: who exists, what they own.

export type Who = 'alice' | 'bob';

export interface Resource {
  id: string;
  owner: Who | null;
  /** e.g. a booking's status, an outbox message's status. */
  tag: string;
}

export interface World {
  adminToken: string;
  webhookSecret: string;
  tokens: Record<Who, string>;
  emails: Record<Who, string>;
  /** By the resource kind a path parameter names: event, booking, notification, outbox, endpoint. */
  resources: Record<string, Resource[]>;
  /** The event holds are aimed at, its labels, and which are free. */
  eventId: string;
  labels: string[];
  freeLabels: string[];
  heldLabels: string[];
  maxSeatsPerBooking: number;
}

/** The kind of resource a path parameter names, from the path segment before it. */
function resourceKind(template: string): string {
  const segments = template.split('/');
  const at = segments.findIndex((s) => s.startsWith('{'));
  const before = segments[at - 1] ?? '';
  return (
    {
      events: 'event',
      bookings: 'booking',
      notifications: 'notification',
      outbox: 'outbox',
      'webhook-endpoints': 'endpoint',
    }[before] ?? before
  );
}

// ---------------------------------------------------------------------------------------------
// Odd values

/** Strings that are never acceptable anywhere (the body parser refuses them). */
export const POISON_STRINGS = ['\ud800', 'a\udc00b', 'nul\u0000x', '\u0000', '\udfff\ud800'];

/** Odd but well-formed strings: fine in a name, wrong in an id, a label, a code. */
export const ODD_STRINGS = [
  '\u202eevil\u202c.exe',
  '\u200f\u200eName',
  '\u200b',
  'Z\u0351\u0352\u0353\u0354',
  '\ud83c\udfad Opera \ud834\udd1e',
  '\ud83d\udc69\u200d\ud83d\udc69\u200d\ud83d\udc67',
  '\u0007\u001b[31m\u0085',
  '\ufeffName',
  '\uff21\uff11',
  "1' OR '1'='1",
  '<script>alert(1)</script>',
  '../../etc/passwd',
  '%00',
  '${jndi:ldap://x}',
  ' ',
  '\t\n',
];

const oddString = fc.oneof(
  fc.constantFrom(...ODD_STRINGS),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 12 }),
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 }),
);

const longString = fc
  .tuple(
    fc.constantFrom('x', '\u00e9', '\ud83d\ude00', 'A1'),
    fc.integer({ min: 300, max: 20_000 }),
  )
  .map(([unit, n]) => unit.repeat(n));

/** Values of the wrong JSON type for a schema type. */
function wrongTypeValues(type: string | undefined): unknown[] {
  const all: Record<string, unknown[]> = {
    string: [42, -1, 1.5, true, false, null, [], ['x'], {}, { a: 1 }],
    number: ['5', '', 'abc', '1e3', true, null, [], [1], {}, { n: 1 }],
    integer: ['5', '', true, null, [], {}],
    boolean: ['true', 1, 0, null, [], {}],
    array: ['x', 5, true, null, {}, { 0: 'A1' }],
    object: ['x', 5, true, null, [], [{}]],
  };
  return all[type ?? 'object'] ?? all.object;
}

/** Numbers a number property must refuse: out of range, not an integer, absurd. */
function badNumbers(schema: OpenApiSchema): number[] {
  const values = [1.5, -0.5, 1e21, Number.MAX_SAFE_INTEGER + 2, -1e12, 2 ** 31, 2 ** 63];
  if (schema.minimum !== undefined) values.push(schema.minimum - 1, -1, -(2 ** 53));
  if (schema.maximum !== undefined) values.push(schema.maximum + 1, schema.maximum * 10);
  return values.filter(
    (v) =>
      !Number.isInteger(v) ||
      (schema.minimum !== undefined && v < schema.minimum) ||
      (schema.maximum !== undefined && v > schema.maximum),
  );
}

// ---------------------------------------------------------------------------------------------
// Bodies

interface BodyPart {
  raw?: string;
  contentType?: string;
  defects: string[];
  /** Valid as far as the generator knows, but borderline (odd Unicode): any answer but a 5xx. */
  borderline: boolean;
}

type Valued = { value: unknown; defects: string[]; borderline: boolean };

/** Placeholder for a number JSON cannot express as a JS number (1e400 → Infinity). */
const HUGE_LITERAL = '__FUZZ_1E400__';

function serialize(value: unknown): string {
  return JSON.stringify(value).replaceAll(`"${HUGE_LITERAL}"`, '1e400');
}

/**
 * Route knowledge the schema cannot carry: which values are valid in this world (an existing event,
 * free seat labels, a real currency) and which well-typed values the API must still refuse.
 */
function hints(world: World) {
  const visible = fc
    .string({ minLength: 1, maxLength: 40 })
    .filter((s) => /[A-Za-z0-9]/.test(s) && s.trim() === s);
  const distinct = (n: number) =>
    fc.shuffledSubarray(world.freeLabels, { minLength: 1, maxLength: n });
  const valid: Record<string, fc.Arbitrary<unknown>> = {
    'CreateCustomerDto.email': fc.uuid().map((u) => `fuzz-${u}@example.test`),
    'CreateCustomerDto.name': visible,
    'CreateEventDto.name': visible,
    'CreateEventDto.venue': visible,
    'CreateEventDto.startsAt': fc.constantFrom(
      '2027-06-01T19:30:00Z',
      '2027-12-31T23:59:59+01:00',
      '2028-02-29T00:00:00.000-05:00',
    ),
    'CreateEventDto.currency': fc.constantFrom('EUR', 'USD', 'GBP', 'JPY'),
    'CreateEventDto.sections': fc
      .uniqueArray(fc.constantFrom('Floor', 'Balcony', 'Box', 'Stalls', 'Circle'), {
        minLength: 1,
        maxLength: 3,
      })
      .chain((names) =>
        fc.tuple(
          ...names.map((name) =>
            fc.oneof(
              fc.record({
                name: fc.constant(name),
                rows: fc.integer({ min: 1, max: 3 }),
                seatsPerRow: fc.integer({ min: 1, max: 5 }),
                priceCents: fc.integer({ min: 0, max: 100_000_000 }),
              }),
              fc.record({
                name: fc.constant(name),
                capacity: fc.integer({ min: 1, max: 20 }),
                priceCents: fc.integer({ min: 0, max: 100_000_000 }),
              }),
            ),
          ),
        ),
      ),
    'CreateBookingDto.eventId': fc.constant(world.eventId),
    'CreateBookingDto.seatIds': distinct(3),
    // Named seats, or the best available quantity: never both, never neither.
    CreateBookingDto: fc.oneof(
      fc.record({ eventId: fc.constant(world.eventId), seatIds: distinct(3) }),
      fc.record(
        {
          eventId: fc.constant(world.eventId),
          quantity: fc.integer({ min: 1, max: 3 }),
          together: fc.boolean(),
        },
        { requiredKeys: ['eventId', 'quantity'] },
      ),
    ),
    'CreatePaymentDto.paymentMethod': fc.constantFrom(
      'pm_card_visa',
      'pm_card_declined',
      'pm_card_insufficient_funds',
    ),
    'CreateWebhookEndpointDto.url': fc.constantFrom(
      'https://example.com/hooks/seatlock',
      'http://example.org:8080/h?x=1',
    ),
    'CreateWebhookEndpointDto.events': fc.oneof(
      fc.constant(['*']),
      fc.subarray(['booking.held', 'booking.confirmed', 'payment.refunded'], { minLength: 1 }),
    ),
  };
  /** Well-typed values the API must refuse (4xx), per property. */
  const refused: Record<string, fc.Arbitrary<unknown>> = {
    'CreateCustomerDto.email': fc.oneof(
      fc.constantFrom('not-an-email', '@', 'a@', '@b.c', 'a b@c.d', ''),
      fc.constant(world.emails.alice),
      fc.constant(`  ${world.emails.bob.toUpperCase()} `),
      fc.constant(`${'x'.repeat(250)}@example.test`),
    ),
    'CreateCustomerDto.name': fc.constantFrom('', '   ', '\u200b\u200b', 'n'.repeat(201)),
    'CreateEventDto.name': fc.constantFrom('', '  ', 'n'.repeat(201)),
    'CreateEventDto.venue': fc.constantFrom('', 'v'.repeat(201)),
    'CreateEventDto.startsAt': fc.constantFrom(
      'tomorrow',
      '2027-02-30T19:30:00Z',
      '2027-06-01T19:30:00',
      '2027-W01-1',
      '2027',
      '2027-06-01T25:00:00Z',
      '',
    ),
    'CreateEventDto.currency': fc.constantFrom('eur', 'EURO', 'XYZ', 'E1R', '', '\u20ac'),
    'CreateEventDto.sections': fc.oneof(
      fc.constant([
        { name: 'A', rows: 101, seatsPerRow: 100, priceCents: 1 },
      ]) /* over 10,000 seats */,
      fc.constant([
        { name: 'A', rows: 1, seatsPerRow: 1, priceCents: 1 },
        { name: 'A', rows: 1, seatsPerRow: 1, priceCents: 1 },
      ]) /* duplicate names */,
      fc.constant(
        Array.from({ length: 101 }, (_, i) => ({
          name: `S${i}`,
          rows: 1,
          seatsPerRow: 1,
          priceCents: 1,
        })),
      ),
    ),
    'CreateSectionDto.name': fc.constantFrom('', ' ', 's'.repeat(101)),
    'CreateBookingDto.eventId': fc.oneof(
      fc.uuid(),
      fc.constantFrom('event-1', '', world.eventId + 'x', `{${world.eventId}}`),
    ),
    'CreateBookingDto.seatIds': fc.oneof(
      // unknown labels (422), with free ones beside them
      fc
        .tuple(
          distinct(2),
          fc.constantFrom('Z99', 'a1', ' A1', 'A1 ', 'A0', 'A01', '\uff21\uff11', 'A\u200b1'),
        )
        .map(([free, bad]) => [...free, bad]),
      // duplicates (422)
      distinct(2).map((free) => [...free, free[0]]),
      // more than the per-booking cap (422)
      fc.constant(world.labels.slice(0, world.maxSeatsPerBooking + 1)),
      // a seat someone holds (409)
      fc
        .tuple(distinct(2), fc.constantFrom(...world.heldLabels))
        .map(([free, held]) => [held, ...free]),
      // empty labels, over-long labels, too many labels (400)
      fc.constantFrom(
        [],
        [''],
        ['A'.repeat(17)],
        Array.from({ length: 1001 }, (_, i) => `Q${i}`),
      ),
    ),
    'CreatePaymentDto.paymentMethod': fc.constantFrom(
      '4242 4242 4242 4242',
      'pm_',
      'pm card',
      'PM_card_visa',
      'pm_card_visa\n',
      `pm_${'x'.repeat(98)}`,
      '',
    ),
    'CreateWebhookEndpointDto.url': fc.constantFrom(
      '',
      'ftp://example.com/x',
      'javascript:alert(1)',
      'not a url',
      'http://127.0.0.1/hook',
      'http://10.1.2.3/hook',
      'http://[::1]/hook',
      'http://169.254.169.254/latest',
      'http://localhost/hook',
      'https://user:pass@example.com/hook',
      `https://example.com/${'p'.repeat(2040)}`,
    ),
    'CreateWebhookEndpointDto.events': fc.constantFrom(
      [],
      ['booking.bogus'],
      ['*', 'nope'],
      Array.from({ length: 21 }, () => 'booking.held'),
      ['x'.repeat(65)],
    ),
  };
  return { valid, refused };
}

type Hints = ReturnType<typeof hints>;

/** A valid value for `schema` (at `key` = `Schema.property`), from the hints or the schema. */
function validValue(schema: OpenApiSchema, key: string, h: Hints): fc.Arbitrary<unknown> {
  if (h.valid[key]) return h.valid[key];
  if (schema.enum) return fc.constantFrom(...schema.enum);
  switch (schema.type) {
    case 'number':
    case 'integer':
      return fc.integer({ min: schema.minimum ?? 0, max: Math.min(schema.maximum ?? 1000, 1000) });
    case 'boolean':
      return fc.boolean();
    case 'array':
      return fc.array(validValue(schema.items ?? {}, `${key}[]`, h), {
        minLength: Math.max(schema.minItems ?? 0, 1),
        maxLength: Math.min(schema.maxItems ?? 3, 3),
      });
    case 'object':
      return validObject(schema, h);
    default:
      if (schema.format === 'uuid') return fc.uuid();
      return fc.string({ minLength: schema.minLength ?? 1, maxLength: 20 });
  }
}

function schemaName(schema: OpenApiSchema): string {
  return schema.$ref?.split('/').pop() ?? 'Body';
}

function validObject(schema: OpenApiSchema, h: Hints): fc.Arbitrary<Record<string, unknown>> {
  const name = schemaName(schema);
  // A body whose valid shapes are alternatives the schema cannot say (one field or another).
  if (h.valid[name]) return h.valid[name] as fc.Arbitrary<Record<string, unknown>>;
  const props = schema.properties ?? {};
  const required = new Set(schema.required ?? []);
  const entries = Object.entries(props).map(
    ([prop, s]) => [prop, validValue(s, `${name}.${prop}`, h)] as const,
  );
  return fc.record(Object.fromEntries(entries), {
    requiredKeys: Object.keys(props).filter((p) => required.has(p)),
  }) as fc.Arbitrary<Record<string, unknown>>;
}

/** A value for `schema` that the API must refuse, and why. */
function refusedValue(
  schema: OpenApiSchema,
  key: string,
  h: Hints,
  optional = false,
): fc.Arbitrary<Valued> {
  const tag = (label: string) => (value: unknown) => ({
    value,
    defects: [`${key} ${label}`],
    borderline: false,
  });
  const options: fc.Arbitrary<Valued>[] = [
    // null is "left out" for an optional property (class-validator's @IsOptional).
    fc
      .constantFrom(...wrongTypeValues(schema.type).filter((v) => !(optional && v === null)))
      .map(tag('of the wrong type')),
    fc.constantFrom(...POISON_STRINGS).map(tag('with NUL or a lone surrogate')),
  ];
  if (h.refused[key]) options.push(h.refused[key].map(tag('refused by the API')));
  if (schema.type === 'number' || schema.type === 'integer') {
    options.push(fc.constantFrom(...badNumbers(schema)).map(tag('out of range')));
    options.push(fc.constant(HUGE_LITERAL).map(tag('1e400')));
  }
  if (schema.type === 'string' || (!schema.type && !schema.properties)) {
    if (schema.maxLength !== undefined) {
      options.push(
        fc
          .constantFrom(schema.maxLength + 1, schema.maxLength * 40 + 7)
          .map((n) => 'y'.repeat(n))
          .map(tag('too long')),
      );
    }
    if (schema.format === 'uuid' || schema.pattern || schema.enum) {
      options.push(oddString.map(tag('an odd string where a code or id belongs')));
    }
  }
  if (schema.type === 'array') {
    const items = schema.items ?? {};
    if (schema.minItems) options.push(fc.constant([]).map(tag('empty')));
    if (schema.maxItems !== undefined) {
      options.push(
        validValue(items, `${key}[]`, h)
          .map((item) => Array.from({ length: (schema.maxItems ?? 0) + 1 }, () => item))
          .map(tag('over maxItems')),
      );
    }
    options.push(
      fc
        .tuple(
          validValue(schema, key, h) as fc.Arbitrary<unknown[]>,
          refusedValue(items, `${key}[]`, h),
        )
        .map(([list, bad]) => ({
          value: [...list, bad.value],
          defects: bad.defects,
          borderline: false,
        })),
    );
  }
  if (schema.type === 'object' || schema.properties) options.push(refusedObject(schema, h));
  return fc.oneof(...options);
}

const EXTRA_KEYS = ['isAdmin', 'id', 'customerId', 'status', 'amountCents', '__proto__', 'x'];

/** An object for `schema` with at least one defect the API must refuse. */
function refusedObject(schema: OpenApiSchema, h: Hints): fc.Arbitrary<Valued> {
  const name = schemaName(schema);
  const props = Object.entries(schema.properties ?? {});
  const required = schema.required ?? [];
  const base = validObject(schema, h);
  const options: fc.Arbitrary<Valued>[] = [
    fc
      .tuple(base, fc.constantFrom(...EXTRA_KEYS), fc.jsonValue({ maxDepth: 2 }))
      .map(([obj, extra, value]) => ({
        value: { ...obj, [extra]: value },
        defects: [`unknown field ${name}.${extra}`],
        borderline: false,
      })),
  ];
  if (required.length > 0) {
    options.push(
      fc.tuple(base, fc.subarray(required, { minLength: 1 })).map(([obj, drop]) => ({
        value: Object.fromEntries(Object.entries(obj).filter(([k]) => !drop.includes(k))),
        defects: [`missing ${drop.map((d) => `${name}.${d}`).join(', ')}`],
        borderline: false,
      })),
    );
  }
  for (const [prop, propSchema] of props) {
    options.push(
      fc
        .tuple(base, refusedValue(propSchema, `${name}.${prop}`, h, !required.includes(prop)))
        .map(([obj, bad]) => ({
          value: { ...obj, [prop]: bad.value },
          defects: bad.defects,
          borderline: false,
        })),
    );
  }
  return fc.oneof(...options);
}

/** A valid object whose strings carry odd (but well-formed) Unicode: accepted or refused. */
function borderlineObject(schema: OpenApiSchema, h: Hints): fc.Arbitrary<Valued> {
  const stringProps = Object.entries(schema.properties ?? {})
    .filter(([, s]) => s.type === 'string')
    .map(([p]) => p);
  if (stringProps.length === 0) return validObject(schema, h).map(valid);
  return fc
    .tuple(validObject(schema, h), fc.constantFrom(...stringProps), oddString, fc.boolean())
    .map(([obj, prop, odd, append]) => ({
      value: { ...obj, [prop]: append && typeof obj[prop] === 'string' ? obj[prop] + odd : odd },
      defects: [],
      borderline: true,
    }));
}

const valid = (value: unknown): Valued => ({ value, defects: [], borderline: false });

/** Raw bodies that are not a JSON object, or not JSON at all, or not sent as JSON. */
const NOT_JSON: [raw: string, contentType: string | undefined, defect: string][] = [
  ['{"a":', 'application/json', 'truncated JSON'],
  ['{"a":1,}', 'application/json', 'trailing comma'],
  ["{'a':1}", 'application/json', 'single quotes'],
  ['{"a":NaN}', 'application/json', 'NaN literal'],
  ['\u0000', 'application/json', 'a NUL byte'],
  ['\ufeff{}', 'application/json', 'a BOM before the JSON'],
  ['{"a":"\\ud800"}', 'application/json', 'a lone surrogate escaped in a field'],
  ['{"\\ud800":1}', 'application/json', 'a lone surrogate in a field name'],
  ['{"a":"\\u0000"}', 'application/json', 'a NUL escaped in a field'],
  ['[]', 'application/json', 'an array body'],
  ['"text"', 'application/json', 'a string body'],
  ['42', 'application/json', 'a number body'],
  ['true', 'application/json', 'a boolean body'],
  ['null', 'application/json', 'a null body'],
  [
    '{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{}}}}}}}}}}}}}}}}}',
    'application/json',
    'nested 17 deep',
  ],
  ['{}', 'text/plain', 'text/plain'],
  ['<a/>', 'application/xml', 'XML'],
  ['a=1&b=2', 'application/x-www-form-urlencoded', 'a form body'],
  ['--x\r\n\r\n--x--', 'multipart/form-data; boundary=x', 'multipart'],
  ['{}', undefined, 'no content-type'],
  ['{}', 'application/jsonx', 'an unknown content-type'],
];

function bodyFor(op: Operation, world: World, bias: number): fc.Arbitrary<BodyPart> {
  const h = hints(world);
  const broken = fc.constantFrom(...NOT_JSON).map(([raw, contentType, defect]) => ({
    raw,
    contentType,
    defects: [defect],
    borderline: false,
  }));
  if (!op.body && op.method === 'GET')
    return fc.constant<BodyPart>({ defects: [], borderline: false });
  if (!op.body) {
    // No body expected: none, or one that must be refused.
    return fc.oneof(
      { weight: 6, arbitrary: fc.constant<BodyPart>({ defects: [], borderline: false }) },
      { weight: 1, arbitrary: broken.filter((b) => b.contentType !== 'application/json') },
    );
  }
  const asJson = (v: Valued): BodyPart => ({
    raw: serialize(v.value),
    contentType: 'application/json',
    defects: v.defects,
    borderline: v.borderline,
  });
  const wholeBody = fc.oneof(
    broken,
    fc.constant<BodyPart>({ defects: ['no body at all'], borderline: false }),
    fc.constant<BodyPart>({
      raw: '',
      contentType: 'application/json',
      defects: ['an empty body'],
      borderline: false,
    }),
    fc.constant<BodyPart>({
      raw: 'x'.repeat(300 * 1024),
      contentType: 'application/json',
      defects: ['a 300 KB body'],
      borderline: false,
    }),
  );
  if (!op.body.properties) return fc.oneof(wholeBody); // the gateway webhook: handled by its caller
  return fc.oneof(
    { weight: bias * 2, arbitrary: validObject(op.body, h).map(valid).map(asJson) },
    { weight: bias, arbitrary: borderlineObject(op.body, h).map(asJson) },
    { weight: 10, arbitrary: refusedObject(op.body, h).map(asJson) },
    { weight: 3, arbitrary: wholeBody },
    {
      weight: 1,
      arbitrary: fc.tuple(validObject(op.body, h), longString).map(([obj, long]) =>
        asJson({
          value: { ...obj, padding: long },
          defects: ['unknown field padding (long)'],
          borderline: false,
        }),
      ),
    },
  );
}

// ---------------------------------------------------------------------------------------------
// Tokens, ids, queries, headers

interface AuthPart {
  header?: string;
  who: Who | 'admin' | null;
  defect?: string;
}

function authFor(op: Operation, world: World, bias: number): fc.Arbitrary<AuthPart> {
  const as = (who: Who | 'admin'): AuthPart => ({
    header: `Bearer ${who === 'admin' ? world.adminToken : world.tokens[who]}`,
    who,
  });
  const malformed = fc.oneof(
    fc.constant<AuthPart>({ who: null, defect: 'no Authorization' }),
    fc
      .constantFrom(
        'Basic YWxpY2U6c2VjcmV0',
        'Bearer',
        'Bearer ',
        'bearer',
        'Token abc',
        `Bearer ${world.tokens.alice} x`,
        `Bearer ${world.tokens.alice},Bearer ${world.tokens.bob}`,
        `Bearer ${'x'.repeat(513)}`,
        `Bearer ${world.tokens.alice.slice(0, -1)}`,
        `Bearer ${world.tokens.alice}\u00e9`,
        `Bearer \u00ff\u00fe`,
        `Bearer slk_${randomUUID()}`,
        'Bearer null',
        'Bearer undefined',
        `Bearer ${world.adminToken.toUpperCase()}`,
      )
      .map((header) => ({ header, who: null, defect: 'a malformed or unknown token' })),
    fc
      .string({ unit: 'binary-ascii', minLength: 1, maxLength: 60 })
      .filter((s) => /^[\x21-\x7e]+$/.test(s))
      .map((s) => ({ header: `Bearer ${s}`, who: null, defect: 'a random token' })),
  );
  if (op.auth === 'none') {
    // Public: any token (or none) changes nothing.
    return fc.oneof(
      fc.constant<AuthPart>({ who: null }),
      fc.constantFrom<Who | 'admin'>('alice', 'bob', 'admin').map(as),
      malformed.map((a) => ({ ...a, defect: undefined })),
    );
  }
  if (op.auth === 'admin') {
    return fc.oneof(
      { weight: bias, arbitrary: fc.constant(as('admin')) },
      {
        weight: 2,
        arbitrary: fc.constantFrom<Who>('alice', 'bob').map((who) => ({
          ...as(who),
          who: null,
          defect: `${who}'s customer token on an admin route`,
        })),
      },
      { weight: 2, arbitrary: malformed },
    );
  }
  return fc.oneof(
    { weight: bias, arbitrary: fc.constantFrom<Who>('alice', 'bob').map(as) },
    {
      weight: 1,
      arbitrary: fc.constant({
        ...as('admin'),
        who: null,
        defect: 'the admin token on a customer route',
      }),
    },
    { weight: 2, arbitrary: malformed },
  );
}

interface PathPart {
  path: string;
  defects: string[];
  /** The resources the path names, to decide ownership once the caller is known. */
  targets: Resource[];
}

const MALFORMED_IDS = [
  'not-a-uuid',
  '123',
  '%00',
  '%E0%A4%A',
  '%',
  // Not '..' nor '%2e%2e': the client resolves dot segments before sending.
  'null',
  'undefined',
  '00000000-0000-0000-0000-00000000000g',
  encodeURIComponent("1' OR '1'='1"),
  encodeURIComponent('\u202eevil'),
  encodeURIComponent('\ud83c\udfad'),
  '%ED%A0%80', // a lone surrogate, UTF-8 encoded
  'x'.repeat(150),
  '%20',
];

function idFor(
  kind: string,
  world: World,
  bias: number,
): fc.Arbitrary<{ id: string; defect?: string; target?: Resource }> {
  const known = world.resources[kind] ?? [];
  const otherKinds = Object.entries(world.resources)
    .filter(([k]) => k !== kind)
    .flatMap(([, list]) => list);
  const options: fc.WeightedArbitrary<{ id: string; defect?: string; target?: Resource }>[] = [
    { weight: 2, arbitrary: fc.uuid().map((id) => ({ id, defect: `an unknown ${kind} id` })) },
    {
      weight: 2,
      arbitrary: fc
        .constantFrom(...MALFORMED_IDS)
        .map((id) => ({ id, defect: `a malformed ${kind} id` })),
    },
    {
      weight: 1,
      arbitrary: oddString.map((s) => ({ id: encodeURIComponent(s), defect: `an odd ${kind} id` })),
    },
  ];
  if (known.length > 0) {
    options.push({
      weight: bias * 3,
      arbitrary: fc.constantFrom(...known).map((target) => ({ id: target.id, target })),
    });
    options.push({
      weight: 1,
      arbitrary: fc.constantFrom(...known).map((target) => ({
        id: `${target.id}x`,
        defect: `a ${kind} id with a trailing character`,
      })),
    });
  }
  if (otherKinds.length > 0) {
    options.push({
      weight: 1,
      arbitrary: fc
        .constantFrom(...otherKinds)
        .map((r) => ({ id: r.id, defect: `another kind's id as a ${kind} id` })),
    });
  }
  return fc.oneof(...options);
}

function pathFor(op: Operation, world: World, bias: number): fc.Arbitrary<PathPart> {
  if (op.pathParams.length === 0)
    return fc.constant({ path: op.template, defects: [], targets: [] });
  const kind = resourceKind(op.template);
  return fc.tuple(...op.pathParams.map(() => idFor(kind, world, bias))).map((ids) => {
    let path = op.template;
    op.pathParams.forEach((p, i) => (path = path.replace(`{${p.name}}`, ids[i].id)));
    return {
      path,
      defects: ids.flatMap((i) => (i.defect ? [i.defect] : [])),
      targets: ids.flatMap((i) => (i.target ? [i.target] : [])),
    };
  });
}

type QueryPart = { query: string; defects: string[] };

function queryFor(op: Operation, bias: number): fc.Arbitrary<QueryPart> {
  if (op.queryParams.length === 0) {
    return fc.oneof(
      { weight: 6, arbitrary: fc.constant<QueryPart>({ query: '', defects: [] }) },
      // Routes without query parameters ignore them.
      { weight: 1, arbitrary: fc.constant<QueryPart>({ query: '?x=1', defects: [] }) },
    );
  }
  const validParam = (p: OpenApiParameter): fc.Arbitrary<string | null> => {
    const s = p.schema ?? {};
    const value: fc.Arbitrary<string> = s.enum
      ? fc.constantFrom(...s.enum.map(String))
      : s.type === 'boolean'
        ? fc.constantFrom('true', 'false')
        : fc.integer({ min: s.minimum ?? 0, max: s.maximum ?? 100 }).map(String);
    // A parameter with a default may be left out, whatever `required` says.
    return p.required && s.default === undefined ? value : fc.option(value, { nil: null });
  };
  const badParam = (p: OpenApiParameter): fc.Arbitrary<string> => {
    const s = p.schema ?? {};
    // Not '' (Number('') is 0, a valid offset) nor '0x10' (Number('0x10') is 16).
    const bad: string[] = [
      'abc',
      '1.5',
      '-1e999',
      '%00',
      '1%202',
      encodeURIComponent('\ud83d\ude00'),
    ];
    if (s.type !== 'number' && s.type !== 'integer') bad.push('');
    if (s.type === 'number' || s.type === 'integer') {
      bad.push(...badNumbers(s).map((n) => String(n)), '9'.repeat(400));
    }
    if (s.type === 'boolean') bad.push('1', 'yes', 'TRUE');
    if (s.enum) bad.push('PENDING', 'all', 'dead,sent');
    return fc.constantFrom(...bad.filter((b) => !(s.enum ?? []).includes(b)));
  };
  const valid = fc
    .tuple(...op.queryParams.map(validParam))
    .map((values) =>
      op.queryParams.flatMap((p, i) => (values[i] === null ? [] : [`${p.name}=${values[i]}`])),
    );
  const invalid = fc.oneof(
    fc.tuple(valid, fc.constantFrom(...op.queryParams)).chain(([parts, p]) =>
      badParam(p).map((bad) => ({
        parts: [...parts.filter((x) => !x.startsWith(`${p.name}=`)), `${p.name}=${bad}`],
        defect: `query ${p.name}=${bad}`,
      })),
    ),
    fc.tuple(valid, fc.constantFrom(...op.queryParams)).map(([parts, p]) => ({
      parts: [...parts, `${p.name}=1`, `${p.name}=2`],
      defect: `query ${p.name} repeated`,
    })),
    fc
      .tuple(valid, fc.constantFrom('sort=name', 'limit[]=1', 'page=2', 'x'))
      .map(([parts, extra]) => ({ parts: [...parts, extra], defect: `unknown query ${extra}` })),
  );
  return fc.oneof(
    {
      weight: bias,
      arbitrary: valid.map((parts) => ({
        query: parts.length ? `?${parts.join('&')}` : '',
        defects: [],
      })),
    },
    {
      weight: 2,
      arbitrary: invalid.map(({ parts, defect }) => ({
        query: `?${parts.join('&')}`,
        defects: [defect],
      })),
    },
  );
}

/** The documented headers (Idempotency-Key): valid, missing, empty, huge, non-ASCII. */
function headersFor(
  op: Operation,
  bias: number,
): fc.Arbitrary<{ headers: Record<string, string>; defects: string[] }> {
  const idem = op.headerParams.find((p) => p.name.toLowerCase() === 'idempotency-key');
  if (!idem) return fc.constant({ headers: {}, defects: [] });
  const max = idem.schema?.maxLength ?? 255;
  const validKey = fc.oneof(
    fc.uuid(),
    fc
      .string({ unit: 'binary-ascii', minLength: 1, maxLength: max })
      .filter((s) => /^[\x21-\x7e]+$/.test(s)),
    fc.constant('k'.repeat(max)),
  );
  const badKey: fc.Arbitrary<[string | null, string]> = fc.oneof(
    fc.constant<[string | null, string]>([null, 'no Idempotency-Key']),
    fc.constant<[string | null, string]>(['', 'an empty Idempotency-Key']),
    fc
      .constantFrom(max + 1, 4000, 12_000)
      .map((n): [string, string] => ['k'.repeat(n), `a ${n}-character Idempotency-Key`]),
    fc
      .constantFrom(
        'cl\u00e9',
        '\u00ff\u00fe',
        'a b',
        Buffer.from('\u00fc\ud83d\ude00', 'utf8').toString('latin1'),
        'x\u0080y',
      )
      .map((k): [string, string] => [k, 'a non-ASCII or non-visible Idempotency-Key']),
  );
  return fc.oneof(
    {
      weight: bias,
      arbitrary: validKey.map((k) => ({ headers: { 'idempotency-key': k }, defects: [] })),
    },
    {
      weight: 2,
      arbitrary: badKey.map(([k, defect]) => ({
        headers: k === null ? ({} as Record<string, string>) : { 'idempotency-key': k },
        defects: [defect],
      })),
    },
  );
}

/** Headers no route documents: must not matter. */
const oddHeaders: fc.Arbitrary<Record<string, string>> = fc.oneof(
  { weight: 8, arbitrary: fc.constant({}) },
  {
    weight: 1,
    arbitrary: fc.constantFrom<Record<string, string>>(
      { 'x-request-id': 'x'.repeat(300) },
      { 'x-request-id': '\u00e9\u00e8' },
      { 'x-request-id': '../../etc' },
      { accept: 'application/xml' },
      { accept: '*/*;q=0' },
      { 'accept-language': 'ar-SA' },
      { 'x-forwarded-for': '10.0.0.1, ::1' },
      { 'user-agent': 'u'.repeat(4000) },
      { 'idempotency-key': 'k'.repeat(300) },
      { 'gateway-signature': 't=1,v1=00' },
    ),
  },
);

// ---------------------------------------------------------------------------------------------
// Whole requests

/** The gateway webhook: bodies of any shape, signatures from missing to right. */
function gatewayWebhook(op: Operation, world: World, bias: number): fc.Arbitrary<FuzzRequest> {
  const event = fc.oneof(
    // shapes that change nothing: an event type the API ignores
    fc
      .record({
        id: fc.uuid().map((u) => `evt_${u}`),
        type: fc.constantFrom(
          'charge.updated',
          'payment_intent.canceled',
          'payment_intent.created',
          '',
        ),
        data: fc.record({ object: fc.record({ id: fc.uuid().map((u) => `pi_${u}`) }) }),
      })
      .map((value) => ({ raw: serialize(value), shape: 'noop' as const })),
    // an effective type for a payment nobody knows: recorded as seen
    fc
      .record({
        id: fc.uuid().map((u) => `evt_${u}`),
        type: fc.constantFrom('payment_intent.succeeded', 'payment_intent.payment_failed'),
        data: fc.record({
          object: fc.record({
            id: fc.uuid().map((u) => `pi_${u}`),
            status: fc.constantFrom('succeeded', 'requires_capture', 'failed'),
            metadata: fc.record({ paymentId: fc.oneof(fc.uuid(), fc.constant('x')) }),
          }),
        }),
      })
      .map((value) => ({ raw: serialize(value), shape: 'effect' as const })),
    // malformed events
    fc
      .oneof(
        fc.jsonValue({ maxDepth: 3 }),
        fc.record({
          id: fc.oneof(fc.integer(), fc.constant(''), fc.constant('e'.repeat(256))),
          type: fc.string(),
          data: fc.constant({ object: {} }),
        }),
        fc.record({
          id: fc.constant('evt_x'),
          type: fc.string(),
          data: fc.oneof(fc.constant(null), fc.constant({ object: 'x' })),
        }),
      )
      .filter((v) => {
        const e = v as { id?: unknown; type?: unknown; data?: { object?: unknown } } | null;
        return !(
          e !== null &&
          typeof e === 'object' &&
          typeof e.id === 'string' &&
          e.id.length > 0 &&
          e.id.length <= 255 &&
          typeof e.type === 'string' &&
          typeof e.data?.object === 'object' &&
          e.data?.object !== null
        );
      })
      .map((value) => ({ raw: serialize(value) ?? 'null', shape: 'malformed' as const })),
    fc
      .constantFrom(
        ...NOT_JSON.filter(([, ct]) => ct === 'application/json').map(([raw]) => raw),
        '',
        ' ',
      )
      .map((raw) => ({ raw, shape: 'malformed' as const })),
  );
  const now = () => Math.floor(Date.now() / 1000);
  const signature = fc.constantFrom(
    'right',
    'none',
    'garbage',
    'wrong-secret',
    'stale',
    'other-body',
    'many',
  );
  return fc
    .tuple(event, signature, fc.integer({ min: 0, max: bias }), oddHeaders)
    .map(([e, sig0, forceRight, odd]) => {
      const sig = forceRight > 1 ? 'right' : sig0;
      const headers: Record<string, string> = { 'content-type': 'application/json', ...odd };
      delete headers['gateway-signature'];
      const signed: Record<string, string | undefined> = {
        right: signWebhook(world.webhookSecret, e.raw),
        none: undefined,
        garbage: 'v1=zz,t=x',
        'wrong-secret': signWebhook('whsec_wrong', e.raw),
        stale: signWebhook(world.webhookSecret, e.raw, now() - 3600),
        'other-body': signWebhook(world.webhookSecret, `${e.raw} `),
        many: `t=${now()},v1=${'0'.repeat(64)},v1=${'f'.repeat(64)}`,
      };
      if (signed[sig] !== undefined) headers['gateway-signature'] = signed[sig]!;
      const why =
        sig !== 'right'
          ? [`signature ${sig}`]
          : e.shape === 'malformed'
            ? ['a signed but malformed event']
            : e.shape === 'noop'
              ? ['valid: a signed event the API ignores']
              : ['valid: a signed event for an unknown payment'];
      const expect: Expectation =
        sig !== 'right' || e.shape === 'malformed' ? 'rejected' : e.shape === 'noop' ? 'ok' : 'any';
      return withToString({
        op: op.name,
        method: op.method,
        path: op.template,
        headers,
        body: e.raw,
        expect,
        why,
      });
    });
}

/**
 * Requests for one operation. `bias` weighs valid parts against defective ones (the rejected phase
 * uses 1, the valid phase more).
 */
export function requestsFor(op: Operation, world: World, bias: number): fc.Arbitrary<FuzzRequest> {
  if (op.template === '/payments/webhook') return gatewayWebhook(op, world, bias);
  return fc
    .record({
      auth: authFor(op, world, bias),
      path: pathFor(op, world, bias),
      query: queryFor(op, bias),
      headers: headersFor(op, bias),
      body: bodyFor(op, world, bias),
      odd: oddHeaders,
    })
    .map(({ auth, path, query, headers, body, odd }) => {
      const defects = [
        ...(auth.defect && op.auth !== 'none' ? [auth.defect] : []),
        ...path.defects,
        ...query.defects,
        ...headers.defects,
        ...body.defects,
      ];
      // Someone else's booking, notification or endpoint is as good as unknown.
      if (op.auth === 'customer' && auth.who && auth.who !== 'admin') {
        for (const t of path.targets) {
          if (t.owner && t.owner !== auth.who)
            defects.push(`${auth.who} naming ${t.owner}'s ${t.tag}`);
        }
      }
      // Retrying an outbox message that is not dead is a 409.
      if (op.name === 'POST /admin/outbox/{id}/retry') {
        for (const t of path.targets)
          if (t.tag !== 'dead') defects.push(`retry of a ${t.tag} message`);
      }
      const all: Record<string, string> = { ...odd, ...headers.headers };
      if (auth.header !== undefined) all.authorization = auth.header;
      if (body.contentType !== undefined) all['content-type'] = body.contentType;
      else delete all['content-type'];

      let expect: Expectation;
      let why: string[];
      if (defects.length > 0) {
        expect = 'rejected';
        why = defects;
      } else if (
        op.method === 'GET' ||
        (op.name === 'DELETE /bookings/{id}' && path.targets.every((t) => t.tag === 'released'))
      ) {
        expect = 'ok';
        why = ['valid, changes nothing'];
      } else {
        expect = 'any';
        why = [body.borderline ? 'valid with odd Unicode' : 'valid'];
      }
      return withToString({
        op: op.name,
        method: op.method,
        path: path.path + query.query,
        headers: all,
        body: body.raw,
        expect,
        why,
      });
    });
}

/** Methods a path does not have, and paths that do not exist: 404/405 problems. */
export function unknownRoutes(ops: Operation[], world: World): fc.Arbitrary<FuzzRequest> {
  const templates = [...new Set(ops.map((o) => o.template))];
  return fc
    .tuple(
      fc.constantFrom(...templates),
      fc.constantFrom('PUT', 'PATCH', 'DELETE', 'POST', 'GET'),
      fc.constantFrom('', '/x', '/x/y/z', '/%2F'),
      authFor({ auth: 'customer' } as Operation, world, 1),
    )
    .filter(
      ([template, method, suffix]) =>
        suffix !== '' || !ops.some((o) => o.template === template && o.method === method),
    )
    .map(([template, method, suffix, auth]) => {
      const path = template.replace(/\{[^}]+\}/g, () => randomUUID()) + suffix;
      const headers: Record<string, string> = {};
      if (auth.header) headers.authorization = auth.header;
      return withToString({
        op: 'unknown route',
        method,
        path,
        headers,
        body: method === 'GET' ? undefined : '{}',
        expect: 'rejected',
        why: [`${method} ${template}${suffix} is not a route`],
      });
    });
}

export { fc };
