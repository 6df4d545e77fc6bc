// Limits shared across surfaces: the shape of a rate limit, and the default
// size bounds of what clients send. Each surface states its own values with
// its declarations (channels, routes); these are the common defaults.

/** A token bucket: bursts of `capacity`, `perSecond` sustained. */
export interface RateLimit {
  /** Burst size. */
  capacity: number;
  /** Sustained rate. */
  perSecond: number;
}

/** Largest socket request accepted when an event does not say, in bytes of JSON. */
export const DEFAULT_REQUEST_BYTES = 16 * 1024;

/** Largest `data` of a personal-stream event, in bytes of its UTF-8 JSON. */
export const STREAM_EVENT_MAX_BYTES = 16 * 1024;
