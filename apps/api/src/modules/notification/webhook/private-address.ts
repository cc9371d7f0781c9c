import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';

/**
 * Addresses a customer's webhook URL must not reach: our own machine and network (loopback,
 * RFC 1918, CGNAT, link-local — cloud metadata lives at 169.254.169.254 —, unique-local IPv6),
 * plus unspecified, broadcast and multicast ones. Sending there would let any customer probe or
 * poke internal services from inside (SSRF).
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
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const) {
  PRIVATE.addSubnet(network, prefix, 'ipv6');
}

/** True for an IP literal in a private, loopback, link-local or otherwise internal range. */
export function isPrivateAddress(address: string): boolean {
  const bare = address.replace(/^\[|\]$/g, '');
  const family = isIP(bare);
  if (family === 4) return PRIVATE.check(bare, 'ipv4');
  if (family !== 6) return false;
  // ::ffff:10.0.0.1 is 10.0.0.1 to the kernel.
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare);
  if (mapped) return PRIVATE.check(mapped[1], 'ipv4');
  return PRIVATE.check(bare, 'ipv6');
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
 */
export const publicOnlyLookup: LookupFunction = (hostname, options, callback) => {
  dnsLookup(hostname, options, (error, address: string | LookupAddress[], family?: number) => {
    if (error) return callback(error, address as string, family);
    const addresses = Array.isArray(address) ? address.map((a) => a.address) : [address];
    const refused = addresses.find(isPrivateAddress);
    if (refused) {
      const denied = Object.assign(
        new Error(
          `refused: ${hostname} resolves to the private address ${refused} (WEBHOOK_ALLOW_PRIVATE_NETWORKS is off)`,
        ),
        { code: 'EPRIVATEADDRESS' },
      );
      return callback(denied, address as string, family);
    }
    callback(null, address as string, family);
  });
};
