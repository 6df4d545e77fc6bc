// UserActor: owns a user's profile, privacy, the follow edges pointing at the
// user (followers and follow requests) with their exact count, and the
// blocks and mutes the user made. Credentials and roles live in the account
// document (auth/). Durable: every change is saved before it is
// acknowledged.
//
// Edges and the profile read model live outside the actor state (models/edge.ts,
// models/profile.ts). A turn that changes edges records the writes in its state
// (`pendingEdges`) and does them after the save (ctx.afterCommit); onActivate
// redoes the last turn's writes and re-projects the profile, so a crash between
// the save and the writes never leaves the count and the edges apart. The edge
// writes are idempotent and fenced by the activation epoch.
import { z } from 'zod';
import { FlockError } from '../kernel/errors.ts';
import { EDGE_KINDS, EDGE_STATUSES, type EdgeStatus } from '../models/edge.ts';
import type { EdgeWrite } from '../social/edges.ts';
import { fencedUpsert } from '../kernel/fenced.ts';
import { defineActor, type ActorContext } from './define.ts';
import { userIdInput } from '../kernel/ids.ts';
import { mediaIdInput } from '../kernel/ids.ts';

export const displayName = z.string().trim().min(1).max(50);
export const bio = z.string().max(300);

const edgeWrite = z.object({ kind: z.enum(EDGE_KINDS), owner: z.string(), member: z.string(), status: z.enum(EDGE_STATUSES) });

const userState = z.object({
  exists: z.boolean(),
  username: z.string(),
  displayName: z.string(),
  bio: z.string(),
  avatarMediaId: z.string().nullable(),
  createdAt: z.number().int(),
  updatedAt: z.number().int(),
  private: z.boolean().default(false),
  /** Active follow edges pointing at this user: exact, kept with the edges. */
  followers: z.number().int().min(0).default(0),
  /** The last turn's edge writes, redone on activation (idempotent). */
  pendingEdges: z.array(edgeWrite).default([]),
});
type UserState = z.output<typeof userState>;

export const publicProfile = z.object({
  userId: z.string(),
  username: z.string(),
  displayName: z.string(),
  bio: z.string(),
  avatarMediaId: z.string().nullable(),
  private: z.boolean(),
  followers: z.number().int(),
  following: z.number().int(),
  createdAt: z.number().int(),
});
export type PublicProfile = z.infer<typeof publicProfile>;

export const profileUpdate = z
  .object({ displayName: displayName.optional(), bio: bio.optional(), avatarMediaId: mediaIdInput.nullable().optional(), private: z.boolean().optional() })
  .strict()
  .refine((u) => Object.keys(u).length > 0, 'nothing to update');

const followStatus = z.object({ status: z.enum(['active', 'pending', 'none']) });
const byFollower = z.object({ followerId: userIdInput });
const byUser = z.object({ userId: userIdInput });
const done = z.object({ changed: z.boolean() });

export const UserActor = defineActor({
  type: 'user',
  state: userState,
  initialState: () => ({ exists: false, username: '', displayName: '', bio: '', avatarMediaId: null, createdAt: 0, updatedAt: 0, private: false, followers: 0, pendingEdges: [] }),
  persistence: { kind: 'durable' },
  onActivate: async (ctx) => {
    if (!ctx.state.exists) return;
    await ctx.services.social.edges.apply(ctx.state.pendingEdges, ctx.epoch);
    await project(ctx);
  },
  messages: {
    /** Idempotent: creating an existing profile returns it unchanged. */
    create: { input: z.object({ username: z.string().min(3).max(30), displayName }), output: publicProfile },
    getProfile: { input: z.object({}), output: publicProfile },
    updateProfile: { input: profileUpdate, output: publicProfile },
    /** `followerId` follows this user: active at once, or pending when the account is private. */
    follow: { input: byFollower, output: followStatus },
    /** Ends a follow or withdraws a request (by the follower); also "remove follower" (by this user). */
    unfollow: { input: byFollower, output: followStatus },
    approveFollower: { input: byFollower, output: followStatus },
    rejectFollower: { input: byFollower, output: followStatus },
    /** Blocks `userId`: also ends their follow of this user (the other direction is the other actor's). */
    block: { input: byUser, output: done },
    unblock: { input: byUser, output: done },
    mute: { input: byUser, output: done },
    unmute: { input: byUser, output: done },
  },
  handlers: {
    create: async (ctx, { username, displayName }) => {
      if (!ctx.state.exists) {
        const now = Date.now();
        ctx.setState({ ...ctx.state, exists: true, username, displayName, bio: '', avatarMediaId: null, createdAt: now, updatedAt: now });
        ctx.afterCommit(() => project(ctx));
      }
      return toPublic(ctx);
    },
    getProfile: (ctx) => toPublic(existing(ctx)),
    updateProfile: async (ctx, update) => {
      const s = existing(ctx).state;
      ctx.setState({
        ...s,
        ...(update.displayName !== undefined && { displayName: update.displayName }),
        ...(update.bio !== undefined && { bio: update.bio }),
        ...(update.avatarMediaId !== undefined && { avatarMediaId: update.avatarMediaId }),
        ...(update.private !== undefined && { private: update.private }),
        updatedAt: Date.now(),
      });
      ctx.afterCommit(() => project(ctx));
      return toPublic(ctx);
    },
    follow: async (ctx, { followerId }) => {
      const social = existing(ctx).services.social;
      if (followerId === ctx.key) throw new FlockError('GRAPH_SELF');
      const current = await social.edges.status('follow', ctx.key, followerId);
      if (current !== 'none') return { status: current };
      if (await social.blockedEitherWay(ctx.key, followerId)) throw new FlockError('GRAPH_BLOCKED');
      const following = await social.edges.count({ kind: 'follow', member: followerId, statuses: ['active', 'pending'] });
      if (following >= social.settings.maxFollowing) throw new FlockError('GRAPH_FOLLOW_LIMIT', `at most ${social.settings.maxFollowing} follows and requests`);
      const status: EdgeStatus = ctx.state.private ? 'pending' : 'active';
      changeEdges(ctx, [{ kind: 'follow', owner: ctx.key, member: followerId, status }], status === 'active' ? 1 : 0);
      ctx.afterCommit(() =>
        social.events.emit(status === 'active' ? 'graph:followCreated' : 'graph:followRequested', `follow:${ctx.key}:${followerId}:${ctx.epoch}:${Date.now()}`, { followerId, followeeId: ctx.key }),
      );
      return { status };
    },
    unfollow: async (ctx, { followerId }) => {
      const social = existing(ctx).services.social;
      const current = await social.edges.status('follow', ctx.key, followerId);
      if (current !== 'none') changeEdges(ctx, [{ kind: 'follow', owner: ctx.key, member: followerId, status: 'none' }], current === 'active' ? -1 : 0);
      if (current === 'active') {
        ctx.afterCommit(() => social.events.emit('graph:followRemoved', `unfollow:${ctx.key}:${followerId}:${ctx.epoch}:${Date.now()}`, { followerId, followeeId: ctx.key }));
      }
      return { status: 'none' as const };
    },
    approveFollower: async (ctx, { followerId }) => {
      const social = existing(ctx).services.social;
      const current = await social.edges.status('follow', ctx.key, followerId);
      if (current === 'active') return { status: current };
      if (current !== 'pending') throw new FlockError('GRAPH_REQUEST_NOT_FOUND');
      changeEdges(ctx, [{ kind: 'follow', owner: ctx.key, member: followerId, status: 'active' }], 1);
      ctx.afterCommit(() => social.events.emit('graph:followCreated', `follow:${ctx.key}:${followerId}:${ctx.epoch}:${Date.now()}`, { followerId, followeeId: ctx.key }));
      return { status: 'active' as const };
    },
    rejectFollower: async (ctx, { followerId }) => {
      const current = await existing(ctx).services.social.edges.status('follow', ctx.key, followerId);
      if (current !== 'pending') throw new FlockError('GRAPH_REQUEST_NOT_FOUND');
      changeEdges(ctx, [{ kind: 'follow', owner: ctx.key, member: followerId, status: 'none' }]);
      return { status: 'none' as const };
    },
    block: async (ctx, { userId }) => {
      const social = existing(ctx).services.social;
      if (userId === ctx.key) throw new FlockError('GRAPH_SELF');
      if ((await social.edges.status('block', ctx.key, userId)) === 'active') return { changed: false };
      if (!(await social.accounts.exists({ _id: userId }))) throw new FlockError('USER_NOT_FOUND');
      const writes: EdgeWrite[] = [{ kind: 'block', owner: ctx.key, member: userId, status: 'active' }];
      const theirFollow = await social.edges.status('follow', ctx.key, userId);
      if (theirFollow !== 'none') writes.push({ kind: 'follow', owner: ctx.key, member: userId, status: 'none' });
      changeEdges(ctx, writes, theirFollow === 'active' ? -1 : 0);
      ctx.afterCommit(() => social.events.emit('graph:blockCreated', `block:${ctx.key}:${userId}:${ctx.epoch}:${Date.now()}`, { blockerId: ctx.key, blockedId: userId }));
      return { changed: true };
    },
    unblock: (ctx, { userId }) => setOwnEdge(ctx, 'block', userId, 'none'),
    mute: async (ctx, { userId }) => {
      if (userId === ctx.key) throw new FlockError('GRAPH_SELF');
      if (!(await existing(ctx).services.social.accounts.exists({ _id: userId }))) throw new FlockError('USER_NOT_FOUND');
      return setOwnEdge(ctx, 'mute', userId, 'active');
    },
    unmute: (ctx, { userId }) => setOwnEdge(ctx, 'mute', userId, 'none'),
  },
});

type Ctx = ActorContext<UserState>;

function existing(ctx: Ctx): Ctx {
  if (!ctx.state.exists) throw new FlockError('USER_NOT_FOUND');
  return ctx;
}

async function setOwnEdge(ctx: Ctx, kind: 'block' | 'mute', userId: string, status: EdgeStatus): Promise<{ changed: boolean }> {
  const current = await existing(ctx).services.social.edges.status(kind, ctx.key, userId);
  if (current === status) return { changed: false };
  changeEdges(ctx, [{ kind, owner: ctx.key, member: userId, status }]);
  return { changed: true };
}

/**
 * Stages edge writes of this user's own edges, adjusts the follower count by
 * the follow edges that become or stop being active, and does the writes
 * (then the profile projection) once the state is saved.
 */
function changeEdges(ctx: Ctx, writes: EdgeWrite[], followersDelta = 0): void {
  ctx.setState({ ...ctx.state, followers: ctx.state.followers + followersDelta, pendingEdges: writes });
  ctx.afterCommit(async () => {
    await ctx.services.social.edges.apply(writes, ctx.epoch);
    await project(ctx);
  });
}

async function project(ctx: Ctx): Promise<void> {
  const s = ctx.state;
  await fencedUpsert(ctx.services.social.profiles, ctx.key, ctx.epoch, {
    username: s.username,
    usernameLower: s.username.toLowerCase(),
    displayName: s.displayName,
    avatarMediaId: s.avatarMediaId,
    private: s.private,
    followers: s.followers,
    createdAt: new Date(s.createdAt),
  });
}

async function toPublic(ctx: Ctx): Promise<PublicProfile> {
  const s = ctx.state;
  const following = s.exists ? await ctx.services.social.edges.count({ kind: 'follow', member: ctx.key, statuses: ['active'] }) : 0;
  return { userId: ctx.key, username: s.username, displayName: s.displayName, bio: s.bio, avatarMediaId: s.avatarMediaId, private: s.private, followers: s.followers, following, createdAt: s.createdAt };
}
