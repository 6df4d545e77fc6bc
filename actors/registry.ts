// The actor types every node hosts. Every node must register the same types:
// an actor may be activated on any of them. Product actors (users,
// conversations, feeds) are added here as they are built.
import type { ActorType } from './define.ts';

export const actorTypes: readonly ActorType[] = [];
