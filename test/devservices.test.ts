// The dev-services module itself: the embedded FerretDB keeps data on disk
// across restarts, builds are cached, and ffmpeg/ffprobe are found.
import test from 'ava';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { MongoClient } from 'mongodb';
import { startEmbeddedMongo } from '../devservices/ferretdb.ts';
import { findMediaTools } from '../devservices/ffmpeg.ts';
import { loadConfig } from '../server/config.ts';
import { tempDir } from './helpers/env.ts';

const run = promisify(execFile);
const cacheDir = loadConfig(process.env).cacheDir;

test('embedded FerretDB keeps documents in its data directory across a restart', async (t) => {
  const dataDir = await tempDir('ferret');
  const builds: string[] = [];
  const first = await startEmbeddedMongo({ dataDir, cacheDir, onBuild: (m) => builds.push(m) });
  t.regex(first.description, /^embedded FerretDB v1\.24\.\d+ \(SQLite in /);
  const c1 = await MongoClient.connect(first.url);
  await c1
    .db('persist')
    .collection('things')
    .insertOne({ _id: 'x' as never, n: 42 });
  await c1.close();
  await first.stop();

  const second = await startEmbeddedMongo({ dataDir, cacheDir, onBuild: (m) => builds.push(m) });
  t.teardown(() => second.stop());
  const c2 = await MongoClient.connect(second.url);
  t.teardown(() => c2.close());
  t.is(
    (
      await c2
        .db('persist')
        .collection('things')
        .findOne({ _id: 'x' as never })
    )?.n,
    42,
  );
  t.deepEqual(builds, [], 'the binary built for the suite was reused, not rebuilt');
});

test('ffmpeg and ffprobe are found and run', async (t) => {
  const tools = await findMediaTools({});
  const probe = await run(tools.ffprobePath, ['-version']);
  t.regex(probe.stdout, /ffprobe version/);
  // Generate a tiny clip from a lavfi source: proves the binary really encodes.
  const out = `${await tempDir('media')}/clip.mp4`;
  await run(tools.ffmpegPath, ['-v', 'error', '-f', 'lavfi', '-i', 'testsrc=size=64x64:rate=10', '-t', '0.5', '-pix_fmt', 'yuv420p', out]);
  const { stdout } = await run(tools.ffprobePath, ['-v', 'error', '-show_entries', 'stream=width,height', '-of', 'csv=p=0', out]);
  t.is(stdout.trim(), '64,64');
});

test('a configured path that is not ffmpeg gives a typed error naming the variable', async (t) => {
  const err = await t.throwsAsync(findMediaTools({ ffmpegPath: '/nonexistent/ffmpeg' }));
  t.regex(err?.message ?? '', /FFMPEG_PATH/);
});
