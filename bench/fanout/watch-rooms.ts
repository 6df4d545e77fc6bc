// Puts followers' sockets into the rooms `feeds:watch` would put them in,
// without a feeds:watch per socket. On the embedded FerretDB each feeds:watch
// reads the watcher's follows (feeds/home.ts `following`), a query FerretDB
// answers by scanning the whole edges collection (~20,000 documents here,
// about 1.5 s, one at a time), so 10,000 of them would take hours; the bench
// times a sample of real feeds:watch calls and reports that instead.
//
// The join goes through the nodes' own Socket.IO adapter, the way a node
// moves a watching user's sockets when they follow someone (server/node.ts
// `watchAuthor`, consumers/feeds.ts on graph:followCreated): the bench joins the
// adapter's Redis channels as one more server with no sockets of its own and
// calls `io.in('user:{id}').socketsJoin(rooms)`, which every node applies to
// its own sockets of that user. The rooms are exactly those of channels/feeds.ts
// `watch` for a follower with nobody muted or blocked: `feedwatch:{me}`,
// `feed:{me}` and `feed:{author}` for every author followed.
import { createAdapter } from '@socket.io/redis-adapter';
import { Redis } from 'ioredis';
import { Server } from 'socket.io';
import { rooms } from '../../server/delivery.ts';

export function watchRooms(userId: string, authors: readonly string[]): string[] {
  return [rooms.feedWatch(userId), rooms.feed(userId), ...authors.map(rooms.feed)];
}

/** The join is checked this often, at most this many times. */
const CHECK_EVERY_MS = 500;
const CHECK_ATTEMPTS = 60;

/**
 * Joins every user's sockets, on every node, to `watchRooms(user, authors)`.
 * Resolves once the first and the last user's sockets (one on each node) are
 * in their rooms, as fetchSockets across the nodes shows; it is polled (one
 * published right after 10,000 joins once came back empty although the socket
 * was there). The bench's warm-up posts then show that every socket is.
 */
export async function joinWatchRooms(options: { redisUrl: string; adapterKey: string; userIds: readonly string[]; authors: readonly string[] }): Promise<void> {
  const pub = new Redis(options.redisUrl, { connectionName: 'bench-fanout-rooms-pub' });
  const sub = pub.duplicate({ connectionName: 'bench-fanout-rooms-sub' });
  const io = new Server({ serveClient: false, adapter: createAdapter(pub, sub, { key: options.adapterKey }) });
  try {
    for (const userId of options.userIds) io.in(rooms.user(userId)).socketsJoin(watchRooms(userId, options.authors));
    // The first and the last user's sockets (one on each node) show when the nodes have applied the joins.
    for (const userId of new Set([options.userIds[0], options.userIds.at(-1)])) {
      if (userId === undefined) continue;
      const expected = watchRooms(userId, options.authors);
      for (let attempt = 0; ; attempt++) {
        // A node busy applying 10,000 joins (or a loaded machine) may miss the adapter's 5 s answer window: ask again.
        const sockets = await io
          .in(rooms.user(userId))
          .fetchSockets()
          .catch((err: unknown) => {
            if (attempt >= CHECK_ATTEMPTS) throw err;
            return [];
          });
        if (sockets.length > 0 && sockets.every((s) => expected.every((room) => s.rooms.has(room)))) break;
        if (attempt >= CHECK_ATTEMPTS) throw new Error(`the nodes did not join ${userId}'s sockets (${sockets.length}) to ${expected.join(', ')}`);
        await new Promise((resolve) => setTimeout(resolve, CHECK_EVERY_MS));
      }
    }
  } finally {
    // Not io.close(): this server has no engine to close.
    await io.of('/').adapter.close();
    pub.disconnect();
    sub.disconnect();
  }
}
