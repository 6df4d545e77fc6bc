// The media path end to end on a two-node cluster, real s3rver, real ffmpeg:
// tus uploads continued on the other node, direct uploads with presigned
// parts, processing into HLS + DASH and image variants, progress on the
// personal stream, playback through signed URLs, refusals that store
// nothing, and posts that carry only their author's own media.
import test from 'ava';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { FlockRequestError } from '../client/flock-client.ts';
import { tempDir } from './helpers/env.ts';
import { CANARY_TEXT, makeMediaFixtures, type MediaFixtures } from './helpers/media-fixtures.ts';
import { eventShape, MediaCluster, mediaEvents, percents, run, type MediaUser } from './helpers/media-cluster.ts';
import { tusCreate, tusHead, tusPatch, tusUpload, uploadPath } from './helpers/tus.ts';

const ffmpeg = process.env.FFMPEG_PATH ?? 'ffmpeg';
const ffprobe = process.env.FFPROBE_PATH ?? 'ffprobe';
const cluster = new MediaCluster();
let fx: MediaFixtures;
let alice: MediaUser;
let bob: MediaUser;

test.before(async () => {
  const [fixtures] = await Promise.all([
    makeMediaFixtures(ffmpeg, await tempDir('media-fixtures')),
    cluster.start('media', {
      JOBS_PROCESS_EVERY: '1 second',
      MEDIA_BYTES_PER_DAY: String(256 * 1024 * 1024),
      MEDIA_VIDEO_MAX_BYTES: String(512 * 1024 * 1024),
      MEDIA_IMAGE_MAX_BYTES: String(64 * 1024 * 1024),
      MEDIA_CONCURRENT_UPLOADS: '5',
    }),
  ]);
  fx = fixtures;
  [alice, bob] = await Promise.all([cluster.mediaUser(0, 'alice'), cluster.mediaUser(1, 'bob')]);
});
test.after.always(() => cluster.stop());

const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (err: unknown) => (err instanceof FlockRequestError ? err.code : String(err)),
  );
const errorCode = async (res: Response) => ((await res.json()) as { error?: { code?: string } }).error?.code;

/** ffprobe's count of decodable video streams in a local manifest (HLS master or DASH MPD). */
async function videoStreams(manifest: string): Promise<number> {
  const { stdout } = await run(ffprobe, [
    '-v',
    'error',
    '-protocol_whitelist',
    'file',
    '-show_entries',
    'stream=codec_type,width,height',
    '-of',
    'json',
    manifest,
  ]);
  const streams = (JSON.parse(stdout) as { streams: { codec_type: string }[] }).streams;
  return streams.filter((s) => s.codec_type === 'video').length;
}

test.serial('a 720p clip over tus: created and interrupted on one node, finished on the other; ready with HLS and DASH that decode', async (t) => {
  const clip = await readFile(fx.clip720);
  const third = Math.ceil(clip.length / 3);
  const created = await tusCreate(alice.at(0), clip.length, { filename: 'clip.mp4', kind: 'video' });
  t.is(created.status, 201);
  const upload = uploadPath(created);
  const mediaId = upload.split('/').pop()!;
  t.is((await tusPatch(alice.at(0), upload, 0, clip.subarray(0, third))).status, 204);

  // The second chunk is cut off mid-body: the client goes away.
  const abort = new AbortController();
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(clip.subarray(third, third + Math.floor(third / 2)));
      setTimeout(() => abort.abort(), 300);
    },
  });
  await tusPatch(alice.at(0), upload, third, body, abort.signal).catch(() => undefined);

  // The other node knows where it stands, and takes the rest. Until the cut-off write has noticed and let go of the
  // upload, a PATCH gets 409 MEDIA_UPLOAD_CONFLICT: a client asks HEAD again and retries, as tus clients do.
  let offset = -1;
  let answer: Response | undefined;
  for (let i = 0; i < 300 && answer?.status !== 204; i++) {
    if (answer) await new Promise((resolve) => setTimeout(resolve, 100));
    const head = await tusHead(alice.at(1), upload);
    t.is(head.status, 200);
    offset = Number(head.headers.get('upload-offset'));
    const rest = clip.subarray(offset);
    answer = await tusPatch(alice.at(1), upload, offset, rest.subarray(0, Math.ceil(rest.length / 2)));
    if (answer.status !== 204) t.is(await errorCode(answer), 'MEDIA_UPLOAD_CONFLICT');
  }
  t.true(offset >= third && offset <= third + Math.floor(third / 2), `offset ${offset} is what was stored`);
  const next = Number(answer?.headers.get('upload-offset'));
  const last = await tusPatch(alice.at(1), upload, next, clip.subarray(next));
  t.is(last.status, 204);
  t.is(Number(last.headers.get('upload-offset')), clip.length);

  const doc = await cluster.settled(mediaId);
  t.is(doc.state, 'ready', JSON.stringify(doc.error));
  t.is(doc.bytes, clip.length);
  t.true(Buffer.from(await cluster.object(doc.sourceKey)).equals(clip), 'the original in S3 is the file, byte for byte');
  const out = doc.output!;
  if (out.kind !== 'video') return t.fail('not a video');
  t.deepEqual(
    out.renditions.map((r) => r.height),
    [720, 480, 360],
    'no upscaling past the 720p source',
  );

  // Everything read back from S3, then decoded by ffprobe through both manifests.
  const dir = await tempDir('media-out');
  await cluster.download(doc.outputPrefix!, dir);
  t.is(await videoStreams(path.join(dir, out.hls)), 3, 'the HLS master lists three decodable renditions');
  t.is(await videoStreams(path.join(dir, out.dash)), 3, 'the DASH MPD lists the same three');
  for (const r of out.renditions)
    await t.notThrowsAsync(run(ffmpeg, ['-v', 'error', '-protocol_whitelist', 'file', '-i', path.join(dir, r.playlist), '-f', 'null', '-']));
  // One set of outputs: the winning attempt's prefix only.
  const prefixes = new Set((await cluster.keys(`media/${mediaId}/`)).map((k) => k.split('/')[2]));
  t.is(prefixes.size, 1);

  // Progress on alice's stream, in order: uploaded, processing (growing), ready.
  const events = await mediaEvents(alice, mediaId);
  t.deepEqual(eventShape(events), ['media:uploaded', 'media:processing', 'media:ready']);
  const ps = percents(events);
  t.deepEqual(
    ps,
    [...ps].sort((a, b) => a - b),
    'percent only grows',
  );

  // Playback through the signed URLs on the other node: the playlist as text, a segment as a redirect to S3.
  const [view] = (await alice.c.request('media:get', { mediaIds: [mediaId] })).media;
  t.truthy(view?.playback?.hls);
  const master = await fetch(new URL(view!.playback!.hls!, cluster.nodes[1]!.url));
  t.is(master.status, 200);
  const text = await master.text();
  t.true(text.startsWith('#EXTM3U'));
  const variant = text.split('\n').find((l) => l.endsWith('.m3u8'))!;
  const media = await (await fetch(new URL(variant, master.url))).text();
  const segment = media.split('\n').find((l) => l && !l.startsWith('#'))!;
  const redirected = await fetch(new URL(segment, master.url), { redirect: 'manual' });
  t.is(redirected.status, 302);
  t.is((await fetch(redirected.headers.get('location')!)).status, 200);
  // A forged or expired token reads nothing.
  const forged = view!.playback!.hls!.replace(/\/(\d+)\.[^/]+\//, '/$1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/');
  t.is((await fetch(new URL(forged, cluster.nodes[0]!.url))).status, 404);
});

test.serial('a clip uploaded straight to S3 with presigned parts, completed over the socket, ends ready', async (t) => {
  const clip = await readFile(fx.webm);
  const ticket = await bob.c.request('media:createDirectUpload', { length: clip.length, kind: 'video', filename: 'clip.webm' });
  t.is(ticket.parts.length, Math.ceil(clip.length / ticket.partSize));
  const parts = [];
  for (const part of ticket.parts) {
    const bytes = clip.subarray((part.number - 1) * ticket.partSize, part.number * ticket.partSize);
    const res = await fetch(part.url, { method: 'PUT', body: bytes });
    t.is(res.status, 200);
    parts.push({ number: part.number, etag: res.headers.get('etag')! });
  }
  const done = await bob.c.request('media:completeDirectUpload', { mediaId: ticket.mediaId, parts });
  t.is(done.bytes, clip.length);
  // A repeat is harmless.
  t.is((await bob.c.request('media:completeDirectUpload', { mediaId: ticket.mediaId, parts })).bytes, clip.length);
  const doc = await cluster.settled(ticket.mediaId);
  t.is(doc.state, 'ready', JSON.stringify(doc.error));
  t.is(eventShape(await mediaEvents(bob, ticket.mediaId)).filter((e) => e === 'media:ready').length, 1);
});

test.serial('a 24-megapixel JPEG with GPS becomes upright variants without EXIF', async (t) => {
  const mediaId = await tusUpload(alice.at(1), await readFile(fx.bigJpeg), { filename: 'photo.jpg' });
  const doc = await cluster.settled(mediaId);
  t.is(doc.state, 'ready', JSON.stringify(doc.error));
  const out = doc.output!;
  if (out.kind !== 'image') return t.fail('not an image');
  t.deepEqual([out.width, out.height], [4000, 6000], 'orientation 6 applied: portrait');
  t.true(out.variants.some((v) => v.format === 'webp') && out.variants.some((v) => v.format === 'avif') && out.variants.some((v) => v.format === 'jpeg'));
  for (const v of out.variants.filter((v) => v.width <= 640)) {
    const meta = await sharp(await cluster.object(doc.outputPrefix! + v.file)).metadata();
    t.is(meta.exif, undefined, `${v.file} has no EXIF`);
    t.true(meta.height > meta.width, `${v.file} is upright`);
  }
});

test.serial('refused with typed errors, storing nothing: text named .mp4, HLS inside AVI, a PNG bomb, an upload over the quota', async (t) => {
  // Not media: refused as soon as its first bytes are in (here, the whole small file).
  const text = await readFile(fx.textMp4);
  const created = await tusCreate(alice.at(0), text.length, { filename: 'x.mp4', kind: 'video' });
  const textUpload = uploadPath(created);
  const refused = await tusPatch(alice.at(0), textUpload, 0, text);
  t.is(refused.status, 415);
  t.is(await errorCode(refused), 'MEDIA_UNSUPPORTED_TYPE');
  const textId = textUpload.split('/').pop()!;
  t.deepEqual(await cluster.keys(`uploads/${textId}`), []);
  t.like((await mediaEvents(alice, textId)).at(-1)?.data, { mediaId: textId, error: { code: 'MEDIA_UNSUPPORTED_TYPE' } });

  const avi = await readFile(fx.hlsAvi);
  const aviUpload = uploadPath(await tusCreate(alice.at(1), avi.length, { filename: 'clip.avi' }));
  const aviRefused = await tusPatch(alice.at(1), aviUpload, 0, avi);
  t.is(await errorCode(aviRefused), 'MEDIA_UNSUPPORTED_TYPE');
  t.deepEqual(await cluster.keys(`uploads/${aviUpload.split('/').pop()!}`), []);

  // A PNG declaring 100,000 x 100,000 pixels uploads (it is a few hundred bytes) and fails in processing without being decoded.
  const bombId = await tusUpload(alice.at(0), await readFile(fx.hugePng), { filename: 'huge.png' });
  const bomb = await cluster.settled(bombId);
  t.is(bomb.state, 'failed');
  t.is(bomb.error?.code, 'MEDIA_TOO_LARGE');
  const failed = (await mediaEvents(alice, bombId)).find((e) => e.type === 'media:failed');
  t.like(failed?.data, { mediaId: bombId, error: { code: 'MEDIA_TOO_LARGE' } });
  t.true(await eventuallyEmpty(`uploads/${bombId}`), 'its original is purged');

  // Over the daily quota (256 MiB here): refused at creation, nothing is created.
  const tooMuch = await tusCreate(bob.at(0), 300 * 1024 * 1024, { kind: 'video' });
  t.is(tooMuch.status, 429);
  t.is(await errorCode(tooMuch), 'MEDIA_QUOTA_EXCEEDED');
  // Over the size limit for its kind.
  const tooBig = await tusCreate(bob.at(0), 100 * 1024 * 1024, { kind: 'image' });
  t.is(await errorCode(tooBig), 'MEDIA_TOO_LARGE');
  // Nothing in any of these read the canary: no output anywhere holds it.
  for (const key of await cluster.keys('media/')) t.false((await cluster.object(key)).includes(CANARY_TEXT), key);
});

test.serial('posts and messages carry only their author’s own uploaded media; viewers of the post get its media', async (t) => {
  const mediaId = await tusUpload(alice.at(0), await readFile(fx.bigJpeg), { filename: 'p.jpg' });
  t.is(await codeOf(bob.c.request('posts:create', { text: 'not mine', mediaIds: [mediaId] })), 'MEDIA_NOT_FOUND');
  t.is(await codeOf(alice.c.request('posts:create', { text: 'never uploaded', mediaIds: ['m_nosuchmedia01'] })), 'MEDIA_NOT_FOUND');
  const post = await alice.c.request('posts:create', { text: 'a photo', mediaIds: [mediaId] });
  t.deepEqual(post.mediaIds, [mediaId]);
  await cluster.settled(mediaId);
  const seen = await bob.c.request('media:get', { postId: post.postId });
  t.is(seen.media.length, 1);
  t.is(seen.media[0]?.state, 'ready');
  t.truthy(seen.media[0]?.playback?.variants?.length);
  // Others' media by id: not theirs, so left out.
  t.deepEqual((await bob.c.request('media:get', { mediaIds: [mediaId] })).media, []);
  // Deleting the media removes its files.
  t.true((await alice.c.request('media:delete', { mediaId })).changed);
  t.is(await codeOf(alice.c.request('media:delete', { mediaId: 'm_nosuchmedia01' })), 'MEDIA_NOT_FOUND');
  t.true(await eventuallyEmpty(`media/${mediaId}/`), 'outputs purged');
  t.deepEqual((await bob.c.request('media:get', { postId: post.postId })).media, []);

  // Deleting a post removes its media and their files.
  const other = await tusUpload(alice.at(1), await readFile(fx.bigJpeg), { filename: 'q.jpg' });
  const second = await alice.c.request('posts:create', { text: 'another', mediaIds: [other] });
  await cluster.settled(other);
  t.true((await alice.c.request('posts:delete', { postId: second.postId })).changed);
  t.is((await cluster.mediaDoc(other))?.state, 'deleted');
  t.true(await eventuallyEmpty(`media/${other}/`), 'its outputs purged');
  t.true(await eventuallyEmpty(`uploads/${other}`), 'its original purged');
});

async function eventuallyEmpty(prefix: string): Promise<boolean> {
  for (let i = 0; i < 600; i++) {
    if ((await cluster.keys(prefix)).length === 0) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}
