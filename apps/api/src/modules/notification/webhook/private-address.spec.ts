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
  ])('%s is private', (address) => {
    expect(isPrivateAddress(address)).toBe(true);
  });

  it.each(['203.0.113.7', '8.8.8.8', '172.32.0.1', '2606:4700::1111', 'example.com'])(
    '%s is not',
    (address) => {
      expect(isPrivateAddress(address)).toBe(false);
    },
  );

  it('treats localhost names as private hosts', () => {
    expect(isPrivateHost('localhost')).toBe(true);
    expect(isPrivateHost('api.localhost.')).toBe(true);
    expect(isPrivateHost('example.com')).toBe(false);
  });

  it('refuses, at connect time, a host name that resolves to a private address', async () => {
    const error = await new Promise<Error | null>((resolve) =>
      publicOnlyLookup('localhost', { all: true }, (err) => resolve(err)),
    );
    expect(error?.message).toMatch(/refused: localhost resolves to the private address/);
  });
});
