// ConversationActor's interface: one per conversation (key = conversation
// id). It owns the conversation document (members, invites, roles, folders,
// receipts, the sequence counter) and the conversation's messages, so every
// member sees the same order and receipts and unread counts are exact.
import { z } from 'zod';
import { idempotencyKeyInput, mediaIdInput, userIdInput } from '../../kernel/ids.ts';
import { messageView } from '../../messaging/views.ts';
import { defineActorInterface } from '../define.ts';

export const MESSAGE_TEXT_MAX = 4_000;
export const MESSAGE_MEDIA_MAX = 10;
export const TITLE_MAX = 100;
/** Members added in one request. */
export const ADD_MAX = 50;

export const groupTitle = z.string().trim().min(1).max(TITLE_MAX);
export const messageText = z.string().max(MESSAGE_TEXT_MAX);
export const mediaIds = z.array(mediaIdInput).max(MESSAGE_MEDIA_MAX);

const changed = z.object({ changed: z.boolean() });

export const ConversationActor = defineActorInterface({
  type: 'conversation',
  messages: {
    /** Creates the 1:1 conversation of userId and otherId (key = directConversationId). Idempotent. */
    openDirect: { input: z.object({ userId: userIdInput, otherId: userIdInput }), output: changed },
    createGroup: { input: z.object({ userId: userIdInput, title: groupTitle, memberIds: z.array(userIdInput).max(ADD_MAX) }), output: changed },
    /** Adds those whose groupAdds setting lets userId add them; invites the others. */
    addMembers: {
      input: z.object({ userId: userIdInput, memberIds: z.array(userIdInput).min(1).max(ADD_MAX) }),
      output: z.object({ added: z.array(z.string()), invited: z.array(z.string()) }),
    },
    /** Removes a member, or withdraws an invite. */
    removeMember: { input: z.object({ userId: userIdInput, memberId: userIdInput }), output: changed },
    /** The invitee accepts (joins the group) or declines an invite. */
    respondInvite: { input: z.object({ userId: userIdInput, accept: z.boolean() }), output: changed },
    leave: { input: z.object({ userId: userIdInput }), output: changed },
    rename: { input: z.object({ userId: userIdInput, title: groupTitle }), output: changed },
    setRole: { input: z.object({ userId: userIdInput, memberId: userIdInput, role: z.enum(['admin', 'member']) }), output: changed },
    send: {
      input: z.object({
        userId: userIdInput,
        clientMessageId: idempotencyKeyInput,
        text: messageText,
        mediaIds,
        replyTo: z.number().int().min(1).nullable(),
      }),
      output: z.object({ message: messageView, duplicate: z.boolean() }),
    },
    edit: { input: z.object({ userId: userIdInput, seq: z.number().int().min(1), text: messageText.min(1) }), output: z.object({ message: messageView }) },
    delete: { input: z.object({ userId: userIdInput, seq: z.number().int().min(1) }), output: z.object({ message: messageView }) },
    /** Moves the member's receipts forward (never back, never past the last message). */
    receipt: {
      input: z.object({ userId: userIdInput, readSeq: z.number().int().min(0).optional(), deliveredSeq: z.number().int().min(0).optional() }),
      output: z.object({ readSeq: z.number().int(), deliveredSeq: z.number().int() }),
    },
    /** Accepts (inbox) or declines a message request. */
    setFolder: { input: z.object({ userId: userIdInput, folder: z.enum(['inbox', 'declined']) }), output: changed },
  },
});
