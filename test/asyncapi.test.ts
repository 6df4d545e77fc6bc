// The AsyncAPI document: valid AsyncAPI 3, generated from the code, and the
// committed asyncapi.json says what the code says.
import test from 'ava';
import fs from 'node:fs/promises';
import { Parser } from '@asyncapi/parser';
import { channels } from '../channels/registry.ts';
import { serverEvents } from '../channels/server-events.ts';
import { streamEventSchema } from '../streams/catalogue.ts';
import { buildAsyncApi } from '../server/asyncapi.ts';
import { API_VERSION } from '../server/node.ts';

const generated = buildAsyncApi(channels, API_VERSION);

test('the generated document is valid AsyncAPI 3 with no errors', async (t) => {
  const { document, diagnostics } = await new Parser().parse(JSON.stringify(generated));
  const errors = diagnostics.filter((d) => Number(d.severity) === 0);
  t.deepEqual(
    errors.map((e) => `${e.path.join('.')}: ${e.message}`),
    [],
  );
  t.truthy(document);
  t.is(document!.version(), '3.0.0');
});

test('every socket event and server event is in the document', (t) => {
  const addresses = new Set(Object.values(generated.channels as Record<string, { address: string }>).map((c) => c.address));
  for (const channel of channels) for (const event of Object.keys(channel.events)) t.true(addresses.has(`${channel.name}:${event}`));
  t.true(addresses.has('flock:error'));
});

test('asyncapi.json in the repository is up to date (run npm run docs:asyncapi)', async (t) => {
  const committed = JSON.parse(await fs.readFile(new URL('../asyncapi.json', import.meta.url), 'utf8')) as unknown;
  t.deepEqual(committed, JSON.parse(JSON.stringify(generated)));
});

test('every event of the personal stream has a message of its own whose payload describes its data', (t) => {
  const messages = (
    generated.components as {
      messages: Record<string, { name: string; payload: { properties?: { type?: { const?: string }; data?: Record<string, unknown> } } }>;
    }
  ).messages;
  for (const option of streamEventSchema.options) {
    const type = option.shape.type.value;
    const message = Object.values(messages).find((m) => m.name === type);
    t.truthy(message, type);
    t.is(message?.payload.properties?.type?.const, type);
    t.true(Object.keys(message?.payload.properties?.data ?? {}).length > 0, `${type} has a data schema`);
  }
});

test('every server event of the catalogue is in the document', (t) => {
  const addresses = new Set(Object.values(generated.channels as Record<string, { address: string }>).map((c) => c.address));
  for (const name of Object.keys(serverEvents)) t.true(addresses.has(name), name);
});
