// The node's MongoDB connection (mongoose). Queries are strict and filters
// sanitized; writes ask for majority acknowledgement (FerretDB ignores it, a
// real replica set honours it).
import mongoose, { type Connection, type InferSchemaType, type Model, type Schema } from 'mongoose';

mongoose.set('strictQuery', true);
mongoose.set('sanitizeFilter', true);

export interface MongoSettings {
  url: string;
  dbName: string;
  poolSize: number;
  appName: string;
}

export async function connectMongo(settings: MongoSettings): Promise<typeof mongoose> {
  return mongoose.connect(settings.url, {
    dbName: settings.dbName,
    appName: settings.appName,
    maxPoolSize: settings.poolSize,
    minPoolSize: 1,
    serverSelectionTimeoutMS: 10_000,
    connectTimeoutMS: 10_000,
    heartbeatFrequencyMS: 5_000,
    writeConcern: { w: 'majority' },
    autoIndex: true,
    autoCreate: true,
  });
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
