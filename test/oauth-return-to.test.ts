// The open-redirect guard: which returnTo values the allow-list admits, and
// the normalised URL a flow redirects to.
import test from 'ava';
import { createReturnToPolicy } from '../auth/oauth/return-to.ts';
import { parseOAuthSettings } from '../auth/oauth/settings.ts';
import { FlockError } from '../kernel/errors.ts';

const policy = createReturnToPolicy(['https://app.example.com/', 'https://www.example.com/app', 'flockapp://oauth', 'http://localhost:5173/']);

const cases: [string, string | null][] = [
  ['https://app.example.com/', 'https://app.example.com/'],
  ['https://app.example.com/signed-in?next=%2Ffeed', 'https://app.example.com/signed-in?next=%2Ffeed'],
  ['HTTPS://APP.EXAMPLE.COM/x', 'https://app.example.com/x'],
  ['https://app.example.com:443/x', 'https://app.example.com/x'],
  ['https://www.example.com/app', 'https://www.example.com/app'],
  ['https://www.example.com/app/done', 'https://www.example.com/app/done'],
  ['flockapp://oauth/done', 'flockapp://oauth/done'],
  ['http://localhost:5173/cb', 'http://localhost:5173/cb'],
  // Refused
  ['https://www.example.com/application', null],
  ['https://www.example.com/app/../admin', null],
  ['https://www.example.com/app/%2e%2e/admin', null],
  ['https://app.example.com.evil.test/', null],
  ['https://app.example.com@evil.test/', null],
  ['https://user:pass@app.example.com/', null],
  ['https://evil.test\\@app.example.com/', null],
  ['https://evil.test/https://app.example.com/', null],
  ['http://app.example.com/', null],
  ['https://app.example.com:8443/', null],
  ['https://app.example.com/#already=fragment', null],
  ['//evil.test/', null],
  ['/relative', null],
  ['javascript:alert(1)//https://app.example.com/', null],
  ['data:text/html,hi', null],
  ['flockapp://oauthx/done', null],
  ['otherapp://oauth/done', null],
  ['http://localhost:5174/cb', null],
  ['', null],
  [`https://app.example.com/${'a'.repeat(3000)}`, null],
];

for (const [input, expected] of cases) {
  test(`returnTo ${JSON.stringify(input.slice(0, 60))} → ${expected === null ? 'refused' : 'allowed'}`, (t) => {
    t.is(policy.check(input), expected);
  });
}

test('an empty allow-list admits nothing', (t) => {
  t.is(createReturnToPolicy([]).check('https://app.example.com/'), null);
});

test('allow-list entries with a query, fragment or credentials, or relative ones, are configuration errors', (t) => {
  for (const prefix of ['https://app.example.com/?x=1', 'https://app.example.com/#x', 'https://u@app.example.com/', '/relative', 'app.example.com']) {
    const err = t.throws(() => parseOAuthSettings({ providers: {}, allowedReturnTo: [prefix] }), { instanceOf: FlockError });
    t.is(err?.code, 'CONFIG_INVALID', prefix);
  }
});
