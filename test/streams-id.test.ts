// Stream id parsing and ordering: table-driven, no Redis.
import test from 'ava';
import { compareStreamIds, formatStreamId, isMaxStreamId, parseStreamId } from '../streams/stream-id.ts';

const valid: [string, string][] = [
  ['0-0', '0-0'],
  ['1700000000000-0', '1700000000000-0'],
  ['1700000000000-42', '1700000000000-42'],
  ['007-01', '7-1'],
  ['18446744073709551615-18446744073709551615', '18446744073709551615-18446744073709551615'],
];
const invalid = [
  '',
  '-',
  '1',
  '1-',
  '-1',
  '+1-0',
  '1-+0',
  '1--0',
  '1-0-0',
  'a-0',
  '1-a',
  ' 1-0',
  '1-0\n',
  '1e3-0',
  '18446744073709551616-0',
  '0-18446744073709551616',
  '123456789012345678901-0',
];

for (const [text, formatted] of valid) {
  test(`parses ${text}`, (t) => {
    const id = parseStreamId(text);
    t.truthy(id);
    t.is(formatStreamId(id!), formatted);
  });
}

test('refuses malformed ids', (t) => {
  for (const text of invalid) t.is(parseStreamId(text), undefined, JSON.stringify(text));
});

test('compares numerically, not as text', (t) => {
  const cmp = (a: string, b: string) => compareStreamIds(parseStreamId(a)!, parseStreamId(b)!);
  t.is(cmp('9-0', '10-0'), -1);
  t.is(cmp('10-0', '9-0'), 1);
  t.is(cmp('10-9', '10-10'), -1);
  t.is(cmp('10-10', '010-010'), 0);
  t.is(cmp('11-0', '10-99'), 1);
  t.true(isMaxStreamId(parseStreamId('18446744073709551615-18446744073709551615')!));
  t.false(isMaxStreamId(parseStreamId('18446744073709551615-0')!));
});
