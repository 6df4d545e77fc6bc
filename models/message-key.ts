// Resend keys of messages: one document per (conversation, sender, client
// message id), naming the sequence number of the message it made, written
// only by the conversation's actor (fenced, with the message). The key is the
// document's `_id`, so the unique index per conversation, sender and client
// id is the `_id` index: a point read on MongoDB and on the embedded FerretDB
// (which pushes down only `{ _id }` filters), and two documents for one key
// cannot exist.
//
// A key holds for the resend window (CONVERSATION_RESEND_WINDOW_HOURS) from
// its message: reads ignore one past `expireAt`, and MongoDB deletes it then
// (a TTL index; FerretDB v1 has none, so there expired keys stay, ignored).
//
// Access paths and their indexes:
//   the message a resend names                   _id = `{conversationId}|{senderId}|{clientMessageId}`
//   expiry (MongoDB only)                        { expireAt } TTL
import { Schema, type Connection, type Model } from 'mongoose';
import { modelOn } from '../kernel/mongo.ts';

export const MESSAGE_KEY_COLLECTION = 'message_keys';

export interface MessageKeyDoc {
  _id: string;
  /** The message the key made. */
  seq: number;
  /** The end of the resend window. */
  expireAt: Date;
  epoch: number;
}

export function messageKeyId(conversationId: string, senderId: string, clientMessageId: string): string {
  return `${conversationId}|${senderId}|${clientMessageId}`;
}

export const messageKeySchema = new Schema<MessageKeyDoc>(
  {
    _id: { type: String, required: true },
    seq: { type: Number, required: true },
    expireAt: { type: Date, required: true },
    epoch: { type: Number, required: true },
  },
  { collection: MESSAGE_KEY_COLLECTION, versionKey: false, minimize: false, strict: 'throw' },
);

export type MessageKeyModel = Model<MessageKeyDoc>;

export function messageKeyModel(connection: Connection): MessageKeyModel {
  return modelOn(connection, 'MessageKey', messageKeySchema);
}

/** The TTL index, created by the store where the database has TTL indexes (not FerretDB v1). */
export const MESSAGE_KEY_TTL_INDEX = { key: { expireAt: 1 }, options: { name: 'expireAt_ttl', expireAfterSeconds: 0 } } as const;
