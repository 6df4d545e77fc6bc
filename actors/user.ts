// UserActor: owns a user's profile. Credentials and roles live in the account
// document (server/auth); everything a person shows about themselves lives
// here. Durable: a profile edit is saved before it is acknowledged.
import { z } from 'zod';
import { FlockError } from '../server/errors.ts';
import { defineActor } from './define.ts';

export const displayName = z.string().trim().min(1).max(50);
export const bio = z.string().max(300);
export const mediaId = z.string().regex(/^m_[A-Za-z0-9_-]{6,40}$/);

const profileState = z.object({
  exists: z.boolean(),
  username: z.string(),
  displayName: z.string(),
  bio: z.string(),
  avatarMediaId: z.string().nullable(),
  createdAt: z.number().int(),
  updatedAt: z.number().int(),
});

export const publicProfile = z.object({
  userId: z.string(),
  username: z.string(),
  displayName: z.string(),
  bio: z.string(),
  avatarMediaId: z.string().nullable(),
  createdAt: z.number().int(),
});
export type PublicProfile = z.infer<typeof publicProfile>;

export const profileUpdate = z
  .object({ displayName: displayName.optional(), bio: bio.optional(), avatarMediaId: mediaId.nullable().optional() })
  .strict()
  .refine((u) => Object.keys(u).length > 0, 'nothing to update');

export const UserActor = defineActor({
  type: 'user',
  state: profileState,
  initialState: () => ({ exists: false, username: '', displayName: '', bio: '', avatarMediaId: null, createdAt: 0, updatedAt: 0 }),
  persistence: { kind: 'durable' },
  messages: {
    /** Idempotent: creating an existing profile returns it unchanged. */
    create: { input: z.object({ username: z.string().min(3).max(30), displayName }), output: publicProfile },
    getProfile: { input: z.object({}), output: publicProfile },
    updateProfile: { input: profileUpdate, output: publicProfile },
  },
  handlers: {
    create: (ctx, { username, displayName }) => {
      if (!ctx.state.exists) {
        const now = Date.now();
        ctx.setState({ exists: true, username, displayName, bio: '', avatarMediaId: null, createdAt: now, updatedAt: now });
      }
      return toPublic(ctx.key, ctx.state);
    },
    getProfile: (ctx) => {
      if (!ctx.state.exists) throw new FlockError('USER_NOT_FOUND');
      return toPublic(ctx.key, ctx.state);
    },
    updateProfile: (ctx, update) => {
      if (!ctx.state.exists) throw new FlockError('USER_NOT_FOUND');
      ctx.setState({
        ...ctx.state,
        ...(update.displayName !== undefined && { displayName: update.displayName }),
        ...(update.bio !== undefined && { bio: update.bio }),
        ...(update.avatarMediaId !== undefined && { avatarMediaId: update.avatarMediaId }),
        updatedAt: Date.now(),
      });
      return toPublic(ctx.key, ctx.state);
    },
  },
});

function toPublic(userId: string, s: z.infer<typeof profileState>): PublicProfile {
  return { userId, username: s.username, displayName: s.displayName, bio: s.bio, avatarMediaId: s.avatarMediaId, createdAt: s.createdAt };
}
