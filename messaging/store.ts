// The documents of messaging (conversations, their messages and resend keys), the limits,
// and the read paths the conversations channel serves without asking the
// actor: history, one conversation, a user's conversation list, invites and
// unread totals.
import type { Connection } from 'mongoose';
import mongoose from 'mongoose';
import { FlockError } from '../kernel/errors.ts';
import { conversationModel, type ConversationDoc, type ConversationMember, type ConversationModel, type Folder } from '../models/conversation.ts';
import { messageId, messageModel, type MessageDoc, type MessageModel } from '../models/message.ts';
import { MESSAGE_KEY_TTL_INDEX, messageKeyId, messageKeyModel, type MessageKeyDoc, type MessageKeyModel } from '../models/message-key.ts';
import { findByIds, type IdLookup } from '../kernel/by-ids.ts';

export interface MessagingSettings {
  /** Members of a group, owner included. */
  maxMembers: number;
  /** How long a resend key (sender + client message id) names its message. */
  resendWindowMs: number;
  idLookup: IdLookup;
  /** Whether the database deletes expired resend keys itself (a TTL index; not on FerretDB v1). */
  ttlIndexes: boolean;
  /** Conversations (the most recently active) unread totals count over. */
  unreadScan: number;
}

/** Batches a conversation list reads before it returns a short page. */
const LIST_ROUNDS = 5;

export const defaultMessagingSettings: MessagingSettings = {
  maxMembers: 256,
  resendWindowMs: 24 * 60 * 60_000,
  idLookup: 'in',
  ttlIndexes: true,
  unreadScan: 100,
};

/** What conversations:unread answers. */
export interface UnreadTotals {
  unread: number;
  conversations: number;
  requests: number;
  /** More conversations than were counted: the totals cover the most recently active ones. */
  capped: boolean;
}

/** Who may read which messages of a conversation. */
export interface Reader {
  doc: ConversationDoc;
  /** Set for current members. */
  member: ConversationMember | undefined;
  /** First and last sequence numbers the reader may see. */
  from: number;
  to: number;
}

export class MessagingStore {
  readonly conversations: ConversationModel;
  readonly messages: MessageModel;
  readonly keys: MessageKeyModel;

  constructor(
    connection: Connection,
    readonly settings: MessagingSettings,
  ) {
    this.conversations = conversationModel(connection);
    this.messages = messageModel(connection);
    this.keys = messageKeyModel(connection);
  }

  async init(): Promise<void> {
    await Promise.all([this.conversations.init(), this.messages.init(), this.keys.init()]);
    if (this.settings.ttlIndexes) await this.keys.collection.createIndex(MESSAGE_KEY_TTL_INDEX.key, MESSAGE_KEY_TTL_INDEX.options);
  }

  async conversation(id: string): Promise<ConversationDoc | null> {
    return this.conversations.findById(id).lean<ConversationDoc>();
  }

  /**
   * The conversation as `userId` may read it: current members from their join,
   * former members up to when they left. Anyone else gets
   * CONVERSATION_NOT_FOUND (a conversation's existence is not disclosed).
   */
  async reader(conversationId: string, userId: string): Promise<Reader> {
    const doc = await this.conversation(conversationId);
    const member = doc?.members.find((m) => m.userId === userId);
    if (doc && member) return { doc, member, from: member.joinedSeq, to: doc.lastSeq };
    // The latest stint of a former member (someone may leave and be added again).
    const former = doc?.former.filter((f) => f.userId === userId).at(-1);
    if (doc && former) return { doc, member: undefined, from: former.joinedSeq, to: Math.min(former.leftSeq, doc.lastSeq) };
    throw new FlockError('CONVERSATION_NOT_FOUND');
  }

  /** Messages with sequence numbers in [from, to], oldest first (missing numbers are skipped). */
  async range(conversationId: string, from: number, to: number): Promise<MessageDoc[]> {
    if (to < from) return [];
    const ids: string[] = [];
    for (let seq = from; seq <= to; seq++) ids.push(messageId(conversationId, seq));
    const docs = await findByIds(this.messages, ids, this.settings.idLookup);
    return docs.sort((a, b) => a.seq - b.seq);
  }

  async message(conversationId: string, seq: number): Promise<MessageDoc | null> {
    return this.messages.findById(messageId(conversationId, seq)).lean<MessageDoc>();
  }

  /** The sequence number a resend key names while its window lasts, or null. */
  async resendKey(conversationId: string, senderId: string, clientMessageId: string): Promise<number | null> {
    const key = await this.keys.findById(messageKeyId(conversationId, senderId, clientMessageId)).lean<MessageKeyDoc>();
    return key && new Date(key.expireAt).getTime() > Date.now() ? key.seq : null;
  }

  /** A user's conversations in a folder, latest activity first; `before` is the lastMessageAt/_id of the previous page's last. */
  async list(userId: string, folder: Folder, limit: number, before?: { t: number; id: string }): Promise<ConversationDoc[]> {
    // The folder belongs to one member (an element of members), so it is
    // filtered here, a few batches at most; the caller's cursor is the last
    // conversation returned.
    const out: ConversationDoc[] = [];
    let cursor = before;
    for (let round = 0; round < LIST_ROUNDS && out.length < limit; round++) {
      const filter: Record<string, unknown> = { memberIds: userId };
      if (cursor) {
        const t = new Date(cursor.t);
        // trusted() marks one object: each operator is marked, as sanitizeFilter would wrap them in $eq.
        filter.$or = [{ lastMessageAt: mongoose.trusted({ $lt: t }) }, { lastMessageAt: t, _id: mongoose.trusted({ $lt: cursor.id }) }];
      }
      const batch = await this.conversations
        .find(filter)
        .sort({ lastMessageAt: -1, _id: -1 })
        .limit(limit * 2)
        .lean<ConversationDoc[]>();
      for (const doc of batch) {
        if (out.length < limit && doc.members.find((m) => m.userId === userId)?.folder === folder) out.push(doc);
      }
      if (batch.length < limit * 2) break;
      const last = batch.at(-1)!;
      cursor = { t: new Date(last.lastMessageAt).getTime(), id: last._id };
    }
    return out;
  }

  /** Groups the user is invited to (pending invites), latest activity first; `before` is the lastMessageAt/_id of the previous page's last. */
  async invites(userId: string, limit: number, before?: { t: number; id: string }): Promise<ConversationDoc[]> {
    const filter: Record<string, unknown> = { invitedIds: userId };
    if (before) {
      const t = new Date(before.t);
      filter.$or = [{ lastMessageAt: mongoose.trusted({ $lt: t }) }, { lastMessageAt: t, _id: mongoose.trusted({ $lt: before.id }) }];
    }
    return this.conversations.find(filter).sort({ lastMessageAt: -1, _id: -1 }).limit(limit).lean<ConversationDoc[]>();
  }

  /**
   * Unread messages over a user's inbox conversations and the number of open
   * message requests, counted over the `unreadScan` most recently active
   * conversations (one bounded read on the index of a user's conversations);
   * `capped` when the user has more, whose counts are left out.
   */
  async unreadTotals(userId: string): Promise<UnreadTotals> {
    const scan = this.settings.unreadScan;
    const docs = await this.conversations
      .find({ memberIds: userId }, { lastSeq: 1, members: 1 })
      .sort({ lastMessageAt: -1, _id: -1 })
      .limit(scan + 1)
      .lean<ConversationDoc[]>();
    const capped = docs.length > scan;
    if (capped) docs.pop();
    let unread = 0;
    let conversations = 0;
    let requests = 0;
    for (const doc of docs) {
      const me = doc.members.find((m) => m.userId === userId);
      if (!me) continue;
      if (me.folder === 'requests') requests++;
      if (me.folder !== 'inbox') continue;
      const n = Math.max(0, doc.lastSeq - me.readSeq);
      unread += n;
      if (n > 0) conversations++;
    }
    return { unread, conversations, requests, capped };
  }
}
