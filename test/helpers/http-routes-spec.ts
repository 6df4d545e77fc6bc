// The declared HTTP routes on one engine (uWebSockets.js or node:http),
// driven by real HTTP requests: body limits (declared and streamed), JSON and
// schema errors, access tokens and roles, signatures over the raw body, per-IP
// rate limits, typed errors, a streamed body read with backpressure, and bodies
// a route refuses or stops reading (no unhandled rejection, no socket left
// paused). test/http-routes.test.ts runs it on uWS, http-routes-ws.test.ts on
// node:http, so one route declaration is held to one behaviour on both.
import test from 'ava';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import net from 'node:net';
import { pino } from 'pino';
import { z } from 'zod';
import type { Session } from '../../auth/session.ts';
import { FlockError } from '../../kernel/errors.ts';
import { defineRoute, type RouteDef } from '../../routes/define.ts';
import { RateLimiter } from '../../server/rate-limit.ts';
import type { EngineName, HttpEngine, Listening } from '../../server/http-engine.ts';
import { openTestEngine, uwsUnavailable } from './engines.ts';
import { redisKeySpace } from './redis.ts';

/** Registers the route tests against `engineName`; where that engine cannot run (uWS on Node 24), one skipped test says why. */
export function httpRoutesSpec(engineName: EngineName): void {
  const unavailable = engineName === 'uws' ? uwsUnavailable() : undefined;
  if (unavailable !== undefined) {
    test.skip(`the uws engine cannot run here: ${unavailable}`, () => {});
    return;
  }
  const { prefix, connect, cleanup } = redisKeySpace();
  const SECRET = randomBytes(16);
  const sign = (body: Buffer | string) => createHmac('sha256', SECRET).update(body).digest('hex');
  /** Bytes queued for the slow upload handler at the worst moment. */
  let mostBuffered = 0;

  const routes: RouteDef[] = [
    defineRoute({
      method: 'POST',
      path: '/echo',
      summary: 'Echoes a small JSON body.',
      auth: { kind: 'none' },
      body: { kind: 'json', schema: z.object({ name: z.string().max(20) }).strict(), maxBytes: 256 },
      handler: async (req) => ({ status: 200, json: { hello: req.body.name } }),
    }),
    defineRoute({
      method: 'GET',
      path: '/things/:id',
      summary: 'Reads a path parameter and the query.',
      auth: { kind: 'none' },
      body: { kind: 'none' },
      handler: async (req) => ({ status: 200, json: { id: req.params.id, q: req.query.get('q') } }),
    }),
    defineRoute({
      method: 'HEAD',
      path: '/things/:id',
      summary: 'A HEAD route with a header on every answer, errors included; refuses "missing".',
      auth: { kind: 'none' },
      body: { kind: 'none' },
      headers: [['x-protocol', '1']],
      handler: async (req) => {
        if (req.params.id === 'missing') throw new FlockError('HTTP_NOT_FOUND');
        return { status: 200, empty: true, headers: [['x-size', '5']] };
      },
    }),
    defineRoute({
      method: 'GET',
      path: '/protocol',
      summary: 'A header on every answer, the token refusal included.',
      auth: { kind: 'accessToken', roles: ['admin'] },
      body: { kind: 'none' },
      headers: [['x-protocol', '1']],
      handler: async () => ({ status: 200, json: { ok: true }, headers: [['x-protocol', '2']] }),
    }),
    defineRoute({
      method: 'GET',
      path: '/admin',
      summary: 'Admins only.',
      auth: { kind: 'accessToken', roles: ['admin'] },
      body: { kind: 'none' },
      handler: async (req) => ({ status: 200, json: { userId: req.session?.userId } }),
    }),
    defineRoute({
      method: 'POST',
      path: '/signed',
      summary: 'A webhook: an HMAC of the raw body in x-signature.',
      auth: {
        kind: 'signature',
        verify: async ({ body, header }) => {
          const given = Buffer.from(header('x-signature'), 'hex');
          const wanted = Buffer.from(sign(body), 'hex');
          if (given.length !== wanted.length || !timingSafeEqual(given, wanted)) throw new FlockError('AUTH_FORBIDDEN', 'bad signature');
        },
      },
      body: { kind: 'raw', maxBytes: 1024 },
      handler: async (req) => ({ status: 200, json: { bytes: req.body.length } }),
    }),
    defineRoute({
      method: 'PUT',
      path: '/upload',
      summary: 'Takes a large body slowly.',
      auth: { kind: 'none' },
      body: { kind: 'stream', maxBytes: 64 * 1024 * 1024 },
      handler: async (req) => {
        const hash = createHmac('sha256', SECRET);
        let bytes = 0;
        for await (const chunk of req.body) {
          mostBuffered = Math.max(mostBuffered, req.body.buffered);
          hash.update(chunk);
          bytes += chunk.length;
          // A handler slower than the network: what it has not taken must stay bounded.
          await new Promise((resolve) => setTimeout(resolve, 2));
        }
        return { status: 200, json: { bytes, hmac: hash.digest('hex') } };
      },
    }),
    defineRoute({
      method: 'PUT',
      path: '/picky-upload',
      summary: 'Refuses a large body after its first chunk (the rest is never read).',
      auth: { kind: 'none' },
      body: { kind: 'stream', maxBytes: 64 * 1024 * 1024 },
      handler: async (req) => {
        for await (const chunk of req.body) {
          // Wait until the socket is paused behind what this handler did not take, then give up.
          while (req.body.buffered < 256 * 1024) await new Promise((resolve) => setTimeout(resolve, 5));
          throw new FlockError('REQUEST_INVALID', `not a video: ${chunk.length} bytes seen`);
        }
        return { status: 200, json: {} };
      },
    }),
    defineRoute({
      method: 'POST',
      path: '/private-echo',
      summary: 'A JSON body behind an access token and a rate limit.',
      auth: { kind: 'accessToken', roles: ['admin'] },
      body: { kind: 'json', schema: z.object({ name: z.string().max(20) }).strict(), maxBytes: 256 },
      rateLimit: { capacity: 1_000, perSecond: 1_000 },
      handler: async (req) => ({ status: 200, json: { hello: req.body.name } }),
    }),
    defineRoute({
      method: 'GET',
      path: '/limited',
      summary: 'Two requests per IP, then a long wait.',
      auth: { kind: 'none' },
      body: { kind: 'none' },
      rateLimit: { capacity: 2, perSecond: 0.001 },
      handler: async () => ({ status: 204, empty: true }),
    }),
    defineRoute({
      method: 'GET',
      path: '/broken',
      summary: 'A handler with a bug.',
      auth: { kind: 'none' },
      body: { kind: 'none' },
      handler: async () => {
        throw new Error('a bug');
      },
    }),
  ];

  let engine: HttpEngine | undefined;
  let listening: Listening;
  let base: string;

  test.before(async () => {
    engine = await openTestEngine(engineName);
    engine.serveRoutes(routes, {
      services: {
        nodeId: 'routes-test',
        readiness: { report: async () => ({ ready: true, lifecycle: 'ready', services: {} }) },
        metrics: async () => ({ contentType: 'text/plain', body: '' }),
        asyncApi: {},
        oauth: undefined,
      },
      authenticate: async (token): Promise<Session> => {
        if (token === 'admin-token') return { userId: 'u_admin', sessionId: 's1', roles: ['admin'], expiresAt: Date.now() + 60_000 };
        if (token === 'user-token') return { userId: 'u_user', sessionId: 's2', roles: ['user'], expiresAt: Date.now() + 60_000 };
        throw new FlockError('AUTH_TOKEN_INVALID');
      },
      limiter: new RateLimiter(connect(), prefix),
      trustProxyHops: 1,
      log: pino({ level: 'silent' }),
    });
    listening = await engine.listen('127.0.0.1', 0);
    base = `http://127.0.0.1:${listening.port}`;
  });

  test.after.always(async () => {
    listening?.stopAccepting();
    engine?.close();
    await cleanup();
  });

  const errorCode = async (res: Response) => z.object({ error: z.object({ code: z.string() }) }).parse(await res.json()).error.code;
  const post = (path: string, body: string | Buffer, headers: Record<string, string> = {}) =>
    fetch(`${base}${path}`, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });

  test('a JSON body is parsed with its schema; malformed JSON and schema failures are REQUEST_INVALID', async (t) => {
    const ok = await post('/echo', JSON.stringify({ name: 'ana' }));
    t.is(ok.status, 200);
    t.deepEqual(await ok.json(), { hello: 'ana' });
    const notJson = await post('/echo', '{nope');
    t.is(notJson.status, 400);
    t.is(await errorCode(notJson), 'REQUEST_INVALID');
    const wrong = await post('/echo', JSON.stringify({ name: 'x', extra: 1 }));
    t.is(wrong.status, 400);
    t.is(await errorCode(wrong), 'REQUEST_INVALID');
  });

  test('a body over the limit is REQUEST_TOO_LARGE (413), whether its length is declared or it is streamed', async (t) => {
    const declared = await post('/echo', JSON.stringify({ name: 'x'.repeat(300) }));
    t.is(declared.status, 413);
    t.is(await errorCode(declared), 'REQUEST_TOO_LARGE');
    const chunks = [Buffer.from('{"name":"'), Buffer.alloc(400, 'y'), Buffer.from('"}')];
    const streamed = await fetch(`${base}/echo`, {
      method: 'POST',
      body: new ReadableStream({
        pull(controller) {
          const next = chunks.shift();
          if (next) controller.enqueue(next);
          else controller.close();
        },
      }),
      duplex: 'half',
    });
    t.is(streamed.status, 413);
  });

  test('path parameters and the query reach the handler', async (t) => {
    const res = await fetch(`${base}/things/a%20b?q=1`);
    t.deepEqual(await res.json(), { id: 'a b', q: '1' });
  });

  test("a route's own headers go with every answer, errors included; the handler's of the same name win", async (t) => {
    const refused = await fetch(`${base}/protocol`);
    t.is(refused.status, 401);
    t.is(refused.headers.get('x-protocol'), '1');
    const ok = await fetch(`${base}/protocol`, { headers: { authorization: 'Bearer admin-token' } });
    t.is(ok.headers.get('x-protocol'), '2');
  });

  test('HEAD answers have no body, errors included, so the next response on the connection reads right', async (t) => {
    const socket = net.connect(listening.port, '127.0.0.1');
    let answer = '';
    socket.on('data', (d: Buffer) => (answer += d.toString()));
    socket.on('error', () => {});
    socket.write(
      'HEAD /things/missing HTTP/1.1\r\nHost: test\r\n\r\nHEAD /things/here HTTP/1.1\r\nHost: test\r\n\r\nGET /things/x HTTP/1.1\r\nHost: test\r\n\r\n',
    );
    const deadline = Date.now() + 10_000;
    while (!answer.includes('"id":"x"') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    socket.destroy();
    const responses = answer.split(/(?=HTTP\/1\.1 )/);
    t.is(responses.length, 3, answer);
    t.regex(responses[0] ?? '', /^HTTP\/1\.1 404 [^]*\r\nx-protocol: 1\r\n[^]*\r\n\r\n$/i, 'the 404 of a HEAD has its headers and no body');
    t.regex(responses[1] ?? '', /^HTTP\/1\.1 200 [^]*\r\nx-size: 5\r\n[^]*\r\n\r\n$/i);
    t.regex(responses[2] ?? '', /^HTTP\/1\.1 200 [^]*\{"id":"x","q":null\}/);
  });

  test('access-token routes: no token is AUTH_REQUIRED, a bad one AUTH_TOKEN_INVALID, a missing role AUTH_FORBIDDEN', async (t) => {
    const none = await fetch(`${base}/admin`);
    t.is(none.status, 401);
    t.is(await errorCode(none), 'AUTH_REQUIRED');
    const bad = await fetch(`${base}/admin`, { headers: { authorization: 'Bearer nope' } });
    t.is(await errorCode(bad), 'AUTH_TOKEN_INVALID');
    const user = await fetch(`${base}/admin`, { headers: { authorization: 'Bearer user-token' } });
    t.is(user.status, 403);
    t.is(await errorCode(user), 'AUTH_FORBIDDEN');
    const admin = await fetch(`${base}/admin`, { headers: { authorization: 'Bearer admin-token' } });
    t.deepEqual(await admin.json(), { userId: 'u_admin' });
  });

  test('a signature is checked over the raw body before the handler runs', async (t) => {
    const body = Buffer.from(JSON.stringify({ id: 'evt_1', amount: 42 }));
    const ok = await post('/signed', body, { 'x-signature': sign(body) });
    t.deepEqual(await ok.json(), { bytes: body.length });
    const forged = await post('/signed', body, { 'x-signature': sign('something else') });
    t.is(forged.status, 403);
    t.is(await errorCode(forged), 'AUTH_FORBIDDEN');
  });

  test('a per-IP rate limit answers REQUEST_RATE_LIMITED (429) past its burst, for that IP only', async (t) => {
    const ip = `10.9.${randomBytes(1)[0]}.${randomBytes(1)[0]}`;
    const from = (address: string) => fetch(`${base}/limited`, { headers: { 'x-forwarded-for': address } });
    t.is((await from(ip)).status, 204);
    t.is((await from(ip)).status, 204);
    const limited = await from(ip);
    t.is(limited.status, 429);
    t.is(await errorCode(limited), 'REQUEST_RATE_LIMITED');
    t.is((await from(`${ip}1`)).status, 204, 'another IP has its own bucket');
  });

  test('a client cannot choose its IP: entries it prepends to X-Forwarded-For are ignored, the proxy-appended one counts', async (t) => {
    const ip = `10.8.${randomBytes(1)[0]}.${randomBytes(1)[0]}`;
    // As the proxy would forward it: whatever the client sent, then the address the proxy saw.
    const spoofing = (n: number) => fetch(`${base}/limited`, { headers: { 'x-forwarded-for': `203.0.113.${n}, ${ip}` } });
    t.is((await spoofing(1)).status, 204);
    t.is((await spoofing(2)).status, 204);
    const limited = await spoofing(3);
    t.is(limited.status, 429, 'a new made-up first entry is not a new bucket');
    t.is(await errorCode(limited), 'REQUEST_RATE_LIMITED');
  });

  test('unknown paths are HTTP_NOT_FOUND and handler bugs SERVER_INTERNAL, both typed', async (t) => {
    const missing = await fetch(`${base}/nowhere`);
    t.is(missing.status, 404);
    t.is(await errorCode(missing), 'HTTP_NOT_FOUND');
    const broken = await fetch(`${base}/broken`);
    t.is(broken.status, 500);
    t.is(await errorCode(broken), 'SERVER_INTERNAL');
  });

  test('a streamed body reaches a slow handler whole, and what waits for it stays bounded (the socket pauses)', async (t) => {
    const size = 24 * 1024 * 1024;
    const piece = randomBytes(64 * 1024);
    let sent = 0;
    const expected = createHmac('sha256', SECRET);
    const res = await fetch(`${base}/upload`, {
      method: 'PUT',
      body: new ReadableStream({
        pull(controller) {
          if (sent >= size) {
            controller.close();
            return;
          }
          expected.update(piece);
          controller.enqueue(piece);
          sent += piece.length;
        },
      }),
      duplex: 'half',
    });
    t.is(res.status, 200);
    t.deepEqual(await res.json(), { bytes: size, hmac: expected.digest('hex') });
    // The high-water mark is 256 KiB; the engine hands over at most one receive buffer past it before the pause lands.
    t.true(mostBuffered < 2 * 1024 * 1024, `at most ${mostBuffered} bytes waited for the handler, of ${size}`);
  });

  test('a body that fails while the token is checked, or that a refused request never reads, is answered and harms nothing', async (t) => {
    const tooLarge = JSON.stringify({ name: 'x'.repeat(400) });
    // Declared too large (the body fails at once) while the rate limit and the token are checked: refused for the token.
    const noToken = await post('/private-echo', tooLarge);
    t.is(noToken.status, 401);
    t.is(await errorCode(noToken), 'AUTH_REQUIRED');
    const badToken = await post('/private-echo', tooLarge, { authorization: 'Bearer nope' });
    t.is(await errorCode(badToken), 'AUTH_TOKEN_INVALID');
    const large = await post('/private-echo', tooLarge, { authorization: 'Bearer admin-token' });
    t.is(large.status, 413);
    const ok = await post('/private-echo', JSON.stringify({ name: 'ana' }), { authorization: 'Bearer admin-token' });
    t.deepEqual(await ok.json(), { hello: 'ana' }, 'the server carries on (an unhandled rejection would have failed this file)');
  });

  test('a streamed body the route stops reading is drained: the client gets the answer, then the paused socket takes the rest', async (t) => {
    // A raw socket: fetch stops sending once it has the answer, which would hide a socket left paused.
    const size = 32 * 1024 * 1024;
    const socket = net.connect(listening.port, '127.0.0.1');
    let written = 0;
    let answer = '';
    socket.on('data', (d: Buffer) => (answer += d.toString()));
    socket.on('error', () => {});
    socket.write(`PUT /picky-upload HTTP/1.1\r\nHost: test\r\nContent-Length: ${size}\r\n\r\n`);
    const piece = Buffer.alloc(64 * 1024, 7);
    const allWritten = new Promise<void>((resolve) => {
      const pump = () => {
        while (written < size) {
          written += piece.length;
          if (!socket.write(piece)) {
            socket.once('drain', pump);
            return;
          }
        }
        resolve();
      };
      pump();
    });
    const deadline = Date.now() + 30_000;
    while (!answer.includes('REQUEST_INVALID') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    t.true(answer.startsWith('HTTP/1.1 400'), answer.slice(0, 40));
    t.true(answer.includes('REQUEST_INVALID'));
    const drained = await Promise.race([allWritten.then(() => true), new Promise<false>((resolve) => setTimeout(() => resolve(false), 30_000))]);
    t.true(drained, `the server took the whole body after answering (${written} of ${size} bytes written)`);
    socket.destroy();
    const after = await fetch(`${base}/things/x`);
    t.deepEqual(await after.json(), { id: 'x', q: null });
  });
}
