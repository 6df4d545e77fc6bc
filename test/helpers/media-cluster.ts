// Media over a real two-node cluster: users with their access tokens (for
// the HTTP upload routes), their personal streams read back, and the outputs
// of processed media read back from the real S3.
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { StreamEvent } from '../../client/flock-client.ts';
import { mediaFields, type MediaFields } from '../../models/media.ts';
import { readObject, s3Settings, testS3 } from './media.ts';
import { eventually } from './node-process.ts';
import { SocialCluster, streamOf, type SocialUser } from './social.ts';
import type { TusTarget } from './tus.ts';

export const run = promisify(execFile);

export interface MediaUser extends SocialUser {
  token: string;
  /** tus and HTTP targets, one per node. */
  at: (node: number) => TusTarget;
}

export class MediaCluster extends SocialCluster {
  readonly s3 = testS3;
  readonly bucket = s3Settings.bucket;

  async mediaUser(node = 0, name = 'm'): Promise<MediaUser> {
    const username = `${name}${randomBytes(5).toString('hex')}`.slice(0, 30);
    const c = await this.connect(node);
    const res = await c.request('auth:register', { username, email: `${username}@example.test`, password: 'correct horse 42', displayName: name });
    return { c, userId: res.userId, username, node, token: res.tokens.accessToken, at: (n) => ({ base: this.nodes[n]!.url, token: res.tokens.accessToken }) };
  }

  async mediaDoc(mediaId: string): Promise<MediaFields | null> {
    const doc = await this.withDb((db) => db.collection<{ _id: string }>('media').findOne({ _id: mediaId }));
    return doc ? mediaFields.parse(doc) : null;
  }

  /** Waits for the media to end ready or failed; answers the document. */
  async settled(mediaId: string, timeoutMs = 240_000): Promise<MediaFields> {
    let doc: MediaFields | null = null;
    const ok = await eventually(
      async () => {
        doc = await this.mediaDoc(mediaId);
        return doc?.state === 'ready' || doc?.state === 'failed';
      },
      timeoutMs,
      250,
    );
    if (!ok || !doc) throw new Error(`${mediaId} did not settle within ${timeoutMs} ms (state ${JSON.stringify(doc)})`);
    return doc;
  }

  async keys(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.s3.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }));
      for (const o of page.Contents ?? []) if (o.Key) keys.push(o.Key);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return keys;
  }

  async object(key: string): Promise<Buffer> {
    return readObject(key);
  }

  /** Every object under `prefix`, written below `dir` by the part of its key after the prefix. */
  async download(prefix: string, dir: string): Promise<string[]> {
    const keys = await this.keys(prefix);
    await mkdir(dir, { recursive: true });
    for (const key of keys) {
      const file = path.join(dir, key.slice(prefix.length));
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, await this.object(key));
    }
    return keys.map((k) => k.slice(prefix.length));
  }
}

/** The media events of one item in a user's stream, in stream order. */
export async function mediaEvents(u: SocialUser, mediaId: string): Promise<StreamEvent[]> {
  return (await streamOf(u)).filter(
    (e) => e.type.startsWith('media:') && ('mediaId' in e.data ? e.data.mediaId : 'media' in e.data ? e.data.media.mediaId : '') === mediaId,
  );
}

/** The event types of a media item's events, with processing events folded into one 'processing' (checked for order separately). */
export function eventShape(events: StreamEvent[]): string[] {
  const shape: string[] = [];
  for (const e of events) if (shape.at(-1) !== e.type) shape.push(e.type);
  return shape;
}

/** Percents of the processing events, in order. */
export function percents(events: StreamEvent[]): number[] {
  return events.flatMap((e) => (e.type === 'media:processing' ? [e.data.percent] : []));
}
