// Durable actor state: one document per actor, written only by the activation
// that owns the actor. `epoch` is the owner's fencing token and `version`
// counts writes, so a write lands only if it comes from the current owner and
// follows the version it read: a single-document atomic update, which is right
// on MongoDB and on FerretDB alike (no transactions needed).
import mongoose, { Schema, type Connection, type InferSchemaType, type Model } from 'mongoose';
import { modelOn } from '../kernel/mongo.ts';

export const actorStateSchema = new Schema(
  {
    _id: { type: String, required: true },
    type: { type: String, required: true },
    key: { type: String, required: true },
    epoch: { type: Number, required: true, min: 0 },
    version: { type: Number, required: true, min: 0 },
    state: { type: Schema.Types.Mixed },
    /** Effects of the last commit, as JSON (actors/activation.ts). */
    pending: { type: [String], default: [] },
    updatedAt: { type: Date, required: true },
  },
  { collection: 'actor_states', versionKey: false, minimize: false, strict: 'throw' },
);
actorStateSchema.index({ type: 1, key: 1 }, { unique: true });

export type ActorStateDoc = InferSchemaType<typeof actorStateSchema>;

export type ActorStateModel = Model<ActorStateDoc>;

export const ActorState: ActorStateModel = mongoose.model<ActorStateDoc>('ActorState', actorStateSchema);

/** The model on a given connection (the actor runtime may use its own). */
export function actorStateModel(connection: Connection): ActorStateModel {
  return modelOn(connection, 'ActorState', actorStateSchema);
}

export function actorDocId(type: string, key: string): string {
  return `${type}/${key}`;
}
