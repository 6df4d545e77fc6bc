// The connection that carries replies to asks from other nodes, muted with
// CLIENT REPLY OFF (see the class comment), and the one RESP frame writer
// that muting needs.
import type { Logger } from '../kernel/logger.ts';
import { untilReady, type Redis } from '../kernel/redis.ts';

/**
 * Publishes replies on a connection in CLIENT REPLY OFF mode. Redis then
 * answers nothing on it, so the owner is not woken once more per reply to read
 * a receiver count it has no use for (a lost reply is an ask timeout either
 * way); on this 2-core machine that extra wake-up cost about 0.4x a PING per
 * ask (BENCHMARKS.md). ioredis cannot track a connection that gets no answers,
 * so it only connects, authenticates and reconnects this one: once its
 * handshake is done, frames are written to its socket directly. `publish`
 * returns false (the caller then takes an ordinary connection) until the
 * current socket is muted, and for good if Redis answers anyway (CLIENT REPLY
 * refused, e.g. by a proxy).
 */
export class ReplyPublisher {
  private muted: unknown;
  private refused = false;

  constructor(
    private readonly client: Redis,
    private readonly log: Logger,
  ) {
    client.on('ready', () => this.mute());
  }

  ready(): Promise<void> {
    return untilReady(this.client);
  }

  publish(channel: string, message: string): boolean {
    const stream = this.client.stream;
    if (this.refused || stream !== this.muted || this.client.status !== 'ready') return false;
    stream.write(respCommand('PUBLISH', channel, message));
    return true;
  }

  close(): Promise<void> {
    // QUIT would wait for an answer that never comes; the socket is flushed before it closes.
    this.client.disconnect();
    return Promise.resolve();
  }

  private mute(): void {
    if (this.refused) return;
    const stream = this.client.stream;
    stream.write(respCommand('CLIENT', 'REPLY', 'OFF'));
    stream.on('data', () => {
      if (this.refused) return;
      this.refused = true;
      this.log.warn('Redis answered on the muted reply connection (CLIENT REPLY OFF refused?): replies take the command connection');
    });
    this.muted = stream;
  }
}

/** One command in the Redis protocol (RESP2 array of bulk strings). */
function respCommand(...args: string[]): string {
  let frame = `*${args.length}\r\n`;
  for (const arg of args) frame += `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`;
  return frame;
}
