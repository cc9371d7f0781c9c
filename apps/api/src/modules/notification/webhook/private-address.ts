import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';

/**
 * Addresses a customer's webhook URL must not reach: our own machine and network (loopback,
 * RFC 1918, CGNAT, link-local — cloud metadata lives at 169.254.169.254 —, unique-local and the
 * old site-local IPv6, NAT64 prefixes, which a NAT64 gateway turns into any IPv4 address), plus
 * unspecified, broadcast and multicast ones. Sending there would let any customer probe or poke
 * internal services from inside (SSRF). IPv6 forms that carry an IPv4 address are judged by it.
 */
const PRIVATE = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  PRIVATE.addSubnet(network, prefix, 'ipv4');
}
for (const [network, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['64:ff9b::', 96],
  ['64:ff9b:1::', 48],
  ['fc00::', 7],
  ['fe80::', 10],
  ['fec0::', 10],
  ['ff00::', 8],
] as const) {
  PRIVATE.addSubnet(network, prefix, 'ipv6');
}

/** The 16 bytes of an IPv6 address (one isIP accepts), a dotted IPv4 tail and a zone included. */
function ipv6Bytes(address: string): number[] {
  let text = address.split('%')[0].toLowerCase();
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number);
    const hex = (high: number, low: number) => ((high << 8) | low).toString(16);
    text = `${text.slice(0, dotted.index)}${hex(a, b)}:${hex(c, d)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, null];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return groups.flatMap((group) => {
    const value = parseInt(group || '0', 16);
    return [value >> 8, value & 0xff];
  });
}

/**
 * The IPv4 address an IPv6 one stands for, where the network delivers it there: IPv4-mapped
 * (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d), IPv4-translated (::ffff:0:a.b.c.d), 6to4
 * (2002:aabb:ccdd::/48, relayed to aa.bb.cc.dd) and Teredo (2001:0::/32, the client's address
 * inverted in the last 32 bits); null for any other.
 */
function embeddedIPv4(bytes: number[]): string | null {
  const zero = (from: number, to: number) => bytes.slice(from, to).every((byte) => byte === 0);
  const v4 = (at: number, invert = 0) =>
    bytes
      .slice(at, at + 4)
      .map((byte) => byte ^ invert)
      .join('.');
  const word = (at: number) => (bytes[at] << 8) | bytes[at + 1];
  if (zero(0, 10) && (word(10) === 0 || word(10) === 0xffff)) return v4(12);
  if (zero(0, 8) && word(8) === 0xffff && word(10) === 0) return v4(12);
  if (word(0) === 0x2002) return v4(2);
  if (word(0) === 0x2001 && word(2) === 0) return v4(12, 0xff);
  return null;
}

/** True for an IP literal in a private, loopback, link-local or otherwise internal range. */
export function isPrivateAddress(address: string): boolean {
  const bare = address.replace(/^\[|\]$/g, '');
  const family = isIP(bare);
  if (family === 4) return PRIVATE.check(bare, 'ipv4');
  if (family !== 6) return false;
  if (PRIVATE.check(bare, 'ipv6')) return true;
  const embedded = embeddedIPv4(ipv6Bytes(bare));
  return embedded !== null && PRIVATE.check(embedded, 'ipv4');
}

/** True when a URL's host is, as written, a private address (an IP literal or `localhost`). */
export function isPrivateHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/\.$/, '');
  return host === 'localhost' || host.endsWith('.localhost') || isPrivateAddress(host);
}

/**
 * A `lookup` for sockets that refuses host names resolving to a private address. Checking at
 * connect time (not before the request) means the address checked is the address connected to,
 * so a DNS answer that changes between a check and the connect (rebinding) cannot slip through.
 * The refusal does not name the address: it is stored with the delivery attempt and shown to the
 * customer, who must not learn our internal addresses by pointing a DNS name at them.
 */
export const publicOnlyLookup: LookupFunction = (hostname, options, callback) => {
  dnsLookup(hostname, options, (error, address: string | LookupAddress[], family?: number) => {
    if (error) return callback(error, address as string, family);
    const addresses = Array.isArray(address) ? address.map((a) => a.address) : [address];
    if (addresses.some((resolved) => isPrivateAddress(resolved))) {
      const denied = Object.assign(
        new Error(
          `refused: ${hostname} resolves to a private address (WEBHOOK_ALLOW_PRIVATE_NETWORKS is off)`,
        ),
        { code: 'EPRIVATEADDRESS' },
      );
      return callback(denied, address as string, family);
    }
    callback(null, address as string, family);
  });
};
