// Every socket channel the gateway serves. The typed client and the AsyncAPI
// document are derived from this tuple.
import { systemChannel } from './system.ts';

export const channels = [systemChannel] as const;
