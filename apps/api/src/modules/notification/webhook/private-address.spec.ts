import { isPrivateAddress, isPrivateHost, publicOnlyLookup } from './private-address';

describe('private-address', () => {
  it.each([
    '127.0.0.1',
    '10.0.0.1',
    '172.31.255.255',
    '192.168.1.1',
    '169.254.169.254',
    '100.64.0.1',
    '0.0.0.0',
    '::1',
    '::',
    'fd00::1',
    'fe80::1',
    '::ffff:10.0.0.1',
    '[::1]',
    // The WHATWG URL parser writes [::ffff:10.0.0.1] as [::ffff:a00:1].
    '[::ffff:a00:1]',
    // NAT64: the gateway turns these into IPv4 addresses, its own network's included.
    '64:ff9b::a00:1',
    '64:ff9b::8.8.8.8',
    '64:ff9b:1::1',
    '64:ff9b:1:ffff::1',
    // Site-local (deprecated, still routed inside some networks).
    'fec0::1',
    'feff::1',
    // IPv4 inside IPv6, judged by the IPv4 address: compatible, translated, 6to4, Teredo.
    '::10.0.0.1',
    '::a00:1',
    '::127.0.0.1',
    '::ffff:0:169.254.169.254',
    '2002:a00:1::',
    '2002:7f00:1::1',
    '2002:a9fe:a9fe::1',
    '2001:0:4136:e378:8000:63bf:f5ff:fffe',
  ])('%s is private', (address) => {
    expect(isPrivateAddress(address)).toBe(true);
  });

  it.each([
    '203.0.113.7',
    '8.8.8.8',
    '172.32.0.1',
    '2606:4700::1111',
    'example.com',
    // Embedding a public IPv4 address.
    '::8.8.8.8',
    '::ffff:808:808',
    '2002:808:808::1',
    '2001:0:4136:e378:8000:63bf:f7f7:f7f7',
    // Next to the ranges, outside them.
    '64:ff9b:2::1',
    '64:ff9a::a00:1',
    'fbff::1',
    'fe7f::1',
    '2003:a00:1::',
  ])('%s is not', (address) => {
    expect(isPrivateAddress(address)).toBe(false);
  });

  it('treats localhost names as private hosts', () => {
    expect(isPrivateHost('localhost')).toBe(true);
    expect(isPrivateHost('api.localhost.')).toBe(true);
    expect(isPrivateHost('example.com')).toBe(false);
  });

  it('refuses, at connect time, a host name that resolves to a private address, without naming it', async () => {
    const error = await new Promise<Error | null>((resolve) =>
      publicOnlyLookup('localhost', { all: true }, (err) => resolve(err)),
    );
    expect(error?.message).toBe(
      'refused: localhost resolves to a private address (WEBHOOK_ALLOW_PRIVATE_NETWORKS is off)',
    );
    expect(error?.message).not.toMatch(/127\.0\.0\.1|::1/);
  });
});
