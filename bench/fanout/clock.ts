// The one clock of the fan-out bench: wall-clock milliseconds with
// sub-millisecond resolution, comparable between the bench and its load
// processes. Date.now() is the same clock in every process but ticks in whole
// ms; performance.now() is finer but starts at each process's own origin. The
// anchor maps the second onto the first at the moments Date.now() ticks over;
// a preemption between the two readings can only make an estimate too small,
// so the largest of a few is kept. The bench still measures what is left
// between processes (bench/fanout.ts clockCheck) and corrects for it.
const EDGES = 3;
const anchor = (() => {
  let best = Number.NEGATIVE_INFINITY;
  for (let k = 0; k < EDGES; k++) {
    const start = Date.now();
    let t = start;
    // At most a millisecond of spinning per edge, once per process.
    while (t === start) t = Date.now();
    best = Math.max(best, t - performance.now());
  }
  return best;
})();

export function now(): number {
  return anchor + performance.now();
}
