// Everything the social actors and read paths share: the collections they
// own (edges, posts, profiles), trending, and the domain event stream. The
// node builds one per process and hands it to the actor runtime
// (ctx.services.social) and to the gateway (services.social).
import mongoose, { type Connection, type Model } from 'mongoose';
import { accountModel, type AccountModel } from '../models/account.ts';
import { edgeId, edgeModel } from '../models/edge.ts';
import { postModel, type PostModel } from '../models/post.ts';
import { profileModel, type ProfileDoc, type ProfileModel } from '../models/profile.ts';
import type { Redis } from '../kernel/redis.ts';
import { findByIds, type IdLookup } from '../kernel/by-ids.ts';
import { EdgeStore } from './edges.ts';
import { DomainEvents } from '../events/domain.ts';
import { Trending, defaultTrendingSettings, type TrendingSettings } from './trending.ts';

export interface SocialSettings {
  /** How to read documents by id (kernel/by-ids.ts): 'point' on FerretDB. */
  idLookup: IdLookup;
  /** Follows plus pending requests one account may have. */
  maxFollowing: number;
  trending: TrendingSettings;
}

export const defaultSocialSettings: SocialSettings = { idLookup: 'in', maxFollowing: 5_000, trending: defaultTrendingSettings };

/** How the viewer stands towards a set of other users. */
export interface Relations {
  /** Users the viewer blocked or who blocked the viewer. */
  blocked: Set<string>;
  /** Users the viewer follows (active). */
  following: Set<string>;
  /** Users the viewer muted. */
  muted: Set<string>;
  profiles: Map<string, ProfileDoc>;
  /** Users whose edges with the viewer were loaded: the sets above say nothing about anyone else. */
  loaded: Set<string>;
}

export class SocialStore {
  readonly edges: EdgeStore;
  readonly posts: PostModel;
  readonly profiles: ProfileModel;
  readonly accounts: AccountModel;
  readonly trending: Trending;
  readonly events: DomainEvents;

  constructor(
    connection: Connection,
    redis: Redis,
    readonly settings: SocialSettings = defaultSocialSettings,
    redisPrefix = 'flock:social',
  ) {
    this.edges = new EdgeStore(edgeModel(connection), settings.idLookup);
    this.posts = postModel(connection);
    this.profiles = profileModel(connection);
    this.accounts = accountModel(connection);
    this.trending = new Trending(redis, `${redisPrefix}:trend`, settings.trending);
    this.events = new DomainEvents(redis, `${redisPrefix}:events`);
  }

  /** Creates the collections' indexes (start-up). */
  async init(): Promise<void> {
    await Promise.all([this.edges.model.init(), this.posts.init(), this.profiles.init()]);
  }

  /** Whether a and b blocked each other in either direction. */
  async blockedEitherWay(a: string, b: string): Promise<boolean> {
    return (await this.edges.activeIds([edgeId('block', a, b), edgeId('block', b, a)])).size > 0;
  }

  /**
   * The viewer's relations with some users. Given `into`, loads only the users
   * it has not loaded yet and adds them to it (a page's map grows to cover the
   * authors of the posts it quotes or reposts).
   */
  async relations(viewerId: string, userIds: Iterable<string>, into?: Relations): Promise<Relations> {
    const others = [...new Set(userIds)].filter((id) => id !== viewerId && !into?.loaded.has(id));
    const rel: Relations = into ?? { blocked: new Set(), following: new Set(), muted: new Set(), profiles: new Map(), loaded: new Set() };
    if (into && others.length === 0) return rel;
    const ids: string[] = [];
    for (const o of others) ids.push(edgeId('block', viewerId, o), edgeId('block', o, viewerId), edgeId('follow', o, viewerId), edgeId('mute', viewerId, o));
    const wanted = into?.profiles.has(viewerId) ? others : [...others, viewerId];
    const [active, profiles] = await Promise.all([this.edges.activeIds(ids), this.byIds(this.profiles, wanted)]);
    for (const p of profiles) rel.profiles.set(p._id, p);
    for (const o of others) {
      rel.loaded.add(o);
      if (active.has(edgeId('block', viewerId, o)) || active.has(edgeId('block', o, viewerId))) rel.blocked.add(o);
      if (active.has(edgeId('follow', o, viewerId))) rel.following.add(o);
      if (active.has(edgeId('mute', viewerId, o))) rel.muted.add(o);
    }
    return rel;
  }

  /** Documents of a collection by id (kernel/by-ids.ts). */
  byIds<T>(model: Model<T>, ids: Iterable<string>, projection?: Record<string, 0 | 1>): Promise<T[]> {
    return findByIds(model, ids, this.settings.idLookup, projection);
  }

  /** User ids of the mentioned usernames that exist, in the given order. */
  async resolveUsernames(usernames: readonly string[]): Promise<string[]> {
    if (usernames.length === 0) return [];
    const docs = await this.accounts.find({ username: mongoose.trusted({ $in: [...usernames] }) }, { _id: 1, username: 1 }).lean();
    const byName = new Map(docs.map((d) => [d.username, String(d._id)]));
    return usernames.flatMap((u) => (byName.has(u) ? [byName.get(u)!] : []));
  }
}
