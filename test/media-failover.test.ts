// A node killed (SIGKILL) in the middle of a transcode: the job runs again
// on the other node once the dead run's claim and lock lapse, completes
// once, and leaves one set of outputs. The owner, whose socket may have
// died with the node, reconnects to the other node and resumes the media
// events where it was: in order, ready exactly once.
import test from 'ava';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { StreamEvent } from '../client/flock-client.ts';
import { tempDir } from './helpers/env.ts';
import { MediaCluster, run } from './helpers/media-cluster.ts';
import { eventually } from './helpers/node-process.ts';
import { tusUpload } from './helpers/tus.ts';

const ffmpeg = process.env.FFMPEG_PATH ?? 'ffmpeg';
const cluster = new MediaCluster();

test.before(() => cluster.start('mediafail', { JOBS_PROCESS_EVERY: '1 second' }));
test.after.always(() => cluster.stop());

const mediaIdOf = (e: StreamEvent) =>
  'mediaId' in e.data && typeof e.data.mediaId === 'string' ? e.data.mediaId : 'media' in e.data ? e.data.media.mediaId : '';

test('a node killed mid-transcode: the job completes once on the other node, one set of outputs; the owner resumes its events', async (t) => {
  // 20 s of 720p: a transcode of several seconds, long enough to be caught in the middle.
  const clip = path.join(await tempDir('media-failover'), 'clip.mp4');
  await run(ffmpeg, [
    ...['-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=1280x720:rate=30', '-f', 'lavfi', '-i', 'sine=frequency=440'],
    ...['-t', '20', '-c:v', 'libx264', '-preset', 'veryfast', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-shortest', clip],
  ]);
  const alice = await cluster.mediaUser(0, 'alice');
  const seen: StreamEvent[] = [];
  alice.c.on('stream:event', (e) => seen.push(e));
  const mediaId = await tusUpload(alice.at(0), await readFile(clip), { filename: 'clip.mp4', kind: 'video' });

  // The node whose job took it, caught in the middle of the transcode.
  let runner = -1;
  t.true(
    await eventually(async () => {
      runner = cluster.nodes.findIndex((n) => n.logs.some((l) => l.msg === 'processing media' && l.mediaId === mediaId));
      return runner >= 0 && seen.some((e) => e.type === 'media:processing' && mediaIdOf(e) === mediaId && e.data.percent >= 5);
    }, 120_000),
    'processing started and made progress',
  );
  const before = await cluster.mediaDoc(mediaId);
  t.is(before?.state, 'processing');
  t.true((before?.percent ?? 100) < 100, 'killed before the end');
  cluster.nodes[runner]!.child.kill('SIGKILL');
  const killedAt = performance.now();
  const survivor = 1 - runner;
  // What the owner had when the node died (its socket may have died with it): it resumes from there.
  const had = [...seen];
  const lastSeen = had.at(-1)?.id;

  const doc = await cluster.settled(mediaId, 180_000);
  t.is(doc.state, 'ready', JSON.stringify(doc.error));
  t.log(`killed node ${runner} at ${before?.percent}%; ready ${Math.round(performance.now() - killedAt)} ms later, processed by node ${survivor}`);
  t.true(
    await eventually(async () => cluster.nodes[survivor]!.logs.some((l) => l.msg === 'media processed' && l.mediaId === mediaId && l.won === true)),
    'the survivor finished it (it logs that after deleting what other attempts wrote)',
  );
  // One set of outputs: everything under media/<id>/ is the winning attempt's.
  const keys = await cluster.keys(`media/${mediaId}/`);
  t.true(keys.length > 0);
  t.deepEqual([...new Set(keys.map((k) => `${k.split('/').slice(0, 3).join('/')}/`))], [doc.outputPrefix]);

  // The owner reconnects to the survivor and resumes from the last event it had.
  const again = await cluster.connect(survivor, alice.token);
  const resumed: StreamEvent[] = [];
  let lastId = lastSeen;
  for (;;) {
    const page = await again.request('stream:resume', { limit: 500, ...(lastId && { lastId }) });
    if (page.kind === 'resync') return t.fail('the stream asked for a resync');
    resumed.push(...page.events);
    lastId = page.events.at(-1)?.id ?? lastId;
    if (!page.more) break;
  }
  const events = [...had, ...resumed].filter((e) => mediaIdOf(e) === mediaId);
  const ids = events.map((e) => e.id);
  t.deepEqual(ids, [...new Set(ids)], 'nothing twice across the reconnect');
  const types = events.map((e) => e.type);
  t.is(types[0], 'media:uploaded');
  t.is(types.filter((x) => x === 'media:ready').length, 1, 'ready exactly once');
  t.is(types.at(-1), 'media:ready');
  t.true(
    types.slice(1, -1).every((x) => x === 'media:processing'),
    'only progress between uploaded and ready',
  );
});
