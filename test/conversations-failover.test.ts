// A conversation's actor dies with its node (kill -9) in the middle of a burst
// of sends from members on the other node, who retry failures with the same
// clientMessageId: nothing acknowledged is lost, nothing is stored twice, the
// sequence stays dense, and the surviving members get every message live. And
// an older owner that resumes mid-turn after a newer one has read the
// conversation cannot make it lose a message. Its own cluster (short lease,
// quick passivation) and file: the kill must not hit other tests.
import test from 'ava';
import { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import type { MessageView } from '../messaging/views.ts';
import type { ConversationDoc } from '../models/conversation.ts';
import { messageId, type MessageDoc } from '../models/message.ts';
import { requireEnv } from './helpers/env.ts';
import { eventually } from './helpers/node-process.ts';
import { fullHistory } from './helpers/conversations.ts';
import { SocialCluster, type SocialUser } from './helpers/social.ts';

const LEASE_MS = 2_000;
const cluster = new SocialCluster();
// Asks to the dead node wait at most ASK_MS before the client sees an error and retries.
const ASK_MS = 5_000;
// Idle actors passivate after a second: the stale-owner test needs a second activation.
test.before(() => cluster.start('convfailover', { ACTOR_LEASE_MS: String(LEASE_MS), ACTOR_ASK_TIMEOUT_MS: String(ASK_MS), ACTOR_IDLE_MS: '1000' }));
test.after.always(() => cluster.stop());

interface Ack {
  senderId: string;
  clientMessageId: string;
  text: string;
  seq: number;
  /** The stored message came back for a retry: an earlier attempt had been stored, its ack lost. */
  duplicate: boolean;
}

test.serial('an older owner resuming mid-turn after a newer one activated cannot land a message the newer one would overwrite', async (t) => {
  const [a, b] = (await cluster.quickUsers(2, 'stale')) as [SocialUser, SocialUser];
  await b.c.request('conversations:updateSettings', { groupAdds: 'everyone' }); // added at once, not invited
  const { conversationId } = await a.c.request('conversations:createGroup', { title: 'stale', memberIds: [b.userId] });
  const resendKey = `c-${randomBytes(9).toString('base64url')}`;
  await a.c.request('conversations:send', { conversationId, clientMessageId: resendKey, text: 'one' });
  const old = await hostOf(`conversation/${conversationId}`);
  t.truthy(old);
  // The activation ends (idle); a resend, which writes nothing, wakes a newer one.
  t.true(await eventually(async () => (await hostOf(`conversation/${conversationId}`)) === undefined, 15_000), 'passivated');
  t.like(await b.c.request('conversations:markRead', { conversationId, seq: 0 }), { readSeq: 0 }, 'a turn that changes nothing');
  const current = await hostOf(`conversation/${conversationId}`);
  t.true(current!.epoch > old!.epoch);

  // What the older owner's send does when it resumes now: message 3, then the document, both fenced by its epoch.
  const stale: MessageDoc = {
    _id: messageId(conversationId, 3),
    conversationId,
    seq: 3,
    kind: 'text',
    senderId: b.userId,
    clientMessageId: 'c-stale-owner',
    text: 'acknowledged by the older owner',
    mediaIds: [],
    replyTo: null,
    system: null,
    createdAt: new Date(),
    editedAt: null,
    deleted: false,
    deletedAt: null,
    epoch: old!.epoch,
  };
  const landed = await cluster.withDb(async (db) => {
    const { _id, ...fields } = stale;
    try {
      await db.collection<MessageDoc>('messages').updateOne({ _id, epoch: { $lte: old!.epoch } }, { $set: fields }, { upsert: true });
    } catch {
      return false; // refused: a newer owner wrote it
    }
    const r = await db
      .collection<ConversationDoc>('conversations')
      .updateOne(
        { _id: conversationId, epoch: { $lte: old!.epoch } },
        { $set: { lastSeq: 3, epoch: old!.epoch }, $push: { recent: { key: `${b.userId}|c-stale-owner`, seq: 3 } } },
      );
    return r.matchedCount === 1;
  });

  // Whatever the older owner managed, the newer one numbers after every message anyone was told about.
  const next = await a.c.request('conversations:send', { conversationId, clientMessageId: `c-${randomBytes(9).toString('base64url')}`, text: 'after' });
  const history = await fullHistory(b, conversationId);
  if (landed) t.like(history[2], { clientMessageId: 'c-stale-owner' }, 'an acknowledged message is kept');
  t.deepEqual(
    history.map((m) => m.seq),
    Array.from({ length: next.message.seq }, (_, i) => i + 1),
  );
  t.like(history.at(-1), { text: 'after' });
  t.false(landed, 'the newer owner took the document when it activated');
});

test.serial(
  'kill -9 of the node hosting a conversation mid-burst: every acknowledged message is kept once, the sequence stays dense, survivors get them all',
  async (t) => {
    t.timeout(120_000);
    const users = await cluster.quickUsers(6, 'fail');
    const [creator, ...others] = users as [SocialUser, ...SocialUser[]];
    await Promise.all(others.map((u) => u.c.request('conversations:updateSettings', { groupAdds: 'everyone' }))); // added at once, not invited
    const live = new Map(users.map((u) => [u.userId, [] as MessageView[]]));
    for (const u of users) {
      u.c.on('stream:event', (e) => {
        if (e.type === 'conversations:message') live.get(u.userId)!.push(e.data.message);
      });
    }
    const { conversationId } = await creator.c.request('conversations:createGroup', { title: 'failover', memberIds: others.map((u) => u.userId) });

    // The first ask ran on the creator's node, so the actor lives there.
    const host = await hostOf(`conversation/${conversationId}`);
    t.like(host, { node: creator.node });
    const hostNode = host!.node;
    const survivors = users.filter((u) => u.node !== hostNode);
    t.is(survivors.length, 3);

    // Every survivor sends PER_SENDER messages one after another, retrying each with its clientMessageId until it is acknowledged.
    const PER_SENDER = 25;
    const acks: Ack[] = [];
    const failures: string[] = [];
    const deadline = Date.now() + 90_000;
    const sendSurely = async (u: SocialUser, text: string) => {
      const clientMessageId = `c-${randomBytes(9).toString('base64url')}`;
      for (;;) {
        try {
          const r = await u.c.request('conversations:send', { conversationId, clientMessageId, text }, { timeoutMs: 3 * ASK_MS });
          acks.push({ senderId: u.userId, clientMessageId, text, seq: r.message.seq, duplicate: r.duplicate });
          return;
        } catch (err) {
          failures.push((err as { code?: string }).code ?? String(err));
          if (Date.now() > deadline) throw err;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    };
    const burst = Promise.all(
      survivors.map(async (u, i) => {
        for (let k = 0; k < PER_SENDER; k++) await sendSurely(u, `${i}/${k}`);
      }),
    );
    t.true(await eventually(async () => acks.length >= 15, 60_000, 20), 'the burst is under way');
    const ackedBeforeKill = acks.length;
    cluster.nodes[hostNode]!.child.kill('SIGKILL');
    const killedAt = Date.now();
    await burst;
    t.log(
      `${ackedBeforeKill} acks before the kill, ${acks.length} in all; ${failures.length} failed attempts retried (${[...new Set(failures)].join(', ') || 'none'}), ${acks.filter((a) => a.duplicate).length} of them stored already; burst ended ${Date.now() - killedAt} ms after the kill`,
    );
    t.true(ackedBeforeKill < acks.length, 'sends went on after the kill');

    const total = 1 + survivors.length * PER_SENDER;
    const reader = survivors[0]!;
    const history = await fullHistory(reader, conversationId);
    t.deepEqual(
      history.map((m) => m.seq),
      Array.from({ length: total }, (_, i) => i + 1),
      'dense 1..N, every message once',
    );
    t.is(new Set(acks.map((a) => a.seq)).size, acks.length, 'no sequence number acknowledged twice');
    for (const a of acks) {
      t.like(
        history[a.seq - 1],
        { senderId: a.senderId, clientMessageId: a.clientMessageId, text: a.text },
        `acknowledged seq ${a.seq} is stored as acknowledged`,
      );
    }
    const stored = history.filter((m) => m.kind === 'text').map((m) => m.clientMessageId);
    t.is(new Set(stored).size, stored.length, 'no retry stored a second copy');
    t.deepEqual(new Set(stored), new Set(acks.map((a) => a.clientMessageId)), 'nothing stored that was not acknowledged in the end');
    t.like(await reader.c.request('conversations:get', { conversationId }), { lastSeq: total });

    // The actor moved to the surviving node, under a newer fencing epoch.
    const moved = await hostOf(`conversation/${conversationId}`);
    t.is(moved?.node, 1 - hostNode);
    t.true(moved!.epoch > host!.epoch);

    // Live: every survivor got every message at least once (a crash may repeat one: drop it by seq).
    t.true(await eventually(async () => survivors.every((u) => new Set(live.get(u.userId)!.map((m) => m.seq)).size >= total), 30_000));
    for (const u of survivors) {
      const seen = new Map(live.get(u.userId)!.map((m) => [m.seq, m]));
      t.deepEqual(
        [...seen.keys()].sort((x, y) => x - y),
        history.map((m) => m.seq),
      );
      for (const m of history) t.deepEqual(seen.get(m.seq), m, `what ${u.userId} got live as seq ${m.seq} is what history holds`);
    }
  },
);

/**
 * The node whose actor runtime owns an actor, from the directory in Redis
 * (`{REDIS_KEY_PREFIX}:actors:dir:{type}/{key}` holds "{runtimeId} {epoch}");
 * each node logs its runtime id when the runtime starts.
 */
async function hostOf(address: string): Promise<{ node: number; epoch: number } | undefined> {
  const redis = new Redis(requireEnv('REDIS_URL'));
  try {
    const entry = await redis.get(`${cluster.redisPrefix}:actors:dir:${address}`);
    if (!entry) return undefined;
    const [runtimeId, epoch] = entry.split(' ');
    const node = cluster.nodes.findIndex((n) => n.logs.some((l) => l.msg === 'actor runtime started' && l.runtime === runtimeId));
    return node < 0 ? undefined : { node, epoch: Number(epoch) };
  } finally {
    redis.disconnect();
  }
}
