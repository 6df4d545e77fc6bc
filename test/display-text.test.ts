// Display names: normalised, and refused when they could mislead (bidi
// controls, control characters, nothing visible), wherever a client sets one.
import test from 'ava';
import { authChannel } from '../channels/auth.ts';
import { usersChannel } from '../channels/users.ts';
import { UserActor } from '../actors/contracts/user.ts';
import { displayName } from '../kernel/display-text.ts';
import { parseInput } from '../kernel/zod-issues.ts';
import { FlockError } from '../kernel/errors.ts';

const refused: [string, string][] = [
  ['a right-to-left override', 'Bob\u202Egnp.exe'],
  ['a left-to-right embedding', '\u202AAlice'],
  ['a pop directional formatting', 'Alice\u202C'],
  ['a first-strong isolate', 'Ali\u2068ce'],
  ['a pop directional isolate', 'Alice\u2069'],
  ['a left-to-right mark', 'Alice\u200E'],
  ['a right-to-left mark', '\u200FAlice'],
  ['an Arabic letter mark', 'Ali\u061Cce'],
  ['only zero-width spaces', '\u200B\u200B'],
  ['only a zero-width joiner and non-joiner', '\u200D\u200C'],
  ['only a byte order mark and a word joiner', '\uFEFF\u2060'],
  ['only white space', ' \u3000\u00A0\t '],
  ['only a Hangul filler', '\u3164'],
  ['only a Braille blank', '\u2800\u2800'],
  ['only combining marks', '\u0301\u0308'],
  ['only variation selectors and tags', '\uFE0F\u{E0041}'],
  ['a newline', 'Alice\nBob'],
  ['a NUL', 'Alice\u0000'],
  ['nothing', ''],
  ['51 characters', 'x'.repeat(51)],
];

const accepted: [string, string, string][] = [
  ['a plain name', 'Alice', 'Alice'],
  ['surrounding white space, trimmed', '  Alice  ', 'Alice'],
  ['a decomposed accent, composed (NFC)', 'Jose\u0301', 'Jos\u00E9'],
  ['a right-to-left script', 'مريم', 'مريم'],
  ['an emoji family (zero-width joiners inside a visible name)', 'Ana 👩\u200D👩\u200D👧', 'Ana 👩\u200D👩\u200D👧'],
  ['50 characters', 'y'.repeat(50), 'y'.repeat(50)],
];

for (const [what, name] of refused) {
  test(`a display name with ${what} is REQUEST_INVALID`, (t) => {
    const err = t.throws(() => parseInput(displayName, name, 'profile'), { instanceOf: FlockError });
    t.is(err?.code, 'REQUEST_INVALID');
  });
}

for (const [what, name, stored] of accepted) {
  test(`a display name with ${what} is accepted`, (t) => {
    t.is(parseInput(displayName, name, 'profile'), stored);
  });
}

test('registration, profile updates and the UserActor all use the rule', (t) => {
  const sneaky = 'Bob\u202Egnp.exe';
  t.false(
    authChannel.events.register.request.safeParse({ username: 'bob_1', email: 'bob@example.com', password: 'a good password 1', displayName: sneaky }).success,
  );
  t.true(
    authChannel.events.register.request.safeParse({ username: 'bob_1', email: 'bob@example.com', password: 'a good password 1', displayName: 'Bob' }).success,
  );
  t.false(usersChannel.events.updateProfile.request.safeParse({ displayName: sneaky }).success);
  t.false(usersChannel.events.updateProfile.request.safeParse({ displayName: '\u200B' }).success);
  t.is(usersChannel.events.updateProfile.request.parse({ displayName: ' Jose\u0301 ' }).displayName, 'Jos\u00E9');
  t.false(UserActor.messages.create.input.safeParse({ username: 'bob_1', displayName: sneaky }).success);
});

test('usernames allow only ASCII letters, digits and underscores, so none of this reaches them', (t) => {
  for (const name of ['bob\u202E', 'bob\u200B', 'bo\u0301b', 'ｂｏｂ']) {
    t.false(authChannel.events.register.request.safeParse({ username: name, email: 'bob@example.com', password: 'a good password 1' }).success, name);
  }
});
