// Lua scripts run on Redis by their SHA (EVALSHA), loaded again with EVAL
// when Redis answers NOSCRIPT (after a restart or SCRIPT FLUSH). The reply
// is parsed with the script's zod schema: Redis is another process, and a
// reply that is not what the script returns is an error, not a cast.
import { createHash } from 'node:crypto';
import type { z } from 'zod';
import { FlockError } from './errors.ts';
import type { Redis } from './redis.ts';

export type ScriptArg = string | number;

export class RedisScript<R> {
  readonly sha: string;

  constructor(
    /** For error messages and logs. */
    readonly name: string,
    private readonly lua: string,
    private readonly reply: z.ZodType<R>,
  ) {
    this.sha = createHash('sha1').update(lua).digest('hex');
  }

  async run(redis: Redis, keys: readonly string[], args: readonly ScriptArg[] = []): Promise<R> {
    let raw: unknown;
    try {
      raw = await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!(err instanceof Error && err.message.startsWith('NOSCRIPT'))) throw err;
      raw = await redis.eval(this.lua, keys.length, ...keys, ...args);
    }
    const parsed = this.reply.safeParse(raw);
    if (!parsed.success) throw new FlockError('SERVER_INTERNAL', `Redis script ${this.name} answered something it never returns`);
    return parsed.data;
  }
}
