// What the live home timeline needs from the realtime layer: the feed
// consumer (consumers/feeds.ts) and the graph channel use it, the node's
// delivery module (server/delivery.ts) implements it with Socket.IO rooms.
import type { PostView } from '../social/views.ts';

export interface FeedLive {
  /** A new post or repost of `authorId`, to the sockets watching the author's posts (`feeds:post`), except those of the users in `except`. */
  post(authorId: string, payload: { post: PostView; cursor: string }, except?: readonly string[]): void;
  /** A post of `authorId` was deleted (`feeds:deleted`). */
  deleted(authorId: string, payload: { postId: string; authorId: string }): void;
  /** Adds the author to (or removes them from) the live timeline of every watching socket of the user, on every node. */
  watchAuthor(userId: string, authorId: string, watch: boolean): void;
}
