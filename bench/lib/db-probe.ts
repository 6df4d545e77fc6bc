// Preloaded into the social bench's Flock nodes (`node --import tsx --import
// bench/lib/db-probe.ts server/main.ts`): tallies the MongoDB commands the
// node sends (bench/lib/db-commands.ts) and answers the bench over IPC. It
// turns on the driver's command monitoring by wrapping mongoose.connect; the
// server code is not touched.
import mongoose from 'mongoose';
import { CommandTally, type DbStats } from './db-commands.ts';

export type DbProbeRequest = { id: number; op: 'db-stats'; reset: boolean };
export type DbProbeReply = { id: number; stats: DbStats };

const tally = new CommandTally();

const connect = mongoose.connect.bind(mongoose);
mongoose.connect = (uri: string, options?: mongoose.ConnectOptions) => connect(uri, { ...options, monitorCommands: true });
mongoose.connection.once('open', () => tally.attach(mongoose.connection.getClient()));

process.on('message', (m: DbProbeRequest) => {
  if (m?.op !== 'db-stats') return;
  process.send?.({ id: m.id, stats: tally.take(m.reset) } satisfies DbProbeReply);
});
