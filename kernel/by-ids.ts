// Reads of several documents by id. MongoDB answers `{ _id: { $in: ids } }`
// from the _id index in one round trip. FerretDB v1 (the embedded dev
// database) pushes a filter down to SQLite only when it is exactly
// `{ _id: value }`, so an `$in` scans the whole collection; there, parallel
// point reads are faster by orders of magnitude. The node picks the mode once
// at start (kernel/mongo.ts isFerretDB).
import mongoose, { type Model } from 'mongoose';

export type IdLookup = 'in' | 'point';

export async function findByIds<T>(model: Model<T>, ids: Iterable<string>, mode: IdLookup, projection?: Record<string, 0 | 1>): Promise<T[]> {
  const unique = [...new Set(ids)];
  if (unique.length === 0) return [];
  if (mode === 'in') return model.find({ _id: mongoose.trusted({ $in: unique }) } as never, projection).lean<T[]>();
  const docs = await Promise.all(unique.map((id) => model.findById(id, projection).lean<T>()));
  return docs.filter((d): d is NonNullable<typeof d> => d !== null) as T[];
}
