// UserActor's implementation (interface: actors/contracts/user.ts). Durable:
// the state (profile, privacy, settings, the exact follower count) is saved in
// `actor_states` before every reply. Credentials and roles live in the
// account document (auth/).
//
// The documents the actor owns outside its state, the edges that point at the
// user (follows and requests) and those the user made (blocks, mutes), and
// the profile read model in `profiles`, are written by effects recorded with
// the state that counts them: after the save, before the reply, and again at
// the next activation if a crash may have cut them short. The edge writes are
// idempotent and fenced by the activation epoch, so a crash between the save
// and the writes never leaves the count and the edges apart.
import { z } from 'zod';
import { domainEvent, domainEventSchema } from '../events/domain.ts';
import { FlockError } from '../kernel/errors.ts';
import { fencedUpsert } from '../kernel/fenced.ts';
import { EDGE_KINDS, EDGE_STATUSES, type EdgeStatus } from '../models/edge.ts';
import { DEFAULT_GROUP_ADDS, GROUP_ADDS } from '../models/profile.ts';
import type { EdgeWrite } from '../social/edges.ts';
import { UserActor, type PublicProfile } from './contracts/user.ts';
import { implementActor, type ActorContext } from './define.ts';

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
  /** Who may add the user to groups directly (projected to `profiles` for ConversationActor). */
  groupAdds: z.enum(GROUP_ADDS).default(DEFAULT_GROUP_ADDS),
  /** Active follow edges pointing at this user: exact, kept with the edges. */
  followers: z.number().int().min(0).default(0),
  /** Edge writes of a turn before 0.2.0, redone once on activation (effects carry them now). */
  pendingEdges: z.array(edgeWrite).optional(),
});
type UserState = z.output<typeof userState>;

const userEffect = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('edges'), writes: z.array(edgeWrite) }),
  /** Copies the profile fields readers list into `profiles`. */
  z.object({ kind: z.literal('project') }),
  z.object({ kind: z.literal('event'), event: domainEventSchema }),
]);
type UserEffect = z.output<typeof userEffect>;
type Ctx = ActorContext<UserState, UserEffect>;

export const userActor = implementActor(UserActor, {
  state: userState,
  initialState: (): UserState => ({
    exists: false,
    username: '',
    displayName: '',
    bio: '',
    avatarMediaId: null,
    createdAt: 0,
    updatedAt: 0,
    private: false,
    groupAdds: DEFAULT_GROUP_ADDS,
    followers: 0,
  }),
  persistence: { kind: 'durable' },
  effects: { schema: userEffect, run: runEffect },
  onActivate: async (ctx) => {
    const { pendingEdges, ...state } = ctx.state;
    if (pendingEdges === undefined) return;
    ctx.setState(state);
    if (pendingEdges.length > 0) ctx.effect({ kind: 'edges', writes: pendingEdges });
    if (state.exists) ctx.effect({ kind: 'project' });
  },
  handlers: {
    create: async (ctx, { username, displayName }) => {
      if (!ctx.state.exists) {
        const now = Date.now();
        ctx.setState({ ...ctx.state, exists: true, username, displayName, bio: '', avatarMediaId: null, createdAt: now, updatedAt: now });
        ctx.effect({ kind: 'project' });
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
      ctx.effect({ kind: 'project' });
      return toPublic(ctx);
    },
    getSettings: (ctx) => ({ groupAdds: ctx.state.groupAdds }),
    updateSettings: async (ctx, update) => {
      const s = existing(ctx).state;
      if (update.groupAdds === undefined || update.groupAdds === s.groupAdds) return { groupAdds: s.groupAdds };
      ctx.setState({ ...s, groupAdds: update.groupAdds, updatedAt: Date.now() });
      ctx.effect({ kind: 'project' });
      return { groupAdds: update.groupAdds };
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
      followEvent(ctx, status === 'active' ? 'graph:followCreated' : 'graph:followRequested', followerId);
      return { status };
    },
    unfollow: async (ctx, { followerId }) => {
      const social = existing(ctx).services.social;
      const current = await social.edges.status('follow', ctx.key, followerId);
      if (current !== 'none') changeEdges(ctx, [{ kind: 'follow', owner: ctx.key, member: followerId, status: 'none' }], current === 'active' ? -1 : 0);
      if (current === 'active') followEvent(ctx, 'graph:followRemoved', followerId);
      return { status: 'none' as const };
    },
    approveFollower: async (ctx, { followerId }) => {
      const current = await existing(ctx).services.social.edges.status('follow', ctx.key, followerId);
      if (current === 'active') return { status: current };
      if (current !== 'pending') throw new FlockError('GRAPH_REQUEST_NOT_FOUND');
      changeEdges(ctx, [{ kind: 'follow', owner: ctx.key, member: followerId, status: 'active' }], 1);
      followEvent(ctx, 'graph:followCreated', followerId);
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
      ctx.effect({
        kind: 'event',
        event: domainEvent('graph:blockCreated', `graph:blockCreated:${ctx.key}:${userId}:${ctx.nextVersion}`, { blockerId: ctx.key, blockedId: userId }),
      });
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
 * the follow edges that become or stop being active, and records the writes
 * (then the profile projection, which shows the count) as effects.
 */
function changeEdges(ctx: Ctx, writes: EdgeWrite[], followersDelta = 0): void {
  ctx.setState({ ...ctx.state, followers: ctx.state.followers + followersDelta });
  ctx.effect({ kind: 'edges', writes });
  if (followersDelta !== 0) ctx.effect({ kind: 'project' });
}

function followEvent(ctx: Ctx, type: 'graph:followCreated' | 'graph:followRequested' | 'graph:followRemoved', followerId: string): void {
  ctx.effect({ kind: 'event', event: domainEvent(type, `${type}:${ctx.key}:${followerId}:${ctx.nextVersion}`, { followerId, followeeId: ctx.key }) });
}

async function runEffect(ctx: Ctx, effect: UserEffect): Promise<void> {
  const social = ctx.services.social;
  switch (effect.kind) {
    case 'edges':
      await social.edges.apply(effect.writes, ctx.epoch);
      return;
    case 'project': {
      const s = ctx.state;
      await fencedUpsert(social.profiles, ctx.key, ctx.epoch, {
        username: s.username,
        usernameLower: s.username.toLowerCase(),
        displayName: s.displayName,
        avatarMediaId: s.avatarMediaId,
        private: s.private,
        groupAdds: s.groupAdds,
        followers: s.followers,
        createdAt: new Date(s.createdAt),
      });
      return;
    }
    case 'event':
      await social.events.append(effect.event);
      return;
  }
}

async function toPublic(ctx: Ctx): Promise<PublicProfile> {
  const s = ctx.state;
  const following = s.exists ? await ctx.services.social.edges.count({ kind: 'follow', member: ctx.key, statuses: ['active'] }) : 0;
  return {
    userId: ctx.key,
    username: s.username,
    displayName: s.displayName,
    bio: s.bio,
    avatarMediaId: s.avatarMediaId,
    private: s.private,
    followers: s.followers,
    following,
    createdAt: s.createdAt,
  };
}
