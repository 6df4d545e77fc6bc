// Builds the AsyncAPI 3 document of the socket API from the channel and
// server-event schemas: the same zod schemas the dispatcher validates with.
// `npm run docs:asyncapi` writes it to asyncapi.json; nodes serve it at
// GET /asyncapi.json; a test keeps the file equal to what the code says.
import { z } from 'zod';
import type { ChannelDef } from '../channels/define.ts';
import { DEFAULT_MAX_BYTES } from '../channels/define.ts';
import { serverEvents } from '../channels/server-events.ts';
import { ERROR_CODES } from '../kernel/errors.ts';
import { streamEventSchema } from '../streams/catalogue.ts';

type Json = Record<string, unknown>;

export function buildAsyncApi(channels: readonly ChannelDef[], version: string): Json {
  const docChannels: Json = {};
  const operations: Json = {};
  const messages: Json = {};
  const schemaOf = (schema: z.ZodType, io: 'input' | 'output') => {
    const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { target: 'draft-7', io, unrepresentable: 'any' }) as Json;
    return rest;
  };

  for (const channel of channels) {
    for (const [name, def] of Object.entries(channel.events)) {
      const address = `${channel.name}:${name}`;
      const id = address.replace(/[^A-Za-z0-9]/g, '_');
      messages[`${id}_request`] = {
        name: `${address} request`,
        title: address,
        summary: def.summary,
        contentType: 'application/json',
        payload: schemaOf(def.request, 'input'),
      };
      messages[`${id}_ack`] = {
        name: `${address} ack`,
        title: `${address} ack`,
        contentType: 'application/json',
        payload: {
          oneOf: [
            { type: 'object', required: ['ok', 'data'], properties: { ok: { const: true }, data: schemaOf(def.ack, 'output') } },
            { $ref: '#/components/schemas/ErrorAck' },
          ],
        },
      };
      docChannels[id] = {
        address,
        description: `${channel.description}`,
        messages: {
          request: { $ref: `#/components/messages/${id}_request` },
          ack: { $ref: `#/components/messages/${id}_ack` },
        },
      };
      operations[id] = {
        action: 'receive',
        channel: { $ref: `#/channels/${id}` },
        summary: def.summary,
        description: [
          'public' in def.access ? 'Open to any connected client.' : `Requires a session with one of the roles: ${def.access.roles.join(', ')}.`,
          `Rate limit: bursts of ${def.rateLimit.capacity}, ${def.rateLimit.perSecond}/s sustained, per user (per IP before sign-in).`,
          `Largest request: ${def.maxBytes ?? DEFAULT_MAX_BYTES} bytes of JSON.`,
          'Send with an ack callback; the ack is the reply.',
        ].join(' '),
        messages: [{ $ref: `#/channels/${id}/messages/request` }],
        reply: { channel: { $ref: `#/channels/${id}` }, messages: [{ $ref: `#/channels/${id}/messages/ack` }] },
      };
    }
  }

  for (const [address, def] of Object.entries(serverEvents)) {
    const id = address.replace(/[^A-Za-z0-9]/g, '_');
    const channelMessages: Json = {};
    if (address === 'stream:event') {
      // One message per type of the personal stream, each with its own payload.
      for (const option of streamEventSchema.options) {
        const type = option.shape.type.value;
        const messageId = `${id}__${type.replace(/[^A-Za-z0-9]/g, '_')}`;
        messages[messageId] = {
          name: type,
          title: `stream:event ${type}`,
          summary: option.description ?? type,
          contentType: 'application/json',
          payload: schemaOf(option, 'output'),
        };
        channelMessages[type.replace(/[^A-Za-z0-9]/g, '_')] = { $ref: `#/components/messages/${messageId}` };
      }
    } else {
      messages[id] = { name: address, title: address, summary: def.summary, contentType: 'application/json', payload: schemaOf(def.payload, 'output') };
      channelMessages.event = { $ref: `#/components/messages/${id}` };
    }
    docChannels[id] = { address, description: def.summary, messages: channelMessages };
    operations[`${id}_send`] = {
      action: 'send',
      channel: { $ref: `#/channels/${id}` },
      summary: def.summary,
      messages: Object.keys(channelMessages).map((name) => ({ $ref: `#/channels/${id}/messages/${name}` })),
    };
  }

  return {
    asyncapi: '3.0.0',
    info: {
      title: 'Flock socket API',
      version,
      description:
        'Every request is a Socket.IO event with one JSON payload and an ack callback; the ack is ' +
        '`{ ok: true, data }` or `{ ok: false, error: { code, message, details? } }`. Connect to the node ' +
        'with Socket.IO v4 (websocket transport recommended; long-polling needs sticky sessions) and pass ' +
        'the access token as `auth.token` in the handshake. Error codes are listed in README.',
    },
    defaultContentType: 'application/json',
    servers: {
      local: { host: 'localhost:3000', pathname: '/socket.io/', protocol: 'ws', description: 'A local node (npm start).' },
    },
    channels: docChannels,
    operations,
    components: {
      messages,
      schemas: {
        ErrorAck: {
          type: 'object',
          required: ['ok', 'error'],
          properties: {
            ok: { const: false },
            error: {
              type: 'object',
              required: ['code', 'message'],
              properties: { code: { type: 'string', enum: [...ERROR_CODES] }, message: { type: 'string' }, details: { type: 'object' } },
            },
          },
        },
      },
    },
  };
}
