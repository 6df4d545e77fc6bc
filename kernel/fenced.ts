// Fenced writes of documents an actor owns outside its state: a write lands
// only if the document was last written by this activation's epoch or an
// older one, and stamps it with this epoch. Once a newer owner has written,
// the stale owner's writes are refused (ACTOR_FENCED) instead of landing.
//
// These go through the driver's collection, not mongoose's update casting,
// which drops null and empty-array fields from an upsert's $setOnInsert; the
// callers pass complete, typed documents.
import type { Model } from 'mongoose';
import { FlockError } from './errors.ts';
import { isDuplicateKey } from './duplicate-key.ts';

/** How the fenced writes see a document: an id, the epoch of the owner that wrote it last, and its fields. */
interface FencedDoc {
  _id: string;
  epoch: number;
  [field: string]: unknown;
}

/** The model's collection, typed for the writes below (they bypass mongoose's casting on purpose). */
function collectionOf<T>(model: Model<T>) {
  return model.db.collection<FencedDoc>(model.collection.name);
}

function fenced(what: string): FlockError {
  return new FlockError('ACTOR_FENCED', `${what}: written by a newer owner`);
}

/** Upsert: `$set` (and `$setOnInsert`) at `epoch`; refused once a newer epoch wrote the document. */
export async function fencedUpsert<T>(
  model: Model<T>,
  id: string,
  epoch: number,
  set: Record<string, unknown>,
  setOnInsert: Record<string, unknown> = {},
): Promise<void> {
  try {
    await collectionOf(model).updateOne(
      { _id: id, epoch: { $lte: epoch } },
      { $set: { ...set, epoch }, ...(Object.keys(setOnInsert).length > 0 && { $setOnInsert: setOnInsert }) },
      { upsert: true },
    );
  } catch (err) {
    if (isDuplicateKey(err)) throw fenced(`${model.collection.name}/${id}`);
    throw err;
  }
}

/** Creates a document at `epoch`; refused if it exists already (another owner made it). */
export async function fencedInsert<T>(model: Model<T>, doc: Record<string, unknown> & { _id: string }, epoch: number): Promise<void> {
  try {
    await collectionOf(model).insertOne({ ...doc, epoch });
  } catch (err) {
    if (isDuplicateKey(err)) throw fenced(`${model.collection.name}/${doc._id}`);
    throw err;
  }
}

/** `$set` on an existing document at `epoch`; false if it does not exist, refused if a newer epoch wrote it. */
export async function fencedUpdate<T>(model: Model<T>, id: string, epoch: number, set: Record<string, unknown>): Promise<boolean> {
  const collection = collectionOf(model);
  const result = await collection.updateOne({ _id: id, epoch: { $lte: epoch } }, { $set: { ...set, epoch } });
  if (result.matchedCount === 1) return true;
  const exists = await collection.countDocuments({ _id: id }, { limit: 1 });
  if (exists) throw fenced(`${model.collection.name}/${id}`);
  return false;
}

/**
 * `$set` on every document matching `filter` at `epoch`. Documents a newer
 * epoch wrote are left as they are and the call is refused (ACTOR_FENCED)
 * after the older ones were written, so a stale owner learns it was deposed.
 * Returns how many were written.
 */
export async function fencedUpdateMany<T>(model: Model<T>, filter: Record<string, unknown>, epoch: number, set: Record<string, unknown>): Promise<number> {
  const collection = collectionOf(model);
  const result = await collection.updateMany({ ...filter, epoch: { $lte: epoch } }, { $set: { ...set, epoch } });
  if ((await collection.countDocuments({ ...filter, epoch: { $gt: epoch } }, { limit: 1 })) > 0)
    throw fenced(`${model.collection.name} (${result.modifiedCount} written)`);
  return result.modifiedCount;
}
