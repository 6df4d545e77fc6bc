// The one path from the node to its clients: every server-to-client event
// and every room. Personal-stream events are appended to the user's stream
// and pushed to the user's room on every node; ephemeral events go to users,
// rooms or one socket. Names and payloads are typed by the catalogues
// (channels/server-events.ts, streams/catalogue.ts); outside production each
// payload is also checked against its schema before it leaves, so a test that
// exercises an emit fails on a payload the catalogue does not describe.
import type { Server, Socket } from 'socket.io';
import type { z } from 'zod';
import type { ClientToServerEvents, InterServerEvents, SocketData } from '../channels/event-map.ts';
import type { SocketRooms } from '../channels/define.ts';
import { serverEvents, type ServerEventName, type ServerEventPayload, type ServerToClientEvents } from '../channels/server-events.ts';
import type { FeedLive } from '../feeds/live.ts';
import { FlockError } from '../kernel/errors.ts';
import { describeIssues, issuesOf } from '../kernel/zod-issues.ts';
import type { PresenceChange } from '../presence/presence.ts';
import { streamEventData, type StreamDelivery, type StreamEvent, type StreamEventData, type StreamEventType } from '../streams/catalogue.ts';
import type { PersonalStream } from '../streams/personal-stream.ts';

export type FlockServer = Server<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>;
export type FlockSocket = Socket<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>;

/** Room names: the only place they are spelled. */
export const rooms = {
  /** Every socket signed in as the user, on every node. */
  user: (userId: string) => `user:${userId}`,
  /** Sockets watching the user's presence. */
  presence: (userId: string) => `presence:${userId}`,
  /** Sockets whose live home timeline shows the author's posts. */
  feed: (authorId: string) => `feed:${authorId}`,
  /** Every socket of the user that watches its home timeline. */
  feedWatch: (userId: string) => `feedwatch:${userId}`,
} as const;

const PRESENCE_PREFIX = rooms.presence('');
const FEED_PREFIX = rooms.feed('');
const FEED_WATCH_PREFIX = rooms.feedWatch('');

export class Delivery implements StreamDelivery, FeedLive {
  constructor(
    private readonly io: FlockServer,
    private readonly streams: PersonalStream,
    /** Check every payload against its schema before it leaves (on outside production). */
    private readonly check: boolean,
  ) {}

  /** Appends an event to the user's personal stream and pushes it to the user's sockets on every node. */
  async deliver<T extends StreamEventType>(userId: string, type: T, data: StreamEventData<T>): Promise<void> {
    if (this.check) this.assert(`stream event ${type}`, streamEventData.get(type), data);
    const appended = await this.streams.append(userId, { type, data });
    // The stream returns what replay will return (JSON round-tripped); its type and data are the ones given, typed by the catalogue.
    // eslint-disable-next-line @typescript-eslint/no-unsafe-type-assertion -- type and data are typed together by the catalogue.
    const event = { ...appended, type, data: appended.data } as StreamEvent;
    this.io.to(rooms.user(userId)).emit('stream:event', event);
  }

  /** An ephemeral event (never stored) to every socket of the users, on every node. */
  toUsers<E extends ServerEventName>(userIds: readonly string[], event: E, payload: ServerEventPayload<E>): void {
    if (userIds.length === 0) return;
    this.emit(this.io.to(userIds.map(rooms.user)), event, payload);
  }

  /** An event for one socket of this node. */
  toSocket<E extends ServerEventName>(socket: FlockSocket, event: E, payload: ServerEventPayload<E>): void {
    this.emit(socket, event, payload);
  }

  /** A presence transition, to the sockets of this node that watch the user (every node hears every transition). */
  presenceChanged(change: PresenceChange): void {
    this.emit(this.io.local.to(rooms.presence(change.userId)), 'presence:update', change);
  }

  // ---- the live home timeline (FeedLive) ----

  post(authorId: string, payload: ServerEventPayload<'feeds:post'>, except: readonly string[] = []): void {
    const watchers = this.io.to(rooms.feed(authorId));
    this.emit(except.length > 0 ? watchers.except(except.map(rooms.user)) : watchers, 'feeds:post', payload);
  }

  deleted(authorId: string, payload: ServerEventPayload<'feeds:deleted'>): void {
    this.emit(this.io.to(rooms.feed(authorId)), 'feeds:deleted', payload);
  }

  watchAuthor(userId: string, authorId: string, watch: boolean): void {
    const sockets = this.io.in(rooms.feedWatch(userId));
    if (watch) sockets.socketsJoin(rooms.feed(authorId));
    else sockets.socketsLeave(rooms.feed(authorId));
  }

  // ---- rooms of one socket ----

  /**
   * Puts a socket in its user's room (personal events from any node reach it
   * there), or takes it out of that room and of every other room it joined as
   * that user (presence watches, the live feed), so a signed-out socket hears
   * nothing private.
   */
  bindUser(socket: FlockSocket, userId: string, bound: boolean): void {
    if (bound) void socket.join(rooms.user(userId));
    else for (const room of [...socket.rooms]) if (room !== socket.id) void socket.leave(room);
  }

  /** What a channel handler may change about its own socket's subscriptions. */
  roomsOf(socket: FlockSocket, userId: string | undefined): SocketRooms {
    const joined = (prefix: string) => [...socket.rooms].filter((r) => r.startsWith(prefix));
    return {
      watchPresence: (userIds) => void socket.join(userIds.map(rooms.presence)),
      unwatchPresence: (userIds) => userIds.forEach((id) => void socket.leave(rooms.presence(id))),
      presenceWatched: () => joined(PRESENCE_PREFIX).length,
      watchFeeds: (authorIds) => {
        if (userId === undefined) throw new FlockError('AUTH_REQUIRED');
        void socket.join([rooms.feedWatch(userId), ...authorIds.map(rooms.feed)]);
      },
      unwatchFeeds: () => {
        for (const room of [...joined(FEED_PREFIX), ...joined(FEED_WATCH_PREFIX)]) void socket.leave(room);
      },
      watchingFeeds: () => joined(FEED_WATCH_PREFIX).length > 0,
    };
  }

  private emit<E extends ServerEventName>(target: { emit(event: E, payload: ServerEventPayload<E>): unknown }, event: E, payload: ServerEventPayload<E>): void {
    if (this.check) this.assert(event, serverEvents[event].payload, payload);
    target.emit(event, payload);
  }

  private assert(what: string, schema: z.ZodType | undefined, value: unknown): void {
    if (!schema) throw new FlockError('SERVER_INTERNAL', `${what} is not in the catalogue`);
    const parsed = schema.safeParse(value);
    if (!parsed.success) throw new FlockError('SERVER_INTERNAL', describeIssues(`${what} does not match its schema`, issuesOf(parsed.error)));
  }
}
