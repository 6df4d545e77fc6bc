// What actor handlers may use besides their own state: the stores of the
// domain documents they own (ctx.services). The node supplies them when it
// starts the runtime; runtimes started without them (tests of the runtime
// itself) refuse any handler that reaches for them.
import type { SocialStore } from '../social/store.ts';

export interface ActorServices {
  social: SocialStore;
}

export function missingServices(): ActorServices {
  return new Proxy({} as ActorServices, {
    get(_target, name) {
      throw new Error(`actor services were not given to this runtime (asked for ${String(name)})`);
    },
  });
}
