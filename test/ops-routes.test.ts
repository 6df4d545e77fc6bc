// Operator data over HTTP: with OPS_TOKEN set, /metrics answers only the
// bearer of the token, and /readyz tells others whether each service answers
// but not what it is or how it failed.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { startNodeProcess, type NodeProcess } from './helpers/node-process.ts';

const token = randomBytes(32).toString('base64url');
let node: NodeProcess;

test.before(async () => {
  node = await startNodeProcess({ env: { OPS_TOKEN: token } });
});
test.after.always(() => node?.stop());

const bearer = (value: string) => ({ headers: { authorization: `Bearer ${value}` } });

test('/metrics needs the ops token: AUTH_REQUIRED without it or with a wrong one', async (t) => {
  for (const init of [{}, bearer('wrong'), bearer(`${token}x`)]) {
    const res = await fetch(`${node.url}/metrics`, init);
    t.is(res.status, 401);
    t.is(((await res.json()) as { error: { code: string } }).error.code, 'AUTH_REQUIRED');
  }
  const ok = await fetch(`${node.url}/metrics`, bearer(token));
  t.is(ok.status, 200);
  t.regex(await ok.text(), /flock_actor_active/);
});

test('/readyz says which services answer to anyone, and what they are only to the ops token', async (t) => {
  const open = await fetch(`${node.url}/readyz`);
  t.is(open.status, 200);
  const summary = (await open.json()) as { ready: boolean; services: Record<string, Record<string, unknown>> };
  t.true(summary.ready);
  for (const [name, s] of Object.entries(summary.services)) t.deepEqual(s, { ok: true }, name);
  const detailed = (await (await fetch(`${node.url}/readyz`, bearer(token))).json()) as { services: Record<string, { using: string }> };
  t.true(Object.values(detailed.services).every((s) => s.using.length > 0));
});
