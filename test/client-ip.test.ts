// The client address behind trusted proxies: the entry the outermost trusted
// proxy appended, never one the client wrote itself.
import test from 'ava';
import { clientIp } from '../server/client-ip.ts';

test('without trusted proxies the peer address is the client, whatever the header says', (t) => {
  t.is(clientIp('192.0.2.7', '203.0.113.1', 0), '192.0.2.7');
  t.is(clientIp('', undefined, 0), 'unknown');
});

test('one trusted proxy: the last entry, which that proxy appended', (t) => {
  t.is(clientIp('10.0.0.2', '198.51.100.9', 1), '198.51.100.9');
  t.is(clientIp('10.0.0.2', '203.0.113.1, 198.51.100.9', 1), '198.51.100.9', 'a client-written first entry is ignored');
  t.is(clientIp('10.0.0.2', ['203.0.113.1', '198.51.100.9'], 1), '198.51.100.9', 'repeated headers are one list');
});

test('two trusted proxies: the entry the outer proxy appended', (t) => {
  t.is(clientIp('10.0.0.3', '203.0.113.1, 198.51.100.9, 10.0.0.2', 2), '198.51.100.9');
  t.is(clientIp('10.0.0.3', '198.51.100.9', 2), '198.51.100.9', 'fewer entries than hops: the leftmost');
});

test('an empty or oversized header does not become the address', (t) => {
  t.is(clientIp('10.0.0.2', ' , ', 1), '10.0.0.2');
  t.is(clientIp('10.0.0.2', '', 1), '10.0.0.2');
  const long = `${'1.1.1.1,'.repeat(10_000)}198.51.100.9`;
  t.is(clientIp('10.0.0.2', long, 1), '198.51.100.9');
  t.true(clientIp('10.0.0.2', 'x'.repeat(1000), 1).length <= 64);
});
