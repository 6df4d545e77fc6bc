// Reads of several documents by id. MongoDB answers `{ _id: { $in: ids } }`
// from the _id index in one round trip. FerretDB v1 (the embedded dev
// database) pushes a filter down to SQLite only when it is exactly
// `{ _id: value }`, so an `$in` scans the whole collection; there, parallel
// point reads are faster by orders of magnitude. The node picks the mode once
// at start (kernel/mongo.ts isFerretDB).
import type { Model } from 'mongoose';

export type IdLookup = 'in' | 'point';

export async function findByIds<T>(model: Model<T>, ids: Iterable<string>, mode: IdLookup, projection?: Record<string, 0 | 1>): Promise<T[]> {
  const unique = [...new Set(ids)];
  if (unique.length === 0) return [];
  if (mode === 'in') return model.find({}, projection).where('_id').in(unique).lean<T[]>();
  const found = await Promise.all(unique.map((id) => model.find({}, projection).where('_id').equals(id).limit(1).lean<T[]>()));
  return found.flat();
}
