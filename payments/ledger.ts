// Flock's double-entry ledger: the journal (`ledger_entries`, one document per
// idempotency key) and the balances derived from it (`ledger_balances`, one
// cached document per account and currency). Every money movement of the
// creator economy (tips, purchases, payouts, refunds, disputes) is one entry
// whose postings sum to zero per currency; builders for them are in
// payments/entries.ts.
//
// FerretDB v1 has no multi-document transactions, so an entry is applied in
// steps, each a single-document atomic write, ordered so that a crash between
// any two leaves a state `repair()` finishes or undoes:
//
//   1 hold     on every balance the entry moves, one conditional update adds a
//              hold `<attempt>|<debit>|<entry id>` to the balance's `holds` and
//              moves the debit from `free` to `reserved`; on a non-negative
//              account only if `free >= debit`, so concurrent debits can never
//              overdraw it (PAYMENT_INSUFFICIENT_BALANCE, nothing written: the
//              holds taken are released). `attempt` is fresh per try and starts
//              with its time.
//   2 insert   the entry, status `pending`, naming its attempt. A duplicate key
//              means the key was posted before: same digest answers that entry
//              (finishing it if pending), another is PAYMENT_DUPLICATE_KEY.
//   3 apply    per balance: `$inc` the amount and `$pull` the hold, conditional
//              on the hold being there. The hold is the "not applied yet"
//              marker: the update that applies it removes it, so no entry can
//              be applied twice to a balance, and `holds` only ever lists the
//              entries in flight (bounded by `maxHolds`), never history.
//   4 applied  the entry is marked applied.
//
// `free` is kept equal to `balance - reserved` by every update (FerretDB v1
// has no $expr to compare two fields), and a credit becomes free only when
// applied.
//
// repair() (run periodically, and at start-up) finishes entries left pending
// (steps 3 and 4 again: idempotent) and resolves holds older than
// `holdTimeoutMs`. A hold is released only once its attempt can never apply:
// its entry is void and lists the attempt in `voided`, or is pending/applied
// under another attempt (pending and applied are final). If the entry does not
// exist (a crash between 1 and 2), repair inserts it void, naming the attempt;
// a writer that arrives later finds the void entry and starts again with a new
// attempt, replacing the void entry only if it does not name its own attempt.
// So a slow writer loses its try instead of having its holds released under it.
//
// Balances: `balance(account)` reads the cache; `replay(account)` recomputes
// it from the applied entries; `verify()` checks, at rest (after repair), that
// every entry sums to zero, every cached balance equals its replay and its
// holds add up, and no non-negative account is below zero.
//
// The platform-wide accounts (fan_payments, platform_fees, stripe_fees) are
// written by every tip: one document each is the write hot spot; splitting
// them into N sub-accounts summed on read is the way out when it matters.
import { randomBytes } from 'node:crypto';
import type { Collection, Db } from 'mongodb';
import type { Connection } from 'mongoose';
import { isDuplicateKey } from '../kernel/duplicate-key.ts';
import { FlockError, isFlockError } from '../kernel/errors.ts';
import {
  balanceDocSchema,
  balanceId,
  entryDocSchema,
  LEDGER_BALANCES_COLLECTION,
  LEDGER_ENTRIES_COLLECTION,
  LEDGER_INDEXES,
  type BalanceDoc,
  type EntryDoc,
} from '../models/ledger.ts';
import { isAccountName, isNonNegative, type AccountName } from './accounts.ts';
import { legsOf, prepareEntry, sumsByCurrency, type EntryInput, type Leg, type PreparedEntry } from './entry.ts';
import { DEFAULT_CURRENCIES } from './money.ts';

export interface LedgerSettings {
  /** Currencies entries may use. */
  currencies: readonly string[];
  /** Entries in flight on one balance at once; more wait (SERVICE_UNAVAILABLE, retry). */
  maxHolds: number;
  /** Age after which repair() treats a hold or a pending entry as abandoned. */
  holdTimeoutMs: number;
}

export const defaultLedgerSettings: LedgerSettings = {
  currencies: DEFAULT_CURRENCIES,
  maxHolds: 200,
  holdTimeoutMs: 60_000,
};

export interface PostResult {
  entry: EntryDoc;
  /** False when the key had been posted already (this answers that entry). */
  created: boolean;
}

export interface AccountBalance {
  account: string;
  currency: string;
  balance: number;
  /** What a debit may take now: balance minus the debits in flight. */
  available: number;
  reserved: number;
  version: number;
}

export interface RepairReport {
  /** Pending entries applied to the end. */
  finished: number;
  /** Holds of attempts that can never apply, released. */
  released: number;
  /** Entries inserted or marked void to rule out an abandoned attempt. */
  voided: number;
}

export interface VerifyReport {
  ok: boolean;
  entries: number;
  balances: number;
  pending: number;
  problems: string[];
}

export interface ParsedHold {
  attempt: string;
  reserve: number;
  entryId: string;
  at: number;
}

/** A hold's text: the attempt, the debit it reserved, the entry. */
export function holdOf(attempt: string, reserve: number, entryId: string): string {
  return `${attempt}|${reserve}|${entryId}`;
}

export function parseHold(hold: string): ParsedHold | null {
  const m = /^((\d+)-[0-9a-f]+)\|(\d+)\|(.+)$/.exec(hold);
  return m?.[1] && m[2] && m[3] && m[4] ? { attempt: m[1], at: Number(m[2]), reserve: Number(m[3]), entryId: m[4] } : null;
}

/** A fresh attempt id, starting with its time (repair() reads a hold's age from it). */
export function newAttempt(now = Date.now()): string {
  return `${now}-${randomBytes(6).toString('hex')}`;
}

/** The `$inc`/`$set` fields the driver sees; the schemas in models/ledger.ts check what comes back. */
type StoredEntry = EntryDoc;
type StoredBalance = BalanceDoc;

export class Ledger {
  readonly settings: LedgerSettings;
  private readonly entries: Collection<StoredEntry>;
  private readonly balances: Collection<StoredBalance>;

  constructor(connection: Connection, settings: Partial<LedgerSettings> = {}) {
    this.settings = { ...defaultLedgerSettings, ...settings };
    const db: Db | undefined = connection.db;
    if (!db) throw new Error('Ledger: the connection is not open');
    this.entries = db.collection<StoredEntry>(LEDGER_ENTRIES_COLLECTION);
    this.balances = db.collection<StoredBalance>(LEDGER_BALANCES_COLLECTION);
  }

  async init(): Promise<void> {
    await Promise.all([
      ...LEDGER_INDEXES.entries.map((i) => this.entries.createIndex(i.key, { name: i.name })),
      ...LEDGER_INDEXES.balances.map((i) => this.balances.createIndex(i.key, { name: i.name })),
    ]);
  }

  /**
   * Posts an entry: validated, held, inserted, applied. The same key with the
   * same content answers the first entry (created: false); with other content
   * it is PAYMENT_DUPLICATE_KEY.
   */
  async post(input: EntryInput): Promise<PostResult> {
    const entry = prepareEntry(input, this.settings.currencies);
    const existing = await this.entry(entry.id);
    if (existing && existing.status !== 'void') return this.answerExisting(existing, entry);
    for (let round = 0; round < 5; round++) {
      const attempt = newAttempt();
      try {
        await this.hold(entry, attempt);
      } catch (err) {
        // A concurrent post of the same key may have taken the money: answer it rather than the refusal.
        if (isFlockError(err) && err.code === 'PAYMENT_INSUFFICIENT_BALANCE') {
          const raced = await this.entry(entry.id);
          if (raced && raced.status !== 'void') return this.answerExisting(raced, entry);
        }
        throw err;
      }
      const stored = await this.insertPending(entry, attempt);
      if (stored.status === 'pending' && stored.attempt === attempt) {
        await this.apply(entry.id, attempt, entry.legs);
        await this.markApplied(entry.id, attempt);
        return { entry: { ...stored, status: 'applied' }, created: true };
      }
      await this.release(entry.id, attempt, entry.legs);
      if (stored.status !== 'void') return this.answerExisting(stored, entry);
    }
    throw new FlockError('SERVICE_UNAVAILABLE', 'ledger: the entry kept being voided by repair', { details: { retryAfterMs: 1_000, service: 'ledger' } });
  }

  async entry(id: string): Promise<EntryDoc | null> {
    const raw = await this.entries.findOne({ _id: id });
    return raw ? entryDocSchema.parse(raw) : null;
  }

  /** The cached balance (zero for an account nothing was posted to). */
  async balance(account: AccountName, currency: string): Promise<AccountBalance> {
    const doc = await this.readBalance(balanceId(account, currency));
    return doc
      ? { account, currency, balance: doc.balance, available: Math.max(0, doc.free), reserved: doc.reserved, version: doc.version }
      : { account, currency, balance: 0, available: 0, reserved: 0, version: 0 };
  }

  /** The balance recomputed from the applied entries of the journal. */
  async replay(account: AccountName, currency: string): Promise<number> {
    let sum = 0;
    for await (const raw of this.entries.find({ accounts: account, status: 'applied' })) {
      for (const p of entryDocSchema.parse(raw).postings) if (p.account === account && p.currency === currency) sum += p.amount;
    }
    return sum;
  }

  /** Checks the whole ledger at rest (run repair() first). */
  async verify(): Promise<VerifyReport> {
    const problems: string[] = [];
    const replayed = new Map<string, number>();
    let entries = 0;
    let pending = 0;
    for await (const raw of this.entries.find({})) {
      const e = entryDocSchema.parse(raw);
      if (e.status === 'void') continue;
      entries++;
      if (e.status === 'pending') pending++;
      for (const [currency, sum] of sumsByCurrency(e.postings)) if (sum !== 0) problems.push(`entry ${e._id} sums to ${sum} ${currency}`);
      if (e.status === 'applied')
        for (const p of e.postings) replayed.set(balanceId(p.account, p.currency), (replayed.get(balanceId(p.account, p.currency)) ?? 0) + p.amount);
    }
    let balances = 0;
    for await (const raw of this.balances.find({})) {
      const b = balanceDocSchema.parse(raw);
      balances++;
      const expected = replayed.get(b._id) ?? 0;
      replayed.delete(b._id);
      if (b.balance !== expected) problems.push(`${b._id}: cached ${b.balance}, replay ${expected}`);
      const held = b.holds.reduce((sum, h) => sum + (parseHold(h)?.reserve ?? Number.NaN), 0);
      if (held !== b.reserved || b.holds.length !== b.holdCount)
        problems.push(`${b._id}: reserved ${b.reserved} in ${b.holdCount} holds, holds say ${held} in ${b.holds.length}`);
      if (b.free !== b.balance - b.reserved) problems.push(`${b._id}: free ${b.free} is not balance - reserved`);
      if (isAccountName(b.account) && isNonNegative(b.account) && (b.balance < 0 || b.free < 0))
        problems.push(`${b._id}: non-negative account at ${b.balance} (free ${b.free})`);
    }
    for (const [id, sum] of replayed) if (sum !== 0) problems.push(`${id}: replay ${sum} but no cached balance`);
    return { ok: problems.length === 0, entries, balances, pending, problems };
  }

  /** Finishes what crashed writers left: see the header. Safe to run anywhere, any number of times, concurrently with writers. */
  async repair(options: { olderThanMs?: number; now?: number } = {}): Promise<RepairReport> {
    const cutoff = (options.now ?? Date.now()) - (options.olderThanMs ?? this.settings.holdTimeoutMs);
    const report: RepairReport = { finished: 0, released: 0, voided: 0 };
    for await (const raw of this.entries.find({ status: 'pending', createdAt: { $lt: new Date(cutoff) } })) {
      const e = entryDocSchema.parse(raw);
      await this.finish(e);
      report.finished++;
    }
    for await (const raw of this.balances.find({ holdCount: { $gt: 0 } })) {
      const b = balanceDocSchema.parse(raw);
      for (const text of b.holds) {
        const hold = parseHold(text);
        if (hold && hold.at < cutoff) report[await this.resolveHold(b._id, text, hold)]++;
      }
    }
    return report;
  }

  // ---- the protocol's steps, public so the crash tests can stop between them ----

  /** Step 1: a hold on every balance the entry moves; all or none (the holds taken are released on refusal). */
  async hold(entry: PreparedEntry, attempt: string): Promise<void> {
    const results = await Promise.allSettled(entry.legs.map((leg) => this.holdLeg(leg, holdOf(attempt, leg.reserve, entry.id))));
    const failed = results.find((r) => r.status === 'rejected');
    if (!failed) return;
    await Promise.all(
      entry.legs.map((leg, i) =>
        results[i]?.status === 'fulfilled' ? this.releaseHold(leg.balanceId, holdOf(attempt, leg.reserve, entry.id), leg.reserve) : Promise.resolve(false),
      ),
    );
    throw failed.reason;
  }

  /** Step 2: the entry, pending under `attempt`; answers what is stored under the key afterwards. */
  async insertPending(entry: PreparedEntry, attempt: string): Promise<EntryDoc> {
    const doc: EntryDoc = {
      _id: entry.id,
      kind: entry.kind,
      postings: entry.postings,
      accounts: entry.accounts,
      refs: entry.refs,
      digest: entry.digest,
      status: 'pending',
      attempt,
      voided: [],
      createdAt: new Date(),
      appliedAt: null,
    };
    try {
      await this.entries.insertOne(doc);
      return doc;
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
    }
    const { _id, ...rest } = doc;
    const replaced = await this.entries.replaceOne({ _id, status: 'void', voided: { $ne: attempt } }, rest);
    if (replaced.modifiedCount === 1) return doc;
    const stored = await this.entry(entry.id);
    if (!stored) throw new Error(`ledger entry ${entry.id} vanished`);
    return stored;
  }

  /** Step 3: every leg applied, each at most once (its hold is the marker). */
  async apply(entryId: string, attempt: string, legs: readonly Leg[]): Promise<void> {
    const updatedAt = new Date();
    await Promise.all(
      legs.map((leg) => {
        const hold = holdOf(attempt, leg.reserve, entryId);
        return this.balances.updateOne(
          { _id: leg.balanceId, holds: hold },
          {
            $inc: { balance: leg.amount, reserved: -leg.reserve, free: leg.amount + leg.reserve, version: 1, holdCount: -1 },
            $pull: { holds: hold },
            $set: { lastEntry: entryId, updatedAt },
          },
        );
      }),
    );
  }

  /** Step 4. */
  async markApplied(entryId: string, attempt: string): Promise<void> {
    await this.entries.updateOne({ _id: entryId, status: 'pending', attempt }, { $set: { status: 'applied', appliedAt: new Date() } });
  }

  /** Releases the holds of an attempt that will not apply (idempotent). */
  async release(entryId: string, attempt: string, legs: readonly Leg[]): Promise<void> {
    await Promise.all(legs.map((leg) => this.releaseHold(leg.balanceId, holdOf(attempt, leg.reserve, entryId), leg.reserve)));
  }

  // ---- helpers ----

  private async answerExisting(stored: EntryDoc, entry: PreparedEntry): Promise<PostResult> {
    if (stored.digest !== entry.digest) throw new FlockError('PAYMENT_DUPLICATE_KEY', undefined, { details: { id: entry.id, kind: stored.kind } });
    if (stored.status === 'pending') return { entry: await this.finish(stored), created: false };
    return { entry: stored, created: false };
  }

  /** Steps 3 and 4 for a stored pending entry. */
  private async finish(stored: EntryDoc): Promise<EntryDoc> {
    await this.apply(stored._id, stored.attempt, legsOf(stored.postings));
    await this.markApplied(stored._id, stored.attempt);
    return { ...stored, status: 'applied' };
  }

  private async readBalance(id: string): Promise<BalanceDoc | null> {
    const raw = await this.balances.findOne({ _id: id });
    return raw ? balanceDocSchema.parse(raw) : null;
  }

  private async holdLeg(leg: Leg, hold: string): Promise<void> {
    const guard = leg.guarded && leg.reserve > 0 ? { free: { $gte: leg.reserve } } : {};
    for (let tries = 0; tries < 10; tries++) {
      const result = await this.balances.updateOne(
        { _id: leg.balanceId, holdCount: { $lt: this.settings.maxHolds }, ...guard },
        { $inc: { reserved: leg.reserve, free: -leg.reserve, holdCount: 1 }, $push: { holds: hold }, $set: { updatedAt: new Date() } },
      );
      if (result.matchedCount === 1) return;
      const doc = await this.readBalance(leg.balanceId);
      if (!doc && leg.guarded && leg.reserve > 0) throw insufficient(leg, 0);
      if (!doc) {
        await this.createBalance(leg);
        continue;
      }
      if (doc.holdCount >= this.settings.maxHolds) break;
      if (leg.guarded && doc.free < leg.reserve) throw insufficient(leg, doc.free);
    }
    throw new FlockError('SERVICE_UNAVAILABLE', `ledger: too many entries in flight on ${leg.balanceId}`, {
      details: { retryAfterMs: 100, service: 'ledger' },
    });
  }

  /** An empty balance document (an insert: FerretDB v1 drops empty arrays and nulls from an upsert's $setOnInsert). */
  private async createBalance(leg: Leg): Promise<void> {
    try {
      await this.balances.insertOne({
        _id: leg.balanceId,
        account: leg.account,
        currency: leg.currency,
        balance: 0,
        reserved: 0,
        free: 0,
        version: 0,
        holds: [],
        holdCount: 0,
        lastEntry: '',
        updatedAt: new Date(),
      });
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
    }
  }

  private async releaseHold(balance: string, hold: string, reserve: number): Promise<boolean> {
    const result = await this.balances.updateOne(
      { _id: balance, holds: hold },
      { $inc: { reserved: -reserve, free: reserve, holdCount: -1 }, $pull: { holds: hold }, $set: { updatedAt: new Date() } },
    );
    return result.modifiedCount === 1;
  }

  /** One abandoned hold: finish its entry, or rule its attempt out and release it. */
  private async resolveHold(balance: string, text: string, hold: ParsedHold): Promise<keyof RepairReport> {
    for (let tries = 0; tries < 5; tries++) {
      const stored = await this.entry(hold.entryId);
      if (!stored) {
        try {
          await this.entries.insertOne({
            _id: hold.entryId,
            kind: 'void',
            postings: [],
            accounts: [],
            refs: {},
            digest: '',
            status: 'void',
            attempt: '',
            voided: [hold.attempt],
            createdAt: new Date(),
            appliedAt: null,
          });
          await this.releaseHold(balance, text, hold.reserve);
          return 'voided';
        } catch (err) {
          if (!isDuplicateKey(err)) throw err;
          continue;
        }
      }
      if (stored.status === 'void') {
        if (stored.voided.includes(hold.attempt)) {
          await this.releaseHold(balance, text, hold.reserve);
          return 'released';
        }
        const marked = await this.entries.updateOne({ _id: stored._id, status: 'void' }, { $push: { voided: hold.attempt } });
        if (marked.modifiedCount === 1) {
          await this.releaseHold(balance, text, hold.reserve);
          return 'voided';
        }
        continue;
      }
      if (stored.attempt === hold.attempt) {
        await this.finish(stored);
        return 'finished';
      }
      await this.releaseHold(balance, text, hold.reserve);
      return 'released';
    }
    throw new FlockError('SERVICE_UNAVAILABLE', `ledger: could not resolve hold ${text}`, { details: { retryAfterMs: 1_000, service: 'ledger' } });
  }
}

function insufficient(leg: Leg, free: number): FlockError {
  return new FlockError('PAYMENT_INSUFFICIENT_BALANCE', undefined, {
    details: { account: leg.account, currency: leg.currency, available: Math.max(0, free), amount: leg.reserve },
  });
}
