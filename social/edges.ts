// The edge store (models/edge.ts): point lookups, fenced status changes, and
// cursor-paginated lists in either direction.
import mongoose from 'mongoose';
import { edgeId, type EdgeKind, type EdgeModel, type EdgeStatus } from '../models/edge.ts';
import { findByIds, type IdLookup } from '../kernel/by-ids.ts';
import { decodeCursor, encodeCursor } from '../kernel/cursor.ts';
import { fencedUpsert } from '../kernel/fenced.ts';

/** A write the owner's actor intends: edge (kind, owner, member) gets `status`. */
export interface EdgeWrite {
  kind: EdgeKind;
  owner: string;
  member: string;
  status: EdgeStatus;
}

export interface EdgePage {
  /** The other end of each edge: members when listing by owner, owners when listing by member. */
  items: { id: string; at: Date }[];
  nextCursor: string | null;
}

export class EdgeStore {
  constructor(
    readonly model: EdgeModel,
    private readonly idLookup: IdLookup = 'in',
  ) {}

  async status(kind: EdgeKind, owner: string, member: string): Promise<EdgeStatus> {
    const doc = await this.model.findById(edgeId(kind, owner, member), { status: 1 }).lean();
    return doc?.status ?? 'none';
  }

  /** The ids among `ids` whose edge is active. */
  async activeIds(ids: string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const docs = await findByIds(this.model, ids, this.idLookup, { status: 1 });
    return new Set(docs.filter((d) => d.status === 'active').map((d) => d._id));
  }

  /** Status of each edge id that exists. */
  async statuses(ids: string[]): Promise<Map<string, EdgeStatus>> {
    const docs = await findByIds(this.model, ids, this.idLookup, { status: 1 });
    return new Map(docs.map((d) => [d._id, d.status]));
  }

  /** Applies writes in order, fenced by the owner's epoch; idempotent. */
  async apply(writes: readonly EdgeWrite[], epoch: number, at = new Date()): Promise<void> {
    for (const w of writes) {
      await fencedUpsert(this.model, edgeId(w.kind, w.owner, w.member), epoch, { status: w.status, at }, { kind: w.kind, owner: w.owner, member: w.member });
    }
  }

  async count(filter: { kind: EdgeKind; member: string; statuses: EdgeStatus[] }): Promise<number> {
    return this.model.countDocuments({ kind: filter.kind, member: filter.member, status: mongoose.trusted({ $in: filter.statuses }) });
  }

  /** Newest first. `by: 'owner'` lists members of `id`'s edges; `by: 'member'` lists owners. */
  async page(options: { kind: EdgeKind; by: 'owner' | 'member'; id: string; status: EdgeStatus; cursor?: string; limit: number }): Promise<EdgePage> {
    const other = options.by === 'owner' ? 'member' : 'owner';
    const after = decodeCursor(options.cursor);
    const filter: Record<string, unknown> = { kind: options.kind, [options.by]: options.id, status: options.status };
    if (after) {
      const at = new Date(after.t);
      filter.$or = [{ at: mongoose.trusted({ $lt: at }) }, { at, [other]: mongoose.trusted({ $lt: after.id }) }];
    }
    const docs = await this.model
      .find(filter, { at: 1, owner: 1, member: 1 })
      .sort({ at: -1, [other]: -1 })
      .limit(options.limit + 1)
      .lean();
    const more = docs.length > options.limit;
    const items = docs.slice(0, options.limit).map((d) => ({ id: d[other], at: d.at }));
    const last = items.at(-1);
    return { items, nextCursor: more && last ? encodeCursor({ t: last.at.getTime(), id: last.id }) : null };
  }

  /**
   * Every edge matching, in no particular order, `batch` ids at a time, from a
   * single query (one index range on MongoDB, one scan on embedded FerretDB)
   * rather than a query per page. The cursor stays open while `each` runs.
   */
  async forEach(
    options: { kind: EdgeKind; by: 'owner' | 'member'; id: string; status: EdgeStatus; batch: number },
    each: (ids: string[]) => Promise<void>,
  ): Promise<void> {
    const other = options.by === 'owner' ? 'member' : 'owner';
    const cursor = this.model
      .find({ kind: options.kind, [options.by]: options.id, status: options.status }, { owner: 1, member: 1 })
      .lean<{ owner: string; member: string }>()
      .cursor({ batchSize: options.batch });
    let ids: string[] = [];
    try {
      for await (const doc of cursor) {
        ids.push(doc[other]);
        if (ids.length >= options.batch) {
          await each(ids);
          ids = [];
        }
      }
      if (ids.length > 0) await each(ids);
    } finally {
      await cursor.close();
    }
  }
}
