// Every socket channel the gateway serves. The typed client and the AsyncAPI
// document are derived from this tuple.
import { authChannel } from './auth.ts';
import { conversationsChannel } from './conversations.ts';
import { feedsChannel } from './feeds.ts';
import { graphChannel } from './graph.ts';
import { mediaChannel } from './media.ts';
import { notificationsChannel } from './notifications.ts';
import { postsChannel } from './posts.ts';
import { presenceChannel } from './presence.ts';
import { streamChannel } from './stream.ts';
import { systemChannel } from './system.ts';
import { usersChannel } from './users.ts';

export const channels = [
  systemChannel,
  authChannel,
  usersChannel,
  streamChannel,
  presenceChannel,
  graphChannel,
  postsChannel,
  conversationsChannel,
  notificationsChannel,
  feedsChannel,
  mediaChannel,
] as const;
