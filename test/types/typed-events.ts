// Type-level tests, checked by `tsc --noEmit` (npm run typecheck): the typed
// delivery path refuses an event type the catalogue does not have and a
// payload that does not match its type, and the socket event maps do the
// same for server events. Each @ts-expect-error line must fail to compile;
// if one compiled, tsc would report the directive as unused.
import type { FlockClient } from '../../client/flock-client.ts';
import type { Delivery, FlockSocket } from '../../server/delivery.ts';
import type { StreamDelivery } from '../../streams/catalogue.ts';

export function deliveries(delivery: StreamDelivery, userId: string): void {
  void delivery.deliver(userId, 'auth:signedIn', { sessionId: 's', ip: '127.0.0.1' });
  // @ts-expect-error an event type that is not in the catalogue
  void delivery.deliver(userId, 'auth:signedOut', { sessionId: 's' });
  // @ts-expect-error a payload that does not match its type
  void delivery.deliver(userId, 'auth:signedIn', { sessionId: 's' });
  // @ts-expect-error the data of another type
  void delivery.deliver(userId, 'conversations:receipt', { sessions: 1 });
}

export function serverEvents(delivery: Delivery, socket: FlockSocket, users: string[]): void {
  delivery.toSocket(socket, 'auth:expired', { expiredAt: 1 });
  // @ts-expect-error an event the server-event catalogue does not have
  delivery.toSocket(socket, 'auth:gone', { expiredAt: 1 });
  // @ts-expect-error a payload of the wrong shape
  delivery.toUsers(users, 'conversations:typist', { conversationId: 'c' });
  // @ts-expect-error the raw socket is typed by the same map
  socket.emit('feeds:post', { postId: 'p' });
}

export function client(flock: FlockClient): void {
  flock.on('stream:event', (event) => {
    if (event.type === 'conversations:message') {
      const seq: number = event.data.message.seq;
      void seq;
    }
    // @ts-expect-error the union has no such type
    if (event.type === 'conversation.message') return;
  });
  // @ts-expect-error no such request
  void flock.request('posts:nothing', {});
  // @ts-expect-error a request payload of the wrong shape
  void flock.request('posts:like', { post: 'p_x' });
}
