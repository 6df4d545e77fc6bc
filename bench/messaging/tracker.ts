// The messaging bench's bookkeeping for one system (Flock or the relay): every
// message sent, when its ack came, and every copy of it that reached a member's
// socket, all on the bench process's clock. From that come the latencies and
// the checks: each acked message reaches its recipient and its sender's own
// socket exactly once, and in order. For Flock, order means the conversation's
// sequence numbers arrive at every member as 1, 2, 3, ... with the seq the ack
// gave; for the relay, which numbers nothing, each sender's messages arrive in
// the order they were sent.

export interface Planned {
  /** clientMessageId: unique over the whole bench run. */
  id: string;
  conversation: number;
  sender: number;
  recipient: number;
  text: string;
  /** Which run it belongs to (e.g. "paced", "paced:warm"). */
  run: string;
}

interface Sent extends Planned {
  /** The sender's ordinal in this system (1, 2, ...), for the relay's order check. */
  n: number;
  sentAt: number;
  ackedAt?: number;
  /** The seq the ack gave (Flock). */
  ackSeq?: number;
  error?: string;
  /** First arrival at the recipient. */
  deliveredAt?: number;
  /** Resolves on the first arrival at the recipient. */
  arrived: Promise<void>;
  arrive: () => void;
  copies: number;
  ownCopies: number;
}

export interface RunStats {
  sent: number;
  acked: number;
  errors: Record<string, number>;
  /** Acked messages that reached their recipient, and those that did not (after the settle wait). */
  delivered: number;
  lost: number;
  /** Acked messages whose copy for the sender's own socket never came (Flock and the relay both send one). */
  ownLost: number;
  /** Extra copies of a message at the same socket. */
  duplicates: number;
  deliveryMs: number[];
  ackMs: number[];
  /** From the first send to the last ack or delivery of the run's messages. */
  elapsedMs: number;
}

export interface Checks {
  /** Copies that arrived out of order (Flock: seq not last + 1; relay: a sender's message before an earlier one). */
  outOfOrder: number;
  /** Copies whose seq differs from the one the sender's ack gave. */
  seqMismatch: number;
  /** Copies of messages the bench never sent. */
  unknown: number;
}

export class Tracker {
  private readonly messages = new Map<string, Sent>();
  private readonly sentBy = new Map<number, number>();
  /** Receiver -> last seq seen (each user is in one conversation). */
  private readonly lastSeq = new Map<number, number>();
  /** `${receiver}|${sender}` -> last ordinal seen. */
  private readonly lastN = new Map<string, number>();
  /** Message id -> the seq its copies carried. */
  private readonly seqSeen = new Map<string, number>();
  readonly checks: Checks = { outOfOrder: 0, seqMismatch: 0, unknown: 0 };

  /** Records a send; call right before the request leaves. */
  sending(p: Planned): void {
    const n = (this.sentBy.get(p.sender) ?? 0) + 1;
    this.sentBy.set(p.sender, n);
    let arrive = () => {};
    const arrived = new Promise<void>((resolve) => (arrive = resolve));
    this.messages.set(p.id, { ...p, n, sentAt: performance.now(), copies: 0, ownCopies: 0, arrived, arrive });
  }

  acked(id: string, seq?: number): void {
    const m = this.messages.get(id);
    if (!m) return;
    m.ackedAt = performance.now();
    if (seq !== undefined) {
      m.ackSeq = seq;
      // A copy may come before the ack (Flock delivers before it acks).
      if (m.copies + m.ownCopies > 0 && this.seqSeen.get(id) !== seq) this.checks.seqMismatch++;
    }
  }

  failed(id: string, code: string): void {
    const m = this.messages.get(id);
    if (m) m.error = code;
  }

  /** A copy of message `id` reached `receiver`'s socket; `seq` for Flock, null for the relay. */
  delivered(receiver: number, id: string, seq: number | null): void {
    const at = performance.now();
    const m = this.messages.get(id);
    if (!m) {
      this.checks.unknown++;
      return;
    }
    if (receiver === m.recipient) {
      m.copies++;
      if (m.deliveredAt === undefined) {
        m.deliveredAt = at;
        m.arrive();
      }
    } else if (receiver === m.sender) m.ownCopies++;
    else this.checks.unknown++;
    if (seq !== null) {
      const last = this.lastSeq.get(receiver) ?? 0;
      if (seq !== last + 1) this.checks.outOfOrder++;
      this.lastSeq.set(receiver, Math.max(last, seq));
      if (m.ackSeq !== undefined && m.ackSeq !== seq) this.checks.seqMismatch++;
      this.seqSeen.set(id, seq);
    } else {
      const key = `${receiver}|${m.sender}`;
      if (m.n <= (this.lastN.get(key) ?? 0)) this.checks.outOfOrder++;
      this.lastN.set(key, Math.max(this.lastN.get(key) ?? 0, m.n));
    }
  }

  /**
   * Resolves once message `id` has reached its recipient, or after `timeoutMs`;
   * at once if it was never sent or its send failed.
   */
  async arrival(id: string, timeoutMs: number): Promise<void> {
    const m = this.messages.get(id);
    if (!m || m.error !== undefined || m.deliveredAt !== undefined) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([m.arrived, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
  }

  /** Acked messages of `run` still missing a copy at the recipient or the sender. */
  undelivered(run: string): number {
    let n = 0;
    for (const m of this.messages.values()) if (m.run === run && m.ackedAt !== undefined && (m.copies === 0 || m.ownCopies === 0)) n++;
    return n;
  }

  /** The messages of `run`, or of every run. */
  stats(run?: string): RunStats {
    const out: RunStats = { sent: 0, acked: 0, errors: {}, delivered: 0, lost: 0, ownLost: 0, duplicates: 0, deliveryMs: [], ackMs: [], elapsedMs: 0 };
    let first = Infinity;
    let last = -Infinity;
    for (const m of this.messages.values()) {
      if (run !== undefined && m.run !== run) continue;
      out.sent++;
      first = Math.min(first, m.sentAt);
      if (m.error !== undefined) out.errors[m.error] = (out.errors[m.error] ?? 0) + 1;
      if (m.ackedAt !== undefined) {
        out.acked++;
        out.ackMs.push(m.ackedAt - m.sentAt);
        last = Math.max(last, m.ackedAt);
        if (m.copies === 0) out.lost++;
        if (m.ownCopies === 0) out.ownLost++;
      }
      if (m.deliveredAt !== undefined) {
        out.delivered++;
        out.deliveryMs.push(m.deliveredAt - m.sentAt);
        last = Math.max(last, m.deliveredAt);
      }
      out.duplicates += Math.max(0, m.copies - 1) + Math.max(0, m.ownCopies - 1);
    }
    out.elapsedMs = out.sent === 0 ? 0 : last - first;
    out.deliveryMs.sort((a, b) => a - b);
    out.ackMs.sort((a, b) => a - b);
    return out;
  }
}
