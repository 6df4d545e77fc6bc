// Socket clients in tests: every event the server pushes is checked against
// the server-event catalogue (channels/server-events.ts), so an event that is
// not in the catalogue, or whose payload its schema does not describe, fails
// the test file that received it (assertEventsValid, run by the clusters'
// teardown). Tests that send what the typed client refuses (unknown events,
// wrong arities) use the untyped socket underneath.
import type { Socket } from 'socket.io-client';
import { FlockClient, type FlockClientOptions } from '../../client/flock-client.ts';
import { serverEvents, type ServerEventName } from '../../channels/server-events.ts';

const invalid: { event: string; problem: string }[] = [];

function isServerEvent(name: string): name is ServerEventName {
  return Object.hasOwn(serverEvents, name);
}

/** A client whose incoming events are checked against the catalogue. */
export function checkedClient(url: string, options: FlockClientOptions = {}): FlockClient {
  const c = new FlockClient(url, options);
  untyped(c).onAny((event: string, ...args: unknown[]) => {
    if (!isServerEvent(event)) {
      invalid.push({ event, problem: 'not in the server-event catalogue' });
      return;
    }
    const parsed = serverEvents[event].payload.safeParse(args[0]);
    if (!parsed.success) invalid.push({ event, problem: parsed.error.message });
    else if (args.length !== 1) invalid.push({ event, problem: `${args.length} arguments` });
  });
  return c;
}

/** Throws if any checked client received an event the catalogue does not describe. */
export function assertEventsValid(): void {
  if (invalid.length > 0) throw new Error(`events outside the catalogue: ${JSON.stringify(invalid.slice(0, 5))}`);
}

/** The socket under a client, without the event maps (for requests the typed client refuses to send). */
export function untyped(c: FlockClient): Socket {
  return c.socket;
}
