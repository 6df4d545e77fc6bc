// One timer for many deadlines: the runtime's local turns expire through one
// (actors/runtime.ts), its pending remote asks through another
// (actors/transport.ts).
const DEADLINE_SLOT_MS = 10;

/**
 * Expires waiters at their deadline (at most DEADLINE_SLOT_MS late) with one
 * timer for all of them: waiters sit in slots of that width, and the timer is
 * armed for the earliest slot. Arming and clearing a timer per message cost
 * more than the rest of a message's bookkeeping. The timer does not keep the
 * process alive; the runtime's own intervals do while it runs.
 */
export class Deadlines<T extends { readonly deadline: number }> {
  private readonly slots = new Map<number, Set<T>>();
  private timer: NodeJS.Timeout | undefined;
  private armedSlot = Number.POSITIVE_INFINITY;

  constructor(private readonly expire: (item: T) => void) {}

  add(item: T): void {
    const slot = Math.ceil(item.deadline / DEADLINE_SLOT_MS);
    let items = this.slots.get(slot);
    if (!items) this.slots.set(slot, (items = new Set()));
    items.add(item);
    if (slot < this.armedSlot) this.arm(slot);
  }

  delete(item: T): void {
    const slot = Math.ceil(item.deadline / DEADLINE_SLOT_MS);
    const items = this.slots.get(slot);
    if (items?.delete(item) && items.size === 0) this.slots.delete(slot);
  }

  /** Drops every waiter without expiring it (shutdown). */
  clear(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.armedSlot = Number.POSITIVE_INFINITY;
    this.slots.clear();
  }

  private arm(slot: number): void {
    clearTimeout(this.timer);
    this.armedSlot = slot;
    this.timer = setTimeout(() => this.sweep(), Math.max(0, slot * DEADLINE_SLOT_MS - Date.now()));
    this.timer.unref();
  }

  private sweep(): void {
    this.timer = undefined;
    this.armedSlot = Number.POSITIVE_INFINITY;
    const now = Date.now();
    let next = Number.POSITIVE_INFINITY;
    for (const [slot, items] of this.slots) {
      if (slot * DEADLINE_SLOT_MS <= now) {
        this.slots.delete(slot);
        for (const item of items) this.expire(item);
      } else if (slot < next) {
        next = slot;
      }
    }
    if (next !== Number.POSITIVE_INFINITY && next < this.armedSlot) this.arm(next);
  }
}
