// Socket.IO rooms of live home timelines. A socket that watches its home
// timeline (feeds:watch) joins `feedwatch:{me}` and `feed:{author}` for me and
// every account I follow and have not muted; a new post is one
// `io.to(feed:{author}).emit()`, the broadcast fast path (one room, no
// excluded socket). Follows, unfollows, blocks and mutes move the rooms of
// every watching socket of the user, on every node (socketsJoin/socketsLeave
// through the adapter).
export function feedRoom(authorId: string): string {
  return `feed:${authorId}`;
}

export function watchRoom(userId: string): string {
  return `feedwatch:${userId}`;
}
