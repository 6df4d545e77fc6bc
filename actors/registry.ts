// The actor implementations every node hosts. Every node must register the
// same types: an actor may be activated on any of them. Callers reach them
// through their interfaces (actors/contracts/).
import { conversationActor } from './conversation.ts';
import type { ActorType } from './define.ts';
import { feedShardActor } from './feed-shard.ts';
import { mediaActor } from './media.ts';
import { notificationsActor } from './notifications.ts';
import { postActor } from './post.ts';
import { userActor } from './user.ts';

export const actorTypes: readonly ActorType[] = [userActor, postActor, conversationActor, notificationsActor, feedShardActor, mediaActor];
