// Configuration: bad variables stop start-up with a message naming each one
// and what it expects; defaults fill the rest.
import test from 'ava';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { configVariables, loadConfig } from '../server/config.ts';
import { FlockError } from '../kernel/errors.ts';

const rejects: [string, Record<string, string>, RegExp][] = [
  ['a non-numeric port', { PORT: 'abc' }, /PORT: expected an integer from 0 to 65535.*"abc"/],
  ['a port out of range', { PORT: '70000' }, /PORT: expected an integer/],
  ['a MONGO_URL that is not mongodb://', { MONGO_URL: 'http://db:27017' }, /MONGO_URL: expected a mongodb:\/\/ or mongodb\+srv:\/\/ URL/],
  ['a REDIS_URL that is not a URL', { REDIS_URL: 'localhost' }, /REDIS_URL: expected a redis:\/\/ or rediss:\/\/ URL/],
  ['an unknown log level', { LOG_LEVEL: 'loud' }, /LOG_LEVEL: expected one of fatal, error/],
  ['a bad bucket name', { S3_BUCKET: 'Bad_Bucket' }, /S3_BUCKET: expected an S3 bucket name/],
  ['a boolean that is not one', { S3_FORCE_PATH_STYLE: 'yes' }, /S3_FORCE_PATH_STYLE: expected true or false/],
  ['a malformed Stripe key', { STRIPE_SECRET_KEY: 'pk_test_abc' }, /STRIPE_SECRET_KEY: expected a Stripe secret key/],
  ['a bad duration', { JOBS_PROCESS_EVERY: 'soon' }, /JOBS_PROCESS_EVERY: expected a duration/],
  ['dev services off without MONGO_URL', { FLOCK_DEV_SERVICES: 'off' }, /MONGO_URL: expected .* when FLOCK_DEV_SERVICES=off/],
  ['production without MONGO_URL', { NODE_ENV: 'production', STRIPE_SECRET_KEY: 'sk_live_abc' }, /MONGO_URL/],
  [
    'production without JWT_SECRET',
    { NODE_ENV: 'production', MONGO_URL: 'mongodb://db:27017', STRIPE_SECRET_KEY: 'sk_live_abc' },
    /JWT_SECRET: expected at least 32 random bytes/,
  ],
  ['a JWT_SECRET shorter than 32 bytes', { JWT_SECRET: Buffer.alloc(16, 1).toString('base64') }, /JWT_SECRET: expected at least 32 random bytes/],
  [
    'an S3 key id without its secret',
    { S3_ACCESS_KEY_ID: 'AKIA' },
    /S3_SECRET_ACCESS_KEY: expected S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY to be set together/,
  ],
];

for (const [what, env, message] of rejects) {
  test(`config rejects ${what}, naming the variable`, (t) => {
    const err = t.throws(() => loadConfig(env), { instanceOf: FlockError });
    t.is(err?.code, 'CONFIG_INVALID');
    t.regex(err?.message ?? '', message);
  });
}

test('production requires JWT_SECRET even with dev services on', (t) => {
  const err = t.throws(() => loadConfig({ NODE_ENV: 'production', FLOCK_DEV_SERVICES: 'auto' }), { instanceOf: FlockError });
  t.regex(err?.message ?? '', /JWT_SECRET: expected at least 32 random bytes, base64 encoded, in production/);
});

test('errors name a bad secret but never show its value', (t) => {
  const secrets = {
    JWT_SECRET: 'c2hvcnQtc2VjcmV0LXZhbHVl', // base64, too short
    STRIPE_SECRET_KEY: 'pk_live_TOPSECRETstripe',
    STRIPE_WEBHOOK_SECRET: 'whsec_not-valid-TOPSECRET',
    OAUTH_CONFIG: JSON.stringify({ providers: { google: { clientId: 'id', clientSecret: 'TOPSECRET-oauth', callbackUrl: 'not a url' } } }),
    MONGO_URL: 'http://admin:TOPSECRET-db@db.internal:27017/flock',
    REDIS_URL: 'redis//default:TOPSECRET-redis@cache:6379',
  };
  const err = t.throws(() => loadConfig(secrets), { instanceOf: FlockError });
  const message = err?.message ?? '';
  for (const name of ['JWT_SECRET', 'STRIPE_SECRET_KEY', 'STRIPE_WEBHOOK_SECRET', 'OAUTH_CONFIG', 'MONGO_URL', 'REDIS_URL'])
    t.regex(message, new RegExp(`${name}: expected`));
  t.notRegex(message, /TOPSECRET|c2hvcnQtc2VjcmV0LXZhbHVl/, message);
  t.notRegex(JSON.stringify(err?.details), /TOPSECRET|c2hvcnQtc2VjcmV0LXZhbHVl/);
  t.regex(message, /OAUTH_CONFIG: .*not shown: secret\); check providers\.google\.callbackUrl/, 'the offending field, not its value');
  t.regex(message, /MONGO_URL: .*got "http:\/\/\*\*\*@db\.internal:27017\/flock"/, 'a URL keeps all but its credentials');
  t.regex(message, /REDIS_URL: .*got "\*\*\*@cache:6379"/, 'even when it does not parse');
});

test('config reports every bad variable at once', (t) => {
  const err = t.throws(() => loadConfig({ PORT: 'x', LOG_LEVEL: 'y', MONGO_URL: 'z' }));
  for (const name of ['PORT', 'LOG_LEVEL', 'MONGO_URL']) t.regex(err?.message ?? '', new RegExp(`${name}: expected`));
});

test('config applies documented defaults', (t) => {
  const config = loadConfig({});
  t.is(config.port, 3000);
  t.is(config.redis.url, 'redis://127.0.0.1:6379');
  t.is(config.devServices, 'auto');
  t.is(config.mongo.dbName, 'flock');
  t.is(config.s3.bucket, 'flock-media');
  t.is(config.mongo.url, undefined);
});

test('production defaults to no embedded services', (t) => {
  const config = loadConfig({
    NODE_ENV: 'production',
    MONGO_URL: 'mongodb://db:27017',
    STRIPE_SECRET_KEY: 'sk_live_abc',
    JWT_SECRET: Buffer.alloc(32, 7).toString('base64'),
  });
  t.is(config.devServices, 'off');
});

test('every variable documents what it expects', (t) => {
  for (const [name, spec] of Object.entries(configVariables)) {
    t.true(spec.expects.length > 0 && spec.doc.length > 0, name);
  }
});

test('a node started with a bad variable exits with code 78 and names it', async (t) => {
  const main = fileURLToPath(new URL('../server/main.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), main], {
    env: { ...process.env, PORT: 'eighty', SHUTDOWN_TIMEOUT_MS: '5' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  t.is(code, 78);
  t.regex(stderr, /PORT: expected an integer from 0 to 65535 .*got "eighty"/);
  t.regex(stderr, /SHUTDOWN_TIMEOUT_MS: expected an integer number of milliseconds/);
});
