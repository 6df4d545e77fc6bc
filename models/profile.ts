// Profiles as other users see them: a read model projected by UserActor (the
// owner of the profile) after every change, fenced by its activation epoch.
// Read paths hydrate authors and apply privacy from here in one query instead
// of one actor ask per user; ConversationActor reads who may add the user to
// groups (groupAdds, never shown to others) from here too.
//
// Access paths: by id (hydration, privacy), by lowercase username (mentions).
import { Schema, type Connection, type Model } from 'mongoose';
import { modelOn } from '../kernel/mongo.ts';

export const PROFILE_COLLECTION = 'profiles';

/**
 * Who may add the user to a group directly: everyone, only the people the
 * user follows, or nobody; anyone else sends an invite the user accepts or
 * declines (ConversationActor reads it from here).
 */
export const GROUP_ADDS = ['everyone', 'following', 'nobody'] as const;
export type GroupAdds = (typeof GROUP_ADDS)[number];
export const DEFAULT_GROUP_ADDS: GroupAdds = 'following';

export interface ProfileDoc {
  _id: string;
  username: string;
  usernameLower: string;
  displayName: string;
  avatarMediaId: string | null;
  private: boolean;
  /** Absent in profiles projected before the setting existed: DEFAULT_GROUP_ADDS. */
  groupAdds?: GroupAdds;
  followers: number;
  createdAt: Date;
  epoch: number;
}

export const profileSchema = new Schema<ProfileDoc>(
  {
    _id: { type: String, required: true },
    username: { type: String, required: true },
    usernameLower: { type: String, required: true },
    displayName: { type: String, required: true },
    avatarMediaId: { type: String, default: null },
    private: { type: Boolean, required: true },
    groupAdds: { type: String, enum: GROUP_ADDS, default: DEFAULT_GROUP_ADDS },
    followers: { type: Number, required: true },
    createdAt: { type: Date, required: true },
    epoch: { type: Number, required: true },
  },
  { collection: PROFILE_COLLECTION, versionKey: false, minimize: false, strict: 'throw' },
);
profileSchema.index({ usernameLower: 1 });

export type ProfileModel = Model<ProfileDoc>;

export function profileModel(connection: Connection): ProfileModel {
  return modelOn(connection, 'Profile', profileSchema);
}
