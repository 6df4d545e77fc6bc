// Preloaded into the Flock node under test (`node --expose-gc --import tsx
// --import bench/gateway/flock-probe.ts server/main.ts`): answers the gateway
// bench's memory/CPU/GC requests over IPC without touching the server code.
import { installProbe } from '../lib/ipc.ts';

installProbe();
