// Actor placement in Redis. Each runtime incarnation holds a node lease (a key
// with a TTL it renews); the directory maps an actor to "runtimeId epoch". An
// actor may be claimed only when its entry is free or its owner's lease is
// gone, and every claim takes a new fencing epoch from one global counter, so
// epochs grow across the cluster and a stale owner can be refused by MongoDB.
import { z } from 'zod';
import { RedisScript } from '../kernel/redis-script.ts';
import type { Redis } from '../kernel/redis.ts';

export type ClaimResult = { status: 'claimed' | 'mine'; epoch: number } | { status: 'other'; owner: string } | { status: 'no-lease' };

const CLAIM = `
if redis.call('GET', KEYS[3]) ~= ARGV[2] then return {'no-lease', ''} end
local cur = redis.call('GET', KEYS[1])
if cur then
  local sep = string.find(cur, ' ', 1, true)
  local owner = string.sub(cur, 1, sep - 1)
  if owner == ARGV[1] then return {'mine', string.sub(cur, sep + 1)} end
  if redis.call('EXISTS', ARGV[3] .. owner) == 1 then return {'other', owner} end
end
local epoch = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. epoch)
return {'claimed', tostring(epoch)}
`;

const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

const RENEW = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`;

const RAISE_EPOCH = `
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if cur < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) return tonumber(ARGV[1]) end
return cur
`;

const claimScript = new RedisScript('actor claim', CLAIM, z.tuple([z.enum(['claimed', 'mine', 'other', 'no-lease']), z.string()]));
const releaseScript = new RedisScript('actor release', RELEASE, z.number());
const renewScript = new RedisScript('node lease renew', RENEW, z.number());
const raiseEpochScript = new RedisScript('actor epoch raise', RAISE_EPOCH, z.number());

export class Directory {
  private readonly prefix: string;
  private readonly nodeKey: string;

  constructor(
    private readonly redis: Redis,
    namespace: string,
    readonly runtimeId: string,
    /** Random per incarnation: a lease renewed with another token is not ours. */
    private readonly token: string,
    readonly leaseMs: number,
  ) {
    this.prefix = `${namespace}:actors:`;
    this.nodeKey = `${this.prefix}node:${runtimeId}`;
  }

  inboxChannel(runtimeId: string): string {
    return `${this.prefix}inbox:${runtimeId}`;
  }

  async register(): Promise<void> {
    await this.redis.set(this.nodeKey, this.token, 'PX', this.leaseMs);
  }

  /** False when the lease had already expired (this node was presumed dead). */
  async renew(): Promise<boolean> {
    return (await renewScript.run(this.redis, [this.nodeKey], [this.token, this.leaseMs])) === 1;
  }

  async unregister(): Promise<void> {
    await releaseScript.run(this.redis, [this.nodeKey], [this.token]);
  }

  async claim(address: string): Promise<ClaimResult> {
    const [status, value] = await claimScript.run(
      this.redis,
      [this.actorKey(address), `${this.prefix}epoch`, this.nodeKey],
      [this.runtimeId, this.token, `${this.prefix}node:`],
    );
    if (status === 'claimed' || status === 'mine') return { status, epoch: Number(value) };
    if (status === 'other') return { status, owner: value };
    return { status: 'no-lease' };
  }

  async release(address: string, epoch: number): Promise<void> {
    await releaseScript.run(this.redis, [this.actorKey(address)], [`${this.runtimeId} ${epoch}`]);
  }

  /** After a Redis data loss the epoch counter may lag MongoDB; move it past `min`. */
  async raiseEpoch(min: number): Promise<void> {
    await raiseEpochScript.run(this.redis, [`${this.prefix}epoch`], [min]);
  }

  private actorKey(address: string): string {
    return `${this.prefix}dir:${address}`;
  }
}
