// Every event of the personal stream, declared once: its type name
// (`subsystem:camelCase`), what it means and its data schema. `deliver` is
// typed by this union (an unknown type or a wrong payload does not compile),
// the AsyncAPI document gives each type its payload, and the typed client
// gets the union to switch on.
import { z } from 'zod';
import { ACCOUNT_ROLES, OAUTH_PROVIDERS } from '../models/account.ts';
import { mediaView } from '../media/views.ts';
import { MEDIA_KINDS } from '../models/media.ts';
import { inviteView, messageView } from '../messaging/views.ts';
import { notificationView } from '../notifications/views.ts';
import { personalEventSchema, resumeResultOf, type PersonalEvent } from './envelope.ts';

/** One event type: the stream envelope with `type` fixed and `data` of its schema. */
const streamEvent = <T extends string, D extends z.ZodType>(type: T, summary: string, data: D) =>
  personalEventSchema.extend({ type: z.literal(type), data }).describe(summary);

/** Data of conversations:message and conversations:messageUpdated. */
export const conversationMessageData = z.object({ conversationId: z.string(), message: messageView });
/** Data of conversations:receipt. */
export const conversationReceiptData = z.object({ conversationId: z.string(), userId: z.string(), readSeq: z.number().int(), deliveredSeq: z.number().int() });

export const streamEventSchema = z.discriminatedUnion('type', [
  streamEvent(
    'auth:signedIn',
    'Someone signed in to your account with a password (a new session): tell the user if it was not them.',
    z.object({ sessionId: z.string(), ip: z.string() }),
  ),
  streamEvent(
    'auth:signedOutEverywhere',
    'Every session of your account was revoked (log out everywhere).',
    z.object({ sessions: z.number().int().describe('Sessions revoked') }),
  ),
  streamEvent(
    'auth:providerLinked',
    'A sign-in provider was linked to your account, so it signs in to it from now on: tell the user, so they can act (log out everywhere) if it was not them.',
    z.object({
      provider: z.enum(OAUTH_PROVIDERS),
      via: z
        .enum(['link', 'signIn'])
        .describe('link: linked from a signed-in session; signIn: a provider sign-in whose verified email matched your verified email'),
    }),
  ),
  streamEvent(
    'users:rolesChanged',
    'An admin changed your roles; removed roles revoked your sessions, added ones apply at the next refresh.',
    z.object({ roles: z.array(z.enum(ACCOUNT_ROLES)), by: z.string().describe('The admin') }),
  ),
  streamEvent(
    'notifications:changed',
    'A new notification, or a new event folded into an open one ("A and 12 others liked..."): replace yours by notificationId.',
    z.object({ notification: notificationView, unread: z.number().int().describe('Your unread notifications now') }),
  ),
  streamEvent(
    'notifications:retracted',
    'Notifications taken back (their post was deleted): remove them.',
    z.object({ notificationIds: z.array(z.string()), unread: z.number().int().describe('Your unread notifications now') }),
  ),
  streamEvent(
    'conversations:message',
    'A new message (or system message) in one of your conversations; after a crash one may come twice: drop repeats by (conversationId, seq).',
    conversationMessageData,
  ),
  streamEvent('conversations:messageUpdated', 'A message was edited, or deleted (a tombstone): replace it by (conversationId, seq).', conversationMessageData),
  streamEvent('conversations:receipt', "A member's read or delivery receipt moved forward.", conversationReceiptData),
  streamEvent(
    'conversations:invited',
    'Someone invited you to a group (your groupAdds setting did not let them add you directly): accept or decline it. Until you accept, you get nothing of the group.',
    inviteView,
  ),
  streamEvent(
    'media:uploaded',
    'Your upload is complete and stored; processing starts. Events of one media item come in order: uploaded, processing (percent), then ready or failed.',
    z.object({ mediaId: z.string(), kind: z.enum(MEDIA_KINDS).nullable(), bytes: z.number().int() }),
  ),
  streamEvent(
    'media:processing',
    'Processing of your media moved forward (percent only grows; after a retry on another node it may start again from 0).',
    z.object({ mediaId: z.string(), percent: z.number().int() }),
  ),
  streamEvent(
    'media:ready',
    'Your media is processed and can be shown: the view carries playback URLs (they expire; media:get gives fresh ones).',
    z.object({ media: mediaView }),
  ),
  streamEvent(
    'media:failed',
    'Your media could not be used: error.code says why (MEDIA_UNSUPPORTED_TYPE, MEDIA_CODEC_UNSUPPORTED, MEDIA_TOO_LARGE, MEDIA_PROCESSING_FAILED). Nothing of it is kept.',
    z.object({ mediaId: z.string(), error: z.object({ code: z.string(), message: z.string() }) }),
  ),
]);

export type StreamEvent = z.output<typeof streamEventSchema>;
export type StreamEventType = StreamEvent['type'];
export type StreamEventData<T extends StreamEventType> = Extract<StreamEvent, { type: T }>['data'];

/** `stream:resume`'s answer: events of the catalogue, or a resync. */
export const streamResumeSchema = resumeResultOf(streamEventSchema);

/**
 * Types stored before 0.2.0, read under their new names for one release: a
 * stream keeps events for a day, so a client that resumes just after the
 * upgrade still gets what it missed. The data of each is unchanged.
 */
const LEGACY_TYPES: Readonly<Record<string, StreamEventType>> = {
  'security.signed_in': 'auth:signedIn',
  'security.signed_out_everywhere': 'auth:signedOutEverywhere',
  'account.roles_changed': 'users:rolesChanged',
  notification: 'notifications:changed',
  'notification.retracted': 'notifications:retracted',
  'conversation.message': 'conversations:message',
  'conversation.message_updated': 'conversations:messageUpdated',
  'conversation.receipt': 'conversations:receipt',
};

/** A stored event as the catalogue describes it (under its current type name); null if it is not one. */
export function readStreamEvent(stored: PersonalEvent): StreamEvent | null {
  const renamed = Object.hasOwn(LEGACY_TYPES, stored.type) ? LEGACY_TYPES[stored.type] : undefined;
  const parsed = streamEventSchema.safeParse(renamed ? { ...stored, type: renamed } : stored);
  return parsed.success ? parsed.data : null;
}

/** Each type's data schema, for checks at run time. */
export const streamEventData: ReadonlyMap<StreamEventType, z.ZodType> = new Map(streamEventSchema.options.map((o) => [o.shape.type.value, o.shape.data]));

/** Appends events to users' personal streams and pushes them live: what actors and channels deliver through. */
export interface StreamDelivery {
  deliver<T extends StreamEventType>(userId: string, type: T, data: StreamEventData<T>): Promise<void>;
}
