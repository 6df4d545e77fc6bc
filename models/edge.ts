// Edges of the social graph and of posts: follows and follow requests, blocks,
// mutes, likes, and the replies, reposts and quotes a post counts. One
// collection, one shape: an edge (kind, owner, member) has a status, and only
// the owner's actor writes it (followee for follows, blocker for blocks, the
// post for likes and children). Writes are fenced by the owner's activation
// epoch, and edges are never deleted (status "none"), so a stale owner that
// wakes up cannot resurrect or remove one (social/edges.ts).
//
// Access paths and their indexes:
//   point lookups (does A follow B, did U like P)   _id = kind|owner|member
//   an owner's members, newest first (followers,
//   requests, likers, blocks, mutes)                 { kind, owner, status, at, member }
//   a member's owners, newest first (following)     { kind, member, status, at, owner }
import { Schema, type Connection, type Model } from 'mongoose';
import { modelOn } from '../kernel/mongo.ts';

export const EDGE_COLLECTION = 'edges';

export const EDGE_KINDS = ['follow', 'block', 'mute', 'like', 'reply', 'repost', 'quote'] as const;
export type EdgeKind = (typeof EDGE_KINDS)[number];
export const EDGE_STATUSES = ['active', 'pending', 'none'] as const;
export type EdgeStatus = (typeof EDGE_STATUSES)[number];

export interface EdgeDoc {
  /** `${kind}|${owner}|${member}` */
  _id: string;
  kind: EdgeKind;
  owner: string;
  member: string;
  status: EdgeStatus;
  /** When the edge last changed status. */
  at: Date;
  /** Epoch of the owner activation that wrote it last (fencing). */
  epoch: number;
}

export const edgeSchema = new Schema<EdgeDoc>(
  {
    _id: { type: String, required: true },
    kind: { type: String, required: true, enum: EDGE_KINDS },
    owner: { type: String, required: true },
    member: { type: String, required: true },
    status: { type: String, required: true, enum: EDGE_STATUSES },
    at: { type: Date, required: true },
    epoch: { type: Number, required: true },
  },
  { collection: EDGE_COLLECTION, versionKey: false, strict: 'throw' },
);
edgeSchema.index({ kind: 1, owner: 1, status: 1, at: -1, member: -1 });
edgeSchema.index({ kind: 1, member: 1, status: 1, at: -1, owner: -1 });

export type EdgeModel = Model<EdgeDoc>;

export function edgeModel(connection: Connection): EdgeModel {
  return modelOn(connection, 'Edge', edgeSchema);
}

export function edgeId(kind: EdgeKind, owner: string, member: string): string {
  return `${kind}|${owner}|${member}`;
}
