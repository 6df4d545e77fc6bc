// Every socket channel the gateway serves. The typed client and the AsyncAPI
// document are derived from this tuple.
import { presenceChannel } from './presence.ts';
import { streamChannel } from './stream.ts';
import { systemChannel } from './system.ts';

export const channels = [systemChannel, streamChannel, presenceChannel] as const;
