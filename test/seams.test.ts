// The seams hold: every server-to-client event and every room goes through
// server/delivery.ts, only it appends to personal streams, nothing casts what
// crossed a process boundary, and every catalogue keeps its naming rules.
// (The layer rules themselves are checked by `npm run check:layers`.)
import test from 'ava';
import fs from 'node:fs/promises';
import path from 'node:path';
import { serverEvents } from '../channels/server-events.ts';
import { domainEventSchema } from '../events/domain.ts';
import { ERROR_SUBSYSTEMS, errorCatalogue } from '../kernel/errors.ts';
import { jobSchemas } from '../jobs/schemas.ts';
import { streamEventSchema } from '../streams/catalogue.ts';
import { channels } from '../channels/registry.ts';
import layers from '../scripts/layers.json' with { type: 'json' };

/** The product's folders (scripts/layers.json). */
const PRODUCT = layers.layers.flat();
const root = new URL('..', import.meta.url).pathname;

async function productSources(): Promise<{ file: string; text: string }[]> {
  const out: { file: string; text: string }[] = [];
  for (const dir of PRODUCT) {
    const entries = await fs.readdir(path.join(root, dir), { recursive: true }); // a missing folder fails the test
    for (const entry of entries) {
      if (!entry.endsWith('.ts')) continue;
      const file = path.join(dir, entry);
      out.push({ file, text: await fs.readFile(path.join(root, file), 'utf8') });
    }
  }
  return out;
}

/** Lines of code (comments dropped) matching `pattern`, outside the files allowed to have them. */
async function offenders(pattern: RegExp, allowed: readonly string[]): Promise<string[]> {
  const found: string[] = [];
  for (const { file, text } of await productSources()) {
    if (allowed.includes(file)) continue;
    text.split('\n').forEach((line, i) => {
      const code = line.replace(/(^|\s)\/\/.*$/, '').replace(/^\s*\*.*$/, ''); // a comment, not the // of a URL
      if (pattern.test(code)) found.push(`${file}:${i + 1}: ${line.trim()}`);
    });
  }
  return found;
}

test('the checks below read the whole product', async (t) => {
  const files = (await productSources()).map((s) => s.file);
  t.true(files.length > 100, `${files.length} files`);
  for (const file of ['server/delivery.ts', 'server/gateway.ts', 'actors/runtime.ts', 'kernel/errors.ts']) t.true(files.includes(file), file);
});

test('only the delivery module emits to clients or moves sockets between rooms', async (t) => {
  t.deepEqual(await offenders(/\.emit\(|socketsJoin|socketsLeave|\bio\.(to|in|local)\b|socket\.(join|leave)\(/, ['server/delivery.ts']), []);
});

test('room names are spelled in the delivery module only', async (t) => {
  t.deepEqual(await offenders(/`(user|presence|feed|feedwatch):\$\{/, ['server/delivery.ts']), []);
});

test('only the delivery module appends to personal streams', async (t) => {
  t.deepEqual(await offenders(/streams?\.append\(/, ['server/delivery.ts']), []);
});

test('nothing that crossed a process boundary is cast: no JSON.parse(...) as, no socket.data as', async (t) => {
  t.deepEqual(await offenders(/JSON\.parse\([^)]*\)\s+as\s|socket\.data\s+as\s/, []), []);
});

test('every error code names its subsystem', (t) => {
  for (const code of Object.keys(errorCatalogue)) {
    t.true(
      ERROR_SUBSYSTEMS.some((s) => code.startsWith(`${s}_`)),
      code,
    );
  }
});

const EVENT_NAME = /^[a-z][a-z]*:[a-z][A-Za-z0-9]*$/;

test('every event name is subsystem:camelCase: requests, server events, stream events, domain events', (t) => {
  for (const channel of channels) for (const name of Object.keys(channel.events)) t.regex(`${channel.name}:${name}`, EVENT_NAME);
  for (const name of Object.keys(serverEvents)) t.regex(name, EVENT_NAME);
  for (const option of streamEventSchema.options) t.regex(option.shape.type.value, EVENT_NAME);
  for (const option of domainEventSchema.options) t.regex(option.shape.type.value, EVENT_NAME);
});

test('job names are camelCase', (t) => {
  for (const name of Object.keys(jobSchemas)) t.regex(name, /^[a-z][A-Za-z0-9]*$/);
});
