// The actor types every node hosts. Every node must register the same types:
// an actor may be activated on any of them.
import { ConversationActor } from './conversation.ts';
import type { ActorType } from './define.ts';
import { NotificationsActor } from './notifications.ts';
import { PostActor } from './post.ts';
import { UserActor } from './user.ts';

export const actorTypes: readonly ActorType[] = [UserActor, PostActor, ConversationActor, NotificationsActor];
