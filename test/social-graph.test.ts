// The social graph over real sockets on two nodes: follows and their exact
// counts, private accounts and follow requests, blocks (both directions, every
// read path), mutes, lists with cursors, and typed errors that change nothing.
import test from 'ava';
import { codeOf } from './helpers/outcome.ts';
import { SocialCluster } from './helpers/social.ts';

const cluster = new SocialCluster();
test.before(() => cluster.start('graph'));
test.after.always(() => cluster.stop());

test('follow and unfollow are idempotent and the counts are exact under concurrent follows from both nodes', async (t) => {
  const star = await cluster.user(0, 'star');
  const fans = await cluster.users(40, 'fan');
  const results = await Promise.all(fans.map((f) => f.c.request('graph:follow', { userId: star.userId })));
  t.true(results.every((r) => r.status === 'active'));
  await Promise.all(fans.slice(0, 10).map((f) => f.c.request('graph:follow', { userId: star.userId })));
  t.is((await star.c.request('users:get', { userId: star.userId })).followers, 40);
  t.is((await fans[3]!.c.request('users:get', { userId: fans[3]!.userId })).following, 1);

  await Promise.all(
    fans.slice(0, 15).flatMap((f) => [f.c.request('graph:unfollow', { userId: star.userId }), f.c.request('graph:unfollow', { userId: star.userId })]),
  );
  const profile = await fans[20]!.c.request('users:get', { userId: star.userId });
  t.is(profile.followers, 25);

  const seen: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await fans[30]!.c.request('graph:followers', { userId: star.userId, limit: 7, ...(cursor && { cursor }) });
    t.true(page.items.length <= 7);
    seen.push(...page.items.map((u) => u.userId));
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  t.is(seen.length, 25);
  t.is(new Set(seen).size, 25, 'no duplicates across pages');
  t.deepEqual(
    [...seen].sort(),
    fans
      .slice(15)
      .map((f) => f.userId)
      .sort(),
  );

  const following = await star.c.request('graph:following', { userId: fans[20]!.userId, limit: 10 });
  t.deepEqual(
    following.items.map((u) => u.userId),
    [star.userId],
  );
});

test('a private account turns follows into requests that can be approved, rejected or withdrawn', async (t) => {
  const [priv, a, b, c] = await cluster.users(4);
  await priv!.c.request('users:updateProfile', { private: true });
  t.deepEqual(await a!.c.request('graph:follow', { userId: priv!.userId }), { status: 'pending' });
  t.deepEqual(await b!.c.request('graph:follow', { userId: priv!.userId }), { status: 'pending' });
  t.deepEqual(await c!.c.request('graph:follow', { userId: priv!.userId }), { status: 'pending' });
  t.is((await a!.c.request('users:get', { userId: priv!.userId })).followers, 0);
  t.is(await codeOf(a!.c.request('graph:followers', { userId: priv!.userId })), 'GRAPH_PRIVATE_ACCOUNT');
  t.is(await codeOf(a!.c.request('posts:byUser', { userId: priv!.userId })), 'GRAPH_PRIVATE_ACCOUNT');

  const requests = await priv!.c.request('graph:requests', {});
  t.deepEqual(requests.items.map((u) => u.userId).sort(), [a!.userId, b!.userId, c!.userId].sort());
  t.deepEqual(await priv!.c.request('graph:approve', { userId: a!.userId }), { status: 'active' });
  t.deepEqual(await priv!.c.request('graph:reject', { userId: b!.userId }), { status: 'none' });
  t.deepEqual(await c!.c.request('graph:unfollow', { userId: priv!.userId }), { status: 'none' });
  t.is(await codeOf(priv!.c.request('graph:approve', { userId: b!.userId })), 'GRAPH_REQUEST_NOT_FOUND');
  t.is((await priv!.c.request('graph:requests', {})).items.length, 0);
  t.is((await a!.c.request('users:get', { userId: priv!.userId })).followers, 1);
  t.deepEqual(
    (await a!.c.request('graph:followers', { userId: priv!.userId })).items.map((u) => u.userId),
    [a!.userId],
  );
  t.like(await a!.c.request('graph:relationship', { userId: priv!.userId }), { following: true, requested: false });
  t.like(await b!.c.request('graph:relationship', { userId: priv!.userId }), { following: false, requested: false });
});

test('block ends follows both ways, refuses new ones, and hides each side from the other', async (t) => {
  const [x, y, z] = await cluster.users(3);
  await x!.c.request('graph:follow', { userId: y!.userId });
  await y!.c.request('graph:follow', { userId: x!.userId });
  const yPost = await y!.c.request('posts:create', { text: 'hello from y #blocktest' });
  const xPost = await x!.c.request('posts:create', { text: 'hello from x' });
  t.deepEqual(await x!.c.request('graph:block', { userId: y!.userId }), { changed: true });

  t.is((await z!.c.request('users:get', { userId: x!.userId })).followers, 0);
  t.is((await z!.c.request('users:get', { userId: y!.userId })).followers, 0);
  t.like(await x!.c.request('graph:relationship', { userId: y!.userId }), { following: false, followedBy: false, blocking: true, blockedBy: false });
  t.like(await y!.c.request('graph:relationship', { userId: x!.userId }), { following: false, followedBy: false, blocking: false, blockedBy: true });
  t.is(await codeOf(y!.c.request('graph:follow', { userId: x!.userId })), 'GRAPH_BLOCKED');
  t.is(await codeOf(x!.c.request('graph:follow', { userId: y!.userId })), 'GRAPH_BLOCKED');
  for (const [viewer, other, post] of [
    [x!, y!, yPost],
    [y!, x!, xPost],
  ] as const) {
    t.is(await codeOf(viewer.c.request('users:get', { userId: other.userId })), 'GRAPH_BLOCKED');
    t.is(await codeOf(viewer.c.request('posts:byUser', { userId: other.userId })), 'GRAPH_BLOCKED');
    t.is(await codeOf(viewer.c.request('graph:followers', { userId: other.userId })), 'GRAPH_BLOCKED');
    t.is(await codeOf(viewer.c.request('posts:get', { postId: post.postId })), 'POST_NOT_FOUND');
    t.is(await codeOf(viewer.c.request('posts:like', { postId: post.postId })), 'POST_NOT_FOUND');
    t.is(await codeOf(viewer.c.request('posts:create', { text: 'reply', replyTo: post.postId })), 'POST_NOT_FOUND');
    t.is(await codeOf(viewer.c.request('posts:thread', { postId: post.postId })), 'POST_NOT_FOUND');
  }
  const tagPage = await x!.c.request('posts:hashtag', { tag: 'blocktest' });
  t.false(tagPage.items.some((p) => p.author.userId === y!.userId));
  t.true((await z!.c.request('posts:hashtag', { tag: 'blocktest' })).items.some((p) => p.postId === yPost.postId));
  t.deepEqual(
    (await x!.c.request('graph:blocks', {})).items.map((u) => u.userId),
    [y!.userId],
  );
  t.like((await z!.c.request('presence:watch', { userIds: [y!.userId] })).statuses[0], { online: true });
  t.like((await x!.c.request('presence:watch', { userIds: [y!.userId] })).statuses[0], { online: false, lastSeen: null }, 'presence hides across a block');
  t.like((await y!.c.request('presence:watch', { userIds: [x!.userId] })).statuses[0], { online: false, lastSeen: null });

  // Mentions from the blocked side resolve to nobody.
  const mention = await y!.c.request('posts:create', { text: `hey @${x!.username} and @${z!.username}` });
  t.deepEqual(mention.mentions, [z!.userId]);

  t.deepEqual(await x!.c.request('graph:unblock', { userId: y!.userId }), { changed: true });
  t.is((await x!.c.request('posts:get', { postId: yPost.postId })).postId, yPost.postId);
  t.like(await x!.c.request('graph:relationship', { userId: y!.userId }), { following: false, blocking: false });
});

test('mute hides the muted from hashtag pages, is listed only to the muter, and the muted cannot tell', async (t) => {
  const [m, loud] = await cluster.users(2);
  const tag = `mutetest${Date.now()}`;
  const p = await loud!.c.request('posts:create', { text: `noise #${tag}` });
  t.is((await m!.c.request('posts:hashtag', { tag })).items.length, 1);
  t.deepEqual(await m!.c.request('graph:mute', { userId: loud!.userId }), { changed: true });
  t.deepEqual(await m!.c.request('graph:mute', { userId: loud!.userId }), { changed: false });
  t.is((await m!.c.request('posts:hashtag', { tag })).items.length, 0);
  t.is((await m!.c.request('posts:get', { postId: p.postId })).postId, p.postId, 'a direct read still works');
  t.deepEqual(
    (await m!.c.request('graph:mutes', {})).items.map((u) => u.userId),
    [loud!.userId],
  );
  t.like(await loud!.c.request('graph:relationship', { userId: m!.userId }), { muting: false, blockedBy: false });
  t.like(await m!.c.request('graph:relationship', { userId: loud!.userId }), { muting: true });
  await m!.c.request('graph:unmute', { userId: loud!.userId });
  t.is((await m!.c.request('posts:hashtag', { tag })).items.length, 1);
});

test('bad graph input gets typed errors and changes nothing', async (t) => {
  const [a, b] = await cluster.users(2);
  t.is(await codeOf(a!.c.request('graph:follow', { userId: a!.userId })), 'GRAPH_SELF');
  t.is(await codeOf(a!.c.request('graph:follow', { userId: 'u_nobodyhere' })), 'USER_NOT_FOUND');
  t.is(await codeOf(a!.c.request('graph:block', { userId: 'u_nobodyhere' })), 'USER_NOT_FOUND');
  t.is(await codeOf(a!.c.request('graph:block', { userId: a!.userId })), 'GRAPH_SELF');
  t.is(await codeOf(a!.c.request('graph:follow', { userId: 'not a user' })), 'REQUEST_INVALID');
  t.is(await codeOf(a!.c.request('graph:followers', { userId: b!.userId, cursor: 'garbage' })), 'REQUEST_CURSOR_INVALID');
  t.is(await codeOf(a!.c.request('graph:followers', { userId: b!.userId, cursor: Buffer.from('{"t":"x"}').toString('base64url') })), 'REQUEST_CURSOR_INVALID');
  t.is(await codeOf(a!.c.request('graph:followers', { userId: b!.userId, limit: 500 })), 'REQUEST_INVALID');
  t.like(await a!.c.request('graph:relationship', { userId: b!.userId }), { following: false, blocking: false, muting: false });
  t.is((await a!.c.request('users:get', { userId: a!.userId })).following, 0);
});

test('the following limit refuses one follow too many', async (t) => {
  const limited = new SocialCluster();
  await limited.start('graphlimit', { SOCIAL_MAX_FOLLOWING: '2' });
  t.teardown(() => limited.stop());
  const [me, a, b, c] = await limited.users(4);
  await me!.c.request('graph:follow', { userId: a!.userId });
  await me!.c.request('graph:follow', { userId: b!.userId });
  t.is(await codeOf(me!.c.request('graph:follow', { userId: c!.userId })), 'GRAPH_FOLLOW_LIMIT');
  t.is((await c!.c.request('users:get', { userId: c!.userId })).followers, 0);
});
