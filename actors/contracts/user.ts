// UserActor's interface: one per user (key = user id). It owns the user's
// profile, privacy and settings, the follow edges that point at the user (followers and
// requests) with their exact count, and the blocks and mutes the user made.
import { z } from 'zod';
import { mediaIdInput, userIdInput } from '../../kernel/ids.ts';
import { GROUP_ADDS } from '../../models/profile.ts';
import { defineActorInterface } from '../define.ts';
import { displayName } from '../../kernel/display-text.ts';

export { displayName };
export const bio = z.string().max(300);

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

/** The user's own settings (never shown to others). */
export const userSettings = z.object({
  groupAdds: z
    .enum(GROUP_ADDS)
    .describe(
      'Who may add you to a group directly: everyone, following (only people you follow; the default) or nobody. Anyone else sends an invite you accept or decline.',
    ),
});
export type UserSettings = z.infer<typeof userSettings>;

export const settingsUpdate = userSettings
  .partial()
  .strict()
  .refine((u) => Object.keys(u).length > 0, 'nothing to update');

const followStatus = z.object({ status: z.enum(['active', 'pending', 'none']) });
const byFollower = z.object({ followerId: userIdInput });
const byUser = z.object({ userId: userIdInput });
const done = z.object({ changed: z.boolean() });

export const UserActor = defineActorInterface({
  type: 'user',
  messages: {
    /** Idempotent: creating an existing profile returns it unchanged. */
    create: { input: z.object({ username: z.string().min(3).max(30), displayName }), output: publicProfile },
    getProfile: { input: z.object({}), output: publicProfile },
    updateProfile: { input: profileUpdate, output: publicProfile },
    /** The user's own settings; the defaults for a user without a profile. */
    getSettings: { input: z.object({}), output: userSettings },
    updateSettings: { input: settingsUpdate, output: userSettings },
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
});
