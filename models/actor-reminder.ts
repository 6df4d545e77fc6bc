// Durable actor reminders: one document per (actor, reminder name). A node
// takes a due reminder by moving its lease forward (single-document atomic),
// delivers it to the actor, then reschedules or deletes it, conditional on the
// reminder not having been replaced meanwhile (`token`).
import { Schema, type Connection, type InferSchemaType, type Model } from 'mongoose';
import { modelOn } from '../kernel/mongo.ts';

export const actorReminderSchema = new Schema(
  {
    _id: { type: String, required: true },
    type: { type: String, required: true },
    key: { type: String, required: true },
    name: { type: String, required: true },
    message: { type: String, required: true },
    input: { type: Schema.Types.Mixed },
    dueAt: { type: Date, required: true },
    periodMs: { type: Number, min: 0 },
    leaseUntil: { type: Date, required: true },
    token: { type: String, required: true },
  },
  { collection: 'actor_reminders', versionKey: false, minimize: false, strict: 'throw' },
);
actorReminderSchema.index({ dueAt: 1 });

export type ActorReminderDoc = InferSchemaType<typeof actorReminderSchema>;
export type ActorReminderModel = Model<ActorReminderDoc>;

export function actorReminderModel(connection: Connection): ActorReminderModel {
  return modelOn(connection, 'ActorReminder', actorReminderSchema);
}
