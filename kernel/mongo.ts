// The node's MongoDB connection (mongoose). Queries are strict and filters
// sanitized; writes ask for majority acknowledgement (FerretDB ignores it, a
// real replica set honours it).
//
// While the database is away an operation fails after SELECTION_TIMEOUT_MS
// (a MongoServerSelectionError, SERVICE_UNAVAILABLE to clients) instead of
// waiting for it: mongoose does not buffer commands, and the driver looks for
// a server for less than an actor ask's deadline (ACTOR_ASK_TIMEOUT_MS, 5 s),
// so clients hear "unavailable, retry" rather than a timeout. Start-up keeps
// trying to connect for START_TIMEOUT_MS.
import mongoose, { type Connection, type InferSchemaType, type Model, type Schema } from 'mongoose';
import { unavailableService } from './unavailable.ts';

mongoose.set('strictQuery', true);
mongoose.set('sanitizeFilter', true);

export interface MongoSettings {
  url: string;
  dbName: string;
  poolSize: number;
  appName: string;
}

const SELECTION_TIMEOUT_MS = 3_000;
const START_TIMEOUT_MS = 30_000;

export async function connectMongo(settings: MongoSettings): Promise<typeof mongoose> {
  const giveUpAt = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    try {
      return await mongoose.connect(settings.url, {
        dbName: settings.dbName,
        appName: settings.appName,
        maxPoolSize: settings.poolSize,
        minPoolSize: 1,
        serverSelectionTimeoutMS: SELECTION_TIMEOUT_MS,
        connectTimeoutMS: 10_000,
        heartbeatFrequencyMS: 5_000,
        bufferCommands: false,
        writeConcern: { w: 'majority' },
        autoIndex: true,
        autoCreate: true,
      });
    } catch (err) {
      if (Date.now() > giveUpAt || !unavailableService(err)) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

/** Round trip to the server; throws if it does not answer. */
export async function pingMongo(): Promise<void> {
  const db = mongoose.connection.db;
  if (!db || mongoose.connection.readyState !== mongoose.ConnectionStates.connected) throw new Error('not connected');
  await db.admin().command({ ping: 1 });
}

export async function disconnectMongo(): Promise<void> {
  await mongoose.disconnect();
}

/** Whether the server is FerretDB (it answers buildInfo with its own version). */
export async function isFerretDB(connection: mongoose.Connection): Promise<boolean> {
  const db = connection.db;
  if (!db) throw new Error('not connected');
  const info = await db.admin().command({ buildInfo: 1 });
  return typeof info.ferretdbVersion === 'string';
}

/** The model `name` on `connection`, compiled the first time it is asked for. */
export function modelOn<S extends Schema>(connection: Connection, name: string, schema: S): Model<InferSchemaType<S>> {
  return connection.modelNames().includes(name) ? connection.model<InferSchemaType<S>>(name) : connection.model<InferSchemaType<S>>(name, schema);
}
