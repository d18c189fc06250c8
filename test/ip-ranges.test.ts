// IP normalisation and range matching (src/net/ip-ranges.ts): every spelling of loopback that
// has bypassed other SSRF guards, edges of the default-denied blocks, and allow-over-deny.
import t from 'tap';
import { DEFAULT_DENIED_RANGES, IpRangeList, addressAllowed, normaliseIp } from '../src/net/ip-ranges.js';

const DENY = IpRangeList.parse(DEFAULT_DENIED_RANGES);
const NONE = IpRangeList.parse([]);

t.test('normaliseIp unwraps every IPv4-embedding form', async (t) => {
  const urlHost = new URL('http://[::ffff:127.0.0.1]:8080/').hostname; // WHATWG gives [::ffff:7f00:1]
  t.equal(urlHost, '[::ffff:7f00:1]');
  for (const form of [
    '::ffff:127.0.0.1',
    '::FFFF:7f00:1',
    '::fFFf:127.0.0.1',
    urlHost,
    '2002:7f00:0001::',
    '2002:7f00:1:abcd::1',
    '64:ff9b::7f00:1',
    '64:ff9b::127.0.0.1',
    '::127.0.0.1',
    '::ffff:0:7f00:1',
    '0:0:0:0:0:ffff:7f00:0001',
    '127.0.0.1',
  ]) {
    t.equal(normaliseIp(form), '127.0.0.1', form);
  }
  t.equal(normaliseIp('2001:DB8:0:0:0:0:0:1'), '2001:db8::1');
  t.equal(normaliseIp('[::1]'), '::1', '::1 is not 0.0.0.1');
  t.equal(normaliseIp('::'), '::');
  t.equal(normaliseIp('fe80::1%eth0'), 'fe80::1', 'zone id dropped');
  t.equal(normaliseIp('1:0:0:1:0:0:0:1'), '1:0:0:1::1', 'longest zero run compressed');
  for (const bad of ['', 'localhost', '127.1', '0x7f.1', '2130706433', '0177.0.0.1', '1.2.3.4.5', '::g', '1::2::3']) {
    t.throws(() => normaliseIp(bad), /not an IP address/, JSON.stringify(bad));
  }
});

t.test('IpRangeList.parse', async (t) => {
  t.throws(() => IpRangeList.parse(['10.0.0.0/8', 'nonsense/3']), /nonsense\/3/);
  t.throws(() => IpRangeList.parse(['10.0.0.0/33']), /10\.0\.0\.0\/33/);
  t.throws(() => IpRangeList.parse(['::/129']), /::\/129/);
  t.throws(() => IpRangeList.parse(['1.2.3.4/8/9']), /1\.2\.3\.4\/8\/9/);
  t.throws(() => IpRangeList.parse(['10.0.0.0/x']), /10\.0\.0\.0\/x/);
  const l = IpRangeList.parse(['192.0.2.7', '2001:db8::1', '0.0.0.0/0']);
  t.equal(l.size, 3);
  t.ok(IpRangeList.parse(['192.0.2.7']).contains('192.0.2.7'));
  t.notOk(IpRangeList.parse(['192.0.2.7']).contains('192.0.2.8'));
  t.ok(l.contains('8.8.8.8'), '0.0.0.0/0 covers all IPv4');
  t.notOk(IpRangeList.parse(['0.0.0.0/0']).contains('2606:4700::1'), 'IPv4 ranges never match plain IPv6');
  t.notOk(l.contains('not-an-ip'));
  t.ok(IpRangeList.parse(['172.16.0.0/12']).contains('172.31.255.255'), 'non-octet prefix, inside');
  t.notOk(IpRangeList.parse(['172.16.0.0/12']).contains('172.32.0.0'), 'non-octet prefix, outside');
});

t.test('default deny list: inside refused, just outside allowed', async (t) => {
  const cases: [string, string][] = [
    ['0.255.255.255', '1.0.0.0'],
    ['10.255.255.255', '11.0.0.0'],
    ['100.127.255.255', '100.128.0.0'],
    ['100.64.0.0', '100.63.255.255'],
    ['127.0.0.1', '128.0.0.0'],
    ['169.254.169.254', '169.255.0.0'],
    ['172.31.255.255', '172.32.0.0'],
    ['172.16.0.0', '172.15.255.255'],
    ['192.0.0.255', '192.0.1.0'],
    ['192.0.2.1', '192.0.3.0'],
    ['192.88.99.1', '192.88.100.0'],
    ['192.168.1.1', '192.169.0.0'],
    ['198.19.255.255', '198.20.0.0'],
    ['198.51.100.1', '198.51.101.0'],
    ['203.0.113.9', '203.0.114.0'],
    ['224.0.0.1', '223.255.255.255'],
    ['255.255.255.255', '8.8.8.8'],
    ['::1', '::2:0:0'],
    ['fc00::1', 'fe00::1'],
    ['fdff:ffff::1', 'fbff::1'],
    ['fe80::1', 'fe7f::1'],
    ['febf:ffff::1', 'fbff::1'],
    ['fec0::1', '2600::1'],
    ['ff02::1', '2a00:1450::1'],
    ['2001:db8:ffff::1', '2001:db9::1'],
    ['2001:1ff::1', '2001:200::1'],
    ['100::1', '100:0:0:1::1'],
    ['64:ff9b:1::1', '64:ff9b:2::1'],
    ['2002:0808:0808::1', '2003::1'],
  ];
  for (const [inside, outside] of cases) {
    t.notOk(addressAllowed(inside, NONE, DENY), `${inside} refused`);
    t.ok(addressAllowed(outside, NONE, DENY), `${outside} allowed`);
  }
  t.notOk(addressAllowed('::', NONE, DENY), ':: refused');
  t.notOk(addressAllowed('::ffff:8.8.8.8', NONE, DENY), 'mapped addresses refused outright (::ffff:0:0/96)');
  t.notOk(addressAllowed('64:ff9b::808:808', NONE, DENY), 'NAT64 refused outright');
  t.notOk(addressAllowed('garbage', NONE, NONE), 'non-addresses refused even with empty lists');
});

t.test('embedded IPv4 checked against deny even when the IPv6 prefix is not denied', async (t) => {
  const only127 = IpRangeList.parse(['127.0.0.0/8']);
  for (const form of [
    '::ffff:127.0.0.1',
    '::ffff:7f00:1',
    '[::ffff:7f00:1]',
    '2002:7f00:1::',
    '64:ff9b::7f00:1',
    '::127.0.0.1',
    '::ffff:0:7f00:1',
  ]) {
    t.notOk(addressAllowed(form, NONE, only127), form);
  }
  t.ok(addressAllowed('2002:808:808::', NONE, only127), 'a 6to4 address of a public host is fine under this list');
});

t.test('allow list overrides deny', async (t) => {
  const allow = IpRangeList.parse(['127.0.0.1/32', '::1/128']);
  t.ok(addressAllowed('127.0.0.1', allow, DENY));
  t.ok(addressAllowed('::1', allow, DENY));
  t.ok(addressAllowed('::ffff:127.0.0.1', allow, DENY), 'the allowed host in mapped form');
  t.notOk(addressAllowed('127.0.0.2', allow, DENY), 'only what is allowed');
  t.notOk(addressAllowed('10.0.0.1', allow, DENY));
  t.ok(addressAllowed('8.8.8.8', allow, DENY), 'allow is not an exclusive list');
});

t.test('the more specific entry decides; an allow-only list is exclusive', async (t) => {
  const mmrAllow = IpRangeList.parse(['0.0.0.0/0']); // MMR's default urlPreviews.allowedNetworks
  for (const ip of ['127.0.0.1', '10.1.2.3', '169.254.169.254', '::ffff:127.0.0.1', '::1']) {
    t.notOk(addressAllowed(ip, mmrAllow, DENY), `${ip} stays refused under 0.0.0.0/0`);
  }
  t.ok(addressAllowed('8.8.8.8', mmrAllow, DENY));
  t.ok(
    addressAllowed('2606:4700::1111', mmrAllow, DENY),
    'IPv6 held by neither list: allowed while a deny list is in force',
  );
  const tie = IpRangeList.parse(['10.0.0.0/8']);
  t.ok(addressAllowed('10.0.0.1', tie, tie), 'a tie allows: the operator named that very range');
  const inner = IpRangeList.parse(['10.1.0.0/16']);
  const outer = IpRangeList.parse(['10.0.0.0/8']);
  t.ok(addressAllowed('10.1.2.3', inner, outer), 'allow inside deny');
  t.notOk(addressAllowed('10.1.2.3', outer, inner), 'deny inside allow');
  t.ok(addressAllowed('10.2.0.1', outer, inner), 'the rest of the allowed block');
  const only = IpRangeList.parse(['203.0.113.0/24']);
  t.ok(addressAllowed('203.0.113.9', only, NONE));
  t.notOk(addressAllowed('8.8.8.8', only, NONE), 'allow-only: everything else refused');
  t.ok(addressAllowed('8.8.8.8', NONE, NONE), 'no lists at all: allowed (config refuses this for previews)');
});
