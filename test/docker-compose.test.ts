// Specification of the Docker deployment (docker-compose.yml, deploy/nginx.conf,
// Dockerfile), checked by reading the files: Docker is not needed to run it.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { parse } from 'yaml';
import { configVariables } from '../server/config.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const composePath = path.join(root, 'docker-compose.yml');
const dockerfilePath = path.join(root, 'Dockerfile');

/** Variables the compose file may set for features not yet in config.ts. */
const NOT_YET_IN_CONFIG = new Set(['ELASTICSEARCH_URL']);

const REQUIRED_SERVICES = ['mongo', 'redis', 'elasticsearch', 'minio', 'stripe-mock', 'flock-1', 'flock-2', 'lb'];
const FLOCK_NODES = ['flock-1', 'flock-2'];

interface Service {
  image?: string;
  build?: unknown;
  environment?: Record<string, string | number | boolean | null> | string[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  volumes?: (string | { type?: string; source?: string; target?: string })[];
  [key: string]: unknown;
}
interface Compose {
  services: Record<string, Service>;
  [key: string]: unknown;
}

// Merge keys (`<<: *flock`) are YAML 1.1; docker compose honours them.
function loadCompose(): Compose {
  return parse(readFileSync(composePath, 'utf8'), { merge: true }) as Compose;
}

function environmentOf(service: Service): Map<string, string> {
  const env = new Map<string, string>();
  const raw = service.environment;
  if (Array.isArray(raw)) {
    for (const entry of raw) {
      const eq = entry.indexOf('=');
      env.set(eq === -1 ? entry : entry.slice(0, eq), eq === -1 ? '' : entry.slice(eq + 1));
    }
  } else if (raw) {
    for (const [name, value] of Object.entries(raw)) env.set(name, value === null ? '' : String(value));
  }
  return env;
}

function dependenciesOf(service: Service): string[] {
  const deps = service.depends_on;
  if (!deps) return [];
  return Array.isArray(deps) ? deps : Object.keys(deps);
}

function service(compose: Compose, name: string): Service {
  const s = compose.services[name];
  if (!s) throw new Error(`docker-compose.yml has no service ${name}`);
  return s;
}

/** Dockerfile instructions (continuation lines joined, comments dropped) of the last stage. */
function runtimeStage(dockerfile: string): string[] {
  const instructions = dockerfile
    .replace(/\\\r?\n/g, ' ')
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  const lastFrom = instructions.findLastIndex((line) => /^FROM\s/i.test(line));
  return instructions.slice(lastFrom);
}

/** Arguments of the last `NAME ...` instruction (the one Docker uses), if any. */
function lastInstruction(stage: string[], name: string): string | undefined {
  const pattern = new RegExp(`^${name}\\s+(.*)$`, 'i');
  return stage
    .map((line) => pattern.exec(line)?.[1])
    .filter((args) => args !== undefined)
    .at(-1);
}

test('docker-compose.yml parses as YAML with a services map', (t) => {
  const compose = loadCompose();
  t.is(typeof compose, 'object');
  t.is(typeof compose.services, 'object');
});

test('docker-compose.yml defines mongo, redis, elasticsearch, minio, stripe-mock, flock-1, flock-2 and lb', (t) => {
  const names = Object.keys(loadCompose().services);
  for (const name of REQUIRED_SERVICES) t.true(names.includes(name), `missing service ${name}`);
});

test('every depends_on target is a service of the compose file', (t) => {
  const compose = loadCompose();
  const names = new Set(Object.keys(compose.services));
  for (const [name, s] of Object.entries(compose.services)) {
    for (const dep of dependenciesOf(s)) t.true(names.has(dep), `${name} depends on unknown service ${dep}`);
  }
});

test('both flock nodes point at the compose services with dev services off', (t) => {
  const compose = loadCompose();
  for (const name of FLOCK_NODES) {
    const env = environmentOf(service(compose, name));
    for (const variable of ['MONGO_URL', 'REDIS_URL', 'S3_ENDPOINT', 'STRIPE_API_BASE']) {
      t.truthy(env.get(variable), `${name} does not set ${variable}`);
    }
    t.is(env.get('FLOCK_DEV_SERVICES'), 'off', `${name} must set FLOCK_DEV_SERVICES=off`);
  }
});

test('both flock nodes have distinct NODE_IDs', (t) => {
  const compose = loadCompose();
  const ids = FLOCK_NODES.map((name) => environmentOf(service(compose, name)).get('NODE_ID'));
  for (const id of ids) t.truthy(id);
  t.is(new Set(ids).size, ids.length);
});

test('every variable the flock nodes set is read by server/config.ts or allow-listed as not yet built', (t) => {
  const compose = loadCompose();
  const known = new Set<string>(Object.keys(configVariables));
  for (const name of FLOCK_NODES) {
    for (const variable of environmentOf(service(compose, name)).keys()) {
      t.true(known.has(variable) || NOT_YET_IN_CONFIG.has(variable), `${name} sets ${variable}, which configVariables in server/config.ts does not declare`);
    }
  }
});

test("every value the flock nodes set for a config.ts variable passes that variable's schema", (t) => {
  const compose = loadCompose();
  for (const name of FLOCK_NODES) {
    for (const [variable, value] of environmentOf(service(compose, name))) {
      if (!(variable in configVariables)) continue;
      const spec = configVariables[variable as keyof typeof configVariables];
      // ${VAR:?message} must be supplied by whoever runs compose: nothing to check here.
      if (/^\$\{[A-Z0-9_]+:\?/.test(value)) continue;
      // ${VAR:-default}: compose uses the default when VAR is unset.
      const resolved = value.replace(/\$\{[A-Z0-9_]+:-([^}]*)\}/g, '$1');
      t.true(spec.schema.safeParse(resolved).success, `${name}: ${variable}=${value} is not ${spec.expects}`);
    }
  }
});

test('the allow-list of not-yet-built variables holds only variables config.ts does not declare yet', (t) => {
  // Once config.ts declares one, it must leave the allow-list.
  for (const variable of NOT_YET_IN_CONFIG) t.false(variable in configVariables, `${variable} is now in config.ts`);
});

test('the lb service mounts an nginx config that exists, balances with ip_hash and forwards the Upgrade header', (t) => {
  const lb = service(loadCompose(), 'lb');
  const nginxMount = (lb.volumes ?? [])
    .map((v) => (typeof v === 'string' ? v.split(':')[0] : v.source))
    .find((source) => source !== undefined && source.endsWith('.conf'));
  t.truthy(nginxMount, 'lb mounts no .conf file');
  const hostPath = path.resolve(root, nginxMount!);
  t.true(existsSync(hostPath), `${hostPath} does not exist`);
  const conf = readFileSync(hostPath, 'utf8');
  t.regex(conf, /^\s*ip_hash\s*;/m);
  t.regex(conf, /proxy_set_header\s+Upgrade\s+\$http_upgrade\s*;/);
  t.regex(conf, /proxy_set_header\s+Connection\s+"upgrade"\s*;/);
  t.regex(conf, /proxy_http_version\s+1\.1\s*;/);
});

test('the shipped proxy keeps operator data inside and overwrites X-Forwarded-For; no service publishes a console or a default password', (t) => {
  const conf = readFileSync(path.join(root, 'deploy/nginx.conf'), 'utf8');
  t.regex(conf, /location = \/metrics \{\s*return 404;/);
  t.regex(conf, /location = \/readyz \{[^}]*deny all;/);
  t.notRegex(conf, /\$proxy_add_x_forwarded_for/, 'appending lets a client choose its address');
  const raw = readFileSync(composePath, 'utf8');
  t.notRegex(raw, /MINIO_ROOT_PASSWORD:-/, 'no default MinIO password');
  const published = Object.entries(loadCompose().services).flatMap(([name, s]) =>
    ((s.ports as string[] | undefined) ?? []).map((p) => ({ name, port: String(p) })),
  );
  for (const { name, port } of published.filter((p) => p.name !== 'lb')) t.regex(port, /^127\.0\.0\.1:/, `${name} publishes ${port} beyond this machine`);
});

test('the Dockerfile exists and its runtime stage runs server/main.ts with tsx', (t) => {
  t.true(existsSync(dockerfilePath), 'Dockerfile missing');
  const cmd = lastInstruction(runtimeStage(readFileSync(dockerfilePath, 'utf8')), 'CMD');
  t.truthy(cmd, 'runtime stage has no CMD');
  t.true(cmd!.includes('server/main.ts'), `CMD ${cmd} does not run server/main.ts`);
  t.true(cmd!.includes('tsx'), `CMD ${cmd} does not load tsx`);
});

test('the Dockerfile runtime stage runs as a non-root user and health-checks /healthz', (t) => {
  const runtime = runtimeStage(readFileSync(dockerfilePath, 'utf8'));
  const user = lastInstruction(runtime, 'USER');
  t.truthy(user, 'runtime stage sets no USER');
  t.false(/^(root|0)(:|$)/.test(user!), 'runtime stage runs as root');
  t.true(lastInstruction(runtime, 'HEALTHCHECK')?.includes('/healthz'), 'runtime HEALTHCHECK does not probe /healthz');
});
