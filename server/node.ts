// The composition root of one Flock node: connects the backing services,
// starts jobs and the Socket.IO/HTTP listener, and shuts all of it down in
// order. `main.ts` runs it as a process; tests run it as a process too.
import { FlockError } from '../kernel/errors.ts';
import type { Server } from 'socket.io';
import type { Config } from './config.ts';
import type { ResolvedServices } from '../devservices/index.ts';
import { createJobRunner, type JobRunner } from '../jobs/agenda.ts';
import type { Logger } from '../kernel/logger.ts';
import { connectMongo, disconnectMongo, isFerretDB, pingMongo } from '../kernel/mongo.ts';
import { Readiness } from '../kernel/readiness.ts';
import { closeRealtime, createRealtime } from './realtime.ts';
import { createRedis, untilReady } from '../kernel/redis.ts';
import { createS3Client, ensureBucket, pingS3 } from './s3.ts';
import { createStripe } from './stripe.ts';
import { openEngine, registerEngineMetric } from './socket-engine.ts';
import { routes } from '../routes/registry.ts';
import { opsAccess } from './ops-access.ts';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { ActorRuntime } from '../actors/runtime.ts';
import { createMedia } from './media.ts';
import { channels } from '../channels/registry.ts';
import { buildAsyncApi } from './asyncapi.ts';
import { Delivery } from './delivery.ts';
import { attachGateway } from './gateway.ts';
import { RateLimiter } from './rate-limit.ts';
import type { GatewayServices } from '../channels/services.ts';
import { createPresence } from '../presence/presence.ts';
import { createAccountService } from '../auth/accounts.ts';
import { loadJwtSecret } from '../auth/jwt-secret.ts';
import { createLoginService } from '../auth/login.ts';
import { createRegistrationService } from '../auth/registration.ts';
import { createRecentAuth } from '../auth/recent-auth.ts';
import { createRevocations } from '../auth/revocations.ts';
import { createLoginThrottle } from '../auth/throttle.ts';
import { createTokenService } from '../auth/tokens.ts';
import { createOAuthService } from '../auth/oauth/oauth-service.ts';
import { createPersonalStream } from '../streams/personal-stream.ts';
import { createSenderQuota } from '../streams/sender-quota.ts';
import { actorTypes } from '../actors/registry.ts';
import { defaultMessagingSettings, MessagingStore } from '../messaging/store.ts';
import { notificationHandler } from '../consumers/notifications.ts';
import { feedHandler } from '../consumers/feeds.ts';
import { HomeFeeds } from '../feeds/home.ts';
import { defaultFeedSettings, FeedStore } from '../feeds/store.ts';
import { EventConsumer, type EventConsumerOptions } from '../events/consumer-group.ts';
import { NotificationStore } from '../notifications/store.ts';
import { SocialReads } from '../social/reads.ts';
import { defaultSocialSettings, SocialStore } from '../social/store.ts';

/** Version of the socket API in the AsyncAPI document. */
export const API_VERSION = '0.2.0';

export interface FlockNode {
  port: number;
  readiness: Readiness;
  io: Server;
  jobs: JobRunner;
  actors: ActorRuntime;
  gatewayServices: GatewayServices;
  /** Graceful shutdown: stop accepting, drain sockets and jobs, close services. */
  close(): Promise<void>;
}

export async function startNode(config: Config, services: ResolvedServices, log: Logger): Promise<FlockNode> {
  const readiness = new Readiness();
  // First, so that SOCKET_ENGINE=uws on a platform without its binary stops the node before anything starts.
  const engine = await openEngine(config.socketEngine, log);
  const mongoose = await connectMongo({
    url: services.mongoUrl,
    dbName: config.mongo.dbName,
    poolSize: config.mongo.poolSize,
    appName: `flock-${config.nodeId}`,
  });
  const db = mongoose.connection.db;
  if (!db) throw new Error('mongoose connected without a database handle');

  const redis = createRedis(services.redisUrl, `flock:${config.nodeId}`, log);
  const pub = createRedis(services.redisUrl, `flock:${config.nodeId}:pub`, log);
  const sub = createRedis(services.redisUrl, `flock:${config.nodeId}:sub`, log);

  const s3 = createS3Client(services.s3);
  await ensureBucket(s3, services.s3.bucket);
  const stripe = createStripe(services.stripe);

  readiness.add({ name: 'mongo', description: services.descriptions.mongo, check: pingMongo });
  readiness.add({
    name: 'redis',
    description: services.descriptions.redis,
    check: async () => {
      await redis.ping();
    },
  });
  readiness.add({ name: 's3', description: services.descriptions.s3, check: () => pingS3(s3, services.s3.bucket) });
  readiness.add({
    name: 'stripe',
    description: services.descriptions.stripe,
    // Only a local stripe-mock is probed; api.stripe.com is not called on every probe.
    check: async () => {
      if (services.stripe.apiBase) await stripe.balance.retrieve();
    },
  });

  const jobs = createJobRunner({
    db,
    redisUrl: services.redisUrl,
    keyPrefix: config.redis.keyPrefix,
    nodeId: config.nodeId,
    processEvery: config.jobs.processEvery,
    housekeepingEvery: config.jobs.housekeepingEvery,
    retentionDays: config.jobs.retentionDays,
    media: () => mediaParts.jobs(),
    log: log.child({ subsystem: 'jobs' }),
  });
  const jwtSecret = await loadJwtSecret(config.auth.jwtSecret, config.dataDir);

  const registry = new Registry();
  registry.setDefaultLabels({ node: config.nodeId });
  collectDefaultMetrics({ register: registry });
  registerEngineMetric(registry, engine.name);
  const prefix = config.redis.keyPrefix;
  const social = new SocialStore(
    mongoose.connection,
    redis,
    { ...defaultSocialSettings, idLookup: (await isFerretDB(mongoose.connection)) ? 'point' : 'in', maxFollowing: config.social.maxFollowing },
    `${prefix}:social`,
  );
  await social.init();
  const messaging = new MessagingStore(mongoose.connection, {
    ...defaultMessagingSettings,
    idLookup: social.settings.idLookup,
    ttlIndexes: !(await isFerretDB(mongoose.connection)),
    maxMembers: config.messaging.maxMembers,
    resendWindowMs: config.messaging.resendWindowMs,
    unreadScan: config.messaging.unreadScan,
  });
  await messaging.init();
  const notifications = new NotificationStore(mongoose.connection);
  await notifications.init();
  const feedStore = new FeedStore(redis, prefix, { ...defaultFeedSettings, fanoutThreshold: config.feeds.fanoutThreshold, maxLength: config.feeds.maxLength });
  // Actors deliver to personal streams through the realtime server, and ask
  // presence, both of which start after them.
  const starting = async (): Promise<never> => {
    throw new FlockError('ACTOR_UNAVAILABLE', 'the node is still starting');
  };
  let delivery: Delivery | undefined;
  let isOnline: (userId: string) => Promise<boolean> = starting;
  let runtime: ActorRuntime | undefined;
  const mediaParts = await createMedia({
    config: config.media,
    secret: jwtSecret,
    connection: mongoose.connection,
    db,
    redis,
    prefix,
    s3,
    bucket: services.s3.bucket,
    nodeId: config.nodeId,
    ffmpegPath: services.media.ffmpegPath,
    ffprobePath: services.media.ffprobePath,
    jobs,
    actors: () => runtime ?? unavailable('actors'),
    deliver: async (userId, type, data) => (delivery ?? (await starting())).deliver(userId, type, data),
    log: log.child({ subsystem: 'media' }),
  });
  const actors = await ActorRuntime.start({
    services: {
      social,
      messaging,
      notifications,
      feeds: feedStore,
      feedShards: config.feeds.shards,
      deliver: async (userId, type, data) => (delivery ?? (await starting())).deliver(userId, type, data),
      streamQuota: createSenderQuota({
        redis,
        prefix,
        settings: { bytesPerMinute: config.streams.senderBytesPerMinute, bytesPerRecipient: config.streams.senderBytesPerRecipient },
      }),
      isOnline: (userId) => isOnline(userId),
      media: mediaParts.effects,
    },
    redisUrl: services.redisUrl,
    connection: mongoose.connection,
    nodeId: config.nodeId,
    namespace: prefix,
    types: actorTypes,
    log,
    registry,
    leaseMs: config.actors.leaseMs,
    idleAfterMs: config.actors.idleAfterMs,
    mailboxCapacity: config.actors.mailboxCapacity,
    defaultTimeoutMs: config.actors.askTimeoutMs,
  });
  runtime = actors;
  // Jobs run once what they use exists.
  await jobs.start();

  await Promise.all([untilReady(pub), untilReady(sub)]);
  const io = createRealtime({
    engine,
    pub,
    sub,
    adapterKey: `${prefix}:sio`,
    maxPayloadBytes: config.socketMaxPayloadBytes,
    log: log.child({ subsystem: 'realtime' }),
  });
  const streams = createPersonalStream({ redis, prefix, settings: { maxBytes: config.streams.maxBytes } });
  delivery = new Delivery(io, streams, config.env !== 'production');
  const live = delivery;
  const presence = createPresence({
    redis,
    prefix,
    nodeId: config.nodeId,
    leaseMs: config.actors.leaseMs,
    maxSocketsPerUser: config.sockets.perUser,
    log: log.child({ subsystem: 'presence' }),
  });
  await presence.start();
  isOnline = async (userId) => (await presence.status([userId])).get(userId)?.online ?? false;
  const accounts = createAccountService({ connection: mongoose.connection });
  await accounts.init();
  const revocationsSub = createRedis(services.redisUrl, `flock:${config.nodeId}:revocations`, log);
  const revocations = createRevocations({ redis, subscriber: revocationsSub, connection: mongoose.connection, settings: { prefix }, log });
  await revocations.init();
  const tokens = createTokenService({
    connection: mongoose.connection,
    settings: {
      secret: jwtSecret,
      accessTtlSeconds: config.auth.accessTtlSeconds,
      refreshTtlSeconds: config.auth.refreshTtlSeconds,
    },
    lookupRoles: async (userId) => (await accounts.findById(userId))?.roles ?? null,
    revocations,
  });
  await tokens.init();
  const login = createLoginService({
    accounts,
    throttle: createLoginThrottle({ redis, settings: { ...config.auth.login, prefix } }),
    log: log.child({ subsystem: 'auth' }),
  });
  const registration = createRegistrationService({ accounts, redis, settings: { ...config.auth.registration, prefix } });
  const recentAuth = createRecentAuth({ accounts, login, maxAgeSeconds: config.auth.reauthMaxAgeSeconds });
  const oauth = config.oauth
    ? createOAuthService({
        accounts,
        tokens,
        redis,
        prefix,
        settings: config.oauth,
        // The link is made: a failed notice is logged, not the link's failure.
        onLinked: (userId, provider, via) =>
          live.deliver(userId, 'auth:providerLinked', { provider, via }).catch((err: unknown) => {
            log.error({ err, userId, provider }, 'could not tell the user about a linked provider');
          }),
      })
    : undefined;
  const reads = new SocialReads(social);
  const feeds = new HomeFeeds(feedStore, reads, redis, prefix);
  const gatewayServices: GatewayServices = {
    oauth,
    actors,
    streams,
    presence,
    accounts,
    login,
    registration,
    recentAuth,
    tokens,
    social,
    reads,
    deliver: (userId, type, data) => live.deliver(userId, type, data),
    messaging,
    notifications,
    feeds,
    watchAuthor: (userId, authorId, watch) => live.watchAuthor(userId, authorId, watch),
    toUsers: (userIds, event, payload) => live.toUsers(userIds, event, payload),
    media: { reads: mediaParts.reads, direct: mediaParts.direct },
  };
  const consumer = (group: string, handle: EventConsumerOptions['handle']) =>
    new EventConsumer({
      redisUrl: services.redisUrl,
      streamKey: social.events.streamKey,
      group,
      nodeId: config.nodeId,
      log: log.child({ subsystem: group }),
      handle,
    });
  const consumers = [
    consumer('notifications', notificationHandler(actors, gatewayServices.reads)),
    consumer('feeds', feedHandler({ feeds, reads: gatewayServices.reads, redis, live, actors, shards: config.feeds.shards })),
  ];
  await Promise.all(consumers.map((c) => c.start()));
  const limiter = new RateLimiter(redis, prefix);
  const gateway = attachGateway(io, {
    services: gatewayServices,
    authenticate: (token) => tokens.verifyAccessToken(token),
    channels,
    allowedOrigins: config.allowedOrigins,
    trustProxyHops: config.trustProxyHops,
    ipRatePerSecond: config.ipRatePerSecond,
    sockets: config.sockets,
    limiter,
    delivery: live,
    log: log.child({ subsystem: 'gateway' }),
  });
  // A revoked session ends on every node at once, not when its access token expires.
  const stopRevocations = await revocations.subscribe((sessionIds) => gateway.endSessions(sessionIds));
  const asyncApi = buildAsyncApi(channels, API_VERSION);
  engine.serveRoutes(routes, {
    services: {
      nodeId: config.nodeId,
      readiness,
      metrics: async () => ({ contentType: registry.contentType, body: await registry.metrics() }),
      asyncApi,
      oauth,
      opsAccess: opsAccess(config.opsToken),
      media: { uploads: mediaParts.uploads, direct: mediaParts.direct, storageWebhookToken: config.media.storageWebhookToken },
      playback: mediaParts.playback,
    },
    authenticate: (token) => tokens.verifyAccessToken(token),
    limiter,
    trustProxyHops: config.trustProxyHops,
    log: log.child({ subsystem: 'http' }),
  });
  const listening = await engine.listen(config.host, config.port);
  readiness.lifecycle = 'ready';
  log.info({ port: listening.port, host: config.host, engine: engine.name }, 'listening');

  let closing: Promise<void> | undefined;
  return {
    port: listening.port,
    readiness,
    io,
    jobs,
    actors,
    gatewayServices,
    close() {
      closing ??= (async () => {
        readiness.lifecycle = 'draining';
        listening.stopAccepting();
        log.info({ sockets: io.engine.clientsCount }, 'draining');
        await closeRealtime(io);
        await gateway.settled();
        gateway.close();
        await stopRevocations();
        await presence.stop();
        await Promise.all(consumers.map((c) => c.stop()));
        await actors.stop();
        await jobs.stop(Math.max(100, config.shutdownTimeoutMs / 2));
        engine.close();
        await Promise.allSettled([redis.quit(), pub.quit(), sub.quit(), revocationsSub.quit()]);
        await disconnectMongo();
        s3.destroy();
        log.info('closed');
      })();
      return closing;
    },
  };
}

function unavailable(what: string): never {
  throw new FlockError('SERVICE_UNAVAILABLE', `the node is still starting (${what})`);
}
