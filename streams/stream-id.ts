// Redis stream ids ("<ms>-<seq>", two unsigned 64-bit integers) as the
// sequence ids clients store. Parsing is strict (both parts, no signs or
// spaces) so that anything a client sends is either a well-formed id or an
// error, and comparison is numeric (BigInt), never lexicographic.

export interface StreamId {
  readonly ms: bigint;
  readonly seq: bigint;
}

const U64_MAX = 2n ** 64n - 1n;
const SHAPE = /^(\d{1,20})-(\d{1,20})$/;

/** The id, or undefined when the text is not a complete, in-range stream id. */
export function parseStreamId(text: string): StreamId | undefined {
  const match = SHAPE.exec(text);
  if (!match) return undefined;
  const ms = BigInt(match[1]!);
  const seq = BigInt(match[2]!);
  if (ms > U64_MAX || seq > U64_MAX) return undefined;
  return { ms, seq };
}

export function compareStreamIds(a: StreamId, b: StreamId): -1 | 0 | 1 {
  if (a.ms !== b.ms) return a.ms < b.ms ? -1 : 1;
  if (a.seq !== b.seq) return a.seq < b.seq ? -1 : 1;
  return 0;
}

export function formatStreamId(id: StreamId): string {
  return `${id.ms}-${id.seq}`;
}

/** True for the largest possible id, after which no exclusive range can start. */
export function isMaxStreamId(id: StreamId): boolean {
  return id.ms === U64_MAX && id.seq === U64_MAX;
}
