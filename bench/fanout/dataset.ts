// The fan-out bench's social graph, written straight into MongoDB before the
// Flock nodes start: making 10,000 follows through the UserActor costs about
// 0.27 s each on the embedded FerretDB (one author's follows are turns of one
// actor, and FerretDB runs writes one at a time), and setup is not what the
// bench measures. The documents have the shapes the actors write
// (models/account.ts, models/profile.ts, models/edge.ts):
//
//   two authors, each with an account and a profile (the profile's `followers`
//   is the exact count of their active follow edges, as UserActor keeps it)
//     write  followed by the FOLLOWERS connected followers
//     merge  followed by the same followers and one more who never connects
//   FOLLOWERS + 1 follower accounts, without profiles (the paths measured look
//   the reader's own profile up, a point read that finds nothing, but do not need it)
//   one active follow edge per (author, follower), `follow|{author}|{follower}`
//
// With FEED_FANOUT_THRESHOLD = FOLLOWERS + 1 the write author is below the
// threshold (fan-out on write) and the merge author at it (merged at read
// time), so one pair of nodes measures both paths, to the same sockets.
// Neither author's UserActor state exists: nothing the bench does activates it
// (posts:create only checks that the profile exists).
import type { Db } from 'mongodb';
import type { AccountDoc } from '../../models/account.ts';
import { edgeId, type EdgeDoc } from '../../models/edge.ts';
import type { ProfileDoc } from '../../models/profile.ts';

/** Epoch stamped on the documents (no actor activation wrote them). */
const SETUP_EPOCH = 0;
const BATCH = 1_000;

export interface Dataset {
  /** Connected followers; follower i is `${followerPrefix}${i}`, i < followers. */
  followers: number;
  followerPrefix: string;
  /** Fanned out on write (followers < threshold). */
  writeAuthor: string;
  /** Merged at read time (followers + 1 >= threshold). */
  mergeAuthor: string;
  /** FEED_FANOUT_THRESHOLD that puts the two authors on either side. */
  fanoutThreshold: number;
}

export function dataset(runId: string, followers: number): Dataset {
  return { followers, followerPrefix: `u_fo${runId}f`, writeAuthor: `u_fo${runId}w`, mergeAuthor: `u_fo${runId}m`, fanoutThreshold: followers + 1 };
}

export function followerId(d: Dataset, i: number): string {
  return `${d.followerPrefix}${i}`;
}

/** Writes the graph; returns how many documents of each kind. */
export async function writeDataset(db: Db, d: Dataset): Promise<{ accounts: number; profiles: number; edges: number }> {
  const now = Date.now();
  const username = (userId: string) => userId.slice(2).toLowerCase();
  const account = (userId: string): AccountDoc => ({
    _id: userId,
    username: username(userId),
    displayUsername: username(userId),
    emailVerified: false,
    roles: ['user'],
    createdAt: new Date(now),
  });
  const profile = (userId: string, followers: number): ProfileDoc => ({
    _id: userId,
    username: username(userId),
    usernameLower: username(userId),
    displayName: userId === d.writeAuthor ? 'Fan-out writer' : 'Fan-out merger',
    avatarMediaId: null,
    private: false,
    followers,
    createdAt: new Date(now),
    epoch: SETUP_EPOCH,
  });
  // Follower FOLLOWERS (one past the connected ones) follows the merge author only.
  const followerIds = Array.from({ length: d.followers + 1 }, (_, i) => followerId(d, i));
  const edge = (owner: string, member: string, i: number): EdgeDoc => ({
    _id: edgeId('follow', owner, member),
    kind: 'follow',
    owner,
    member,
    status: 'active',
    // Distinct times in the past, as follows made one after another would have.
    at: new Date(now - 2 * (d.followers + 1) + i),
    epoch: SETUP_EPOCH,
  });
  const edges = [
    ...followerIds.slice(0, d.followers).map((f, i) => edge(d.writeAuthor, f, 2 * i)),
    ...followerIds.map((f, i) => edge(d.mergeAuthor, f, 2 * i + 1)),
  ];
  const accounts = [account(d.writeAuthor), account(d.mergeAuthor), ...followerIds.map(account)];
  const profiles = [profile(d.writeAuthor, d.followers), profile(d.mergeAuthor, d.followers + 1)];
  await insertAll(db, 'accounts', accounts);
  await insertAll(db, 'profiles', profiles);
  await insertAll(db, 'edges', edges);
  return { accounts: accounts.length, profiles: profiles.length, edges: edges.length };
}

async function insertAll<T extends { _id: string }>(db: Db, collection: string, docs: T[]): Promise<void> {
  for (let i = 0; i < docs.length; i += BATCH) {
    await db.collection<T>(collection).insertMany(docs.slice(i, i + BATCH) as never[], { ordered: false });
  }
}
