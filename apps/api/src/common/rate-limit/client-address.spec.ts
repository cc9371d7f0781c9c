import { clientAddress } from './client-address';

describe('clientAddress', () => {
  it('is the IPv4 address, also when written IPv4-mapped', () => {
    expect(clientAddress('203.0.113.7')).toBe('203.0.113.7');
    expect(clientAddress('::ffff:203.0.113.7')).toBe('203.0.113.7');
  });

  it('is the /64 of an IPv6 address, however it is written', () => {
    const network = '2001:db8:1:2::/64';
    expect(clientAddress('2001:db8:1:2::1')).toBe(network);
    expect(clientAddress('2001:0db8:0001:0002:ffff:ffff:ffff:ffff')).toBe(network);
    expect(clientAddress('2001:DB8:1:2:0:0:0:9')).toBe(network);
    expect(clientAddress('2001:db8:1:3::1')).not.toBe(network);
    expect(clientAddress('::1')).toBe('0:0:0:0::/64');
    expect(clientAddress('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
  });

  it('never throws on a missing address', () => {
    expect(clientAddress(undefined)).toBe('unknown');
  });
});
