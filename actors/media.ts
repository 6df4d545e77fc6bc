// MediaActor's implementation (interface: actors/contracts/media.ts). The
// media document is the actor's state (document persistence in `media`),
// null until the upload is created. Every change that the owner should hear
// of records a delivery to the owner's personal stream as an effect, so the
// events arrive in the order of the changes, after each is saved; scheduling
// the processing job and purging objects are effects too (both idempotent:
// a second processing run finds the media claimed or done).
import { z } from 'zod';
import { FlockError } from '../kernel/errors.ts';
import { mediaFields, type MediaFields } from '../models/media.ts';
import { MediaActor } from './contracts/media.ts';
import { implementActor, type ActorContext } from './define.ts';

const mediaEffect = z.discriminatedUnion('kind', [
  /** Tell the owner: uploaded, processing (percent), ready, failed. */
  z.object({ kind: z.literal('notify'), event: z.enum(['uploaded', 'processing', 'ready', 'failed']) }),
  /** Schedule the processing job. */
  z.object({ kind: z.literal('process') }),
  /** Remove stored objects: the original and every output prefix written so far. */
  z.object({ kind: z.literal('purge'), keys: z.array(z.string()), prefixes: z.array(z.string()) }),
]);
type MediaEffect = z.output<typeof mediaEffect>;
type State = MediaFields | null;
type Ctx = ActorContext<State, MediaEffect>;

export const mediaActor = implementActor(MediaActor, {
  state: mediaFields.nullable(),
  initialState: (): State => null,
  persistence: { kind: 'document', collection: 'media' },
  effects: { schema: mediaEffect, run: runEffect },
  handlers: {
    create: async (ctx, { owner, declaredBytes, kind, filename, sourceKey }) => {
      const doc = ctx.state;
      if (doc) {
        if (doc.owner !== owner) throw new FlockError('MEDIA_NOT_FOUND');
        return { created: false };
      }
      const now = new Date();
      ctx.setState({
        owner,
        kind,
        container: null,
        state: 'uploading',
        filename,
        declaredBytes,
        bytes: null,
        sourceKey,
        percent: 0,
        attempt: null,
        outputPrefix: null,
        output: null,
        error: null,
        createdAt: now,
        updatedAt: now,
        deletedAt: null,
      });
      return { created: true };
    },
    sniffed: async (ctx, { kind, container }) => {
      const doc = existing(ctx);
      if (doc.state !== 'uploading') throw new FlockError('MEDIA_NOT_READY', undefined, { details: { state: doc.state } });
      if (doc.kind !== kind || doc.container !== container) ctx.setState({ ...doc, kind, container, updatedAt: new Date() });
      return {};
    },
    uploaded: async (ctx, { bytes }) => {
      const doc = existing(ctx);
      if (doc.state !== 'uploading') return { changed: false, owner: doc.owner };
      if (!doc.container) throw new FlockError('MEDIA_UPLOAD_INVALID', 'the content was never sniffed');
      ctx.setState({ ...doc, state: 'uploaded', bytes, updatedAt: new Date() });
      ctx.effect({ kind: 'notify', event: 'uploaded' });
      ctx.effect({ kind: 'process' });
      return { changed: true, owner: doc.owner };
    },
    claim: async (ctx, { attemptId, leaseMs }) => {
      const doc = existing(ctx);
      const answer = (go: boolean, prefix: string) => ({
        go,
        state: doc.state,
        owner: doc.owner,
        kind: doc.kind,
        container: doc.container,
        sourceKey: doc.sourceKey,
        outputPrefix: prefix,
      });
      const free =
        doc.state === 'uploaded' || (doc.state === 'processing' && (!doc.attempt || doc.attempt.id === attemptId || doc.attempt.until.getTime() <= Date.now()));
      if (!free) return answer(false, doc.outputPrefix ?? '');
      const now = new Date();
      const renewing = doc.attempt?.id === attemptId;
      // Each attempt writes under a prefix of its own; only the one that finishes while it holds the claim is kept.
      const prefix = `media/${ctx.key}/${attemptId}/`;
      ctx.setState({
        ...doc,
        state: 'processing',
        attempt: { id: attemptId, until: new Date(now.getTime() + leaseMs) },
        percent: renewing ? doc.percent : 0,
        updatedAt: now,
      });
      if (!renewing) ctx.effect({ kind: 'notify', event: 'processing' });
      return { ...answer(true, prefix), state: 'processing' as const };
    },
    progress: async (ctx, { attemptId, percent }) => {
      const doc = existing(ctx);
      if (doc.state !== 'processing' || doc.attempt?.id !== attemptId) return { current: false };
      if (percent > doc.percent) {
        ctx.setState({ ...doc, percent, updatedAt: new Date() });
        ctx.effect({ kind: 'notify', event: 'processing' });
      }
      return { current: true };
    },
    finish: async (ctx, { attemptId, output }) => {
      const doc = existing(ctx);
      // Asked again after it was saved (the first answer was lost): it did win.
      if (doc.state === 'ready' && doc.outputPrefix === `media/${ctx.key}/${attemptId}/`) return { won: true };
      if (doc.state !== 'processing' || doc.attempt?.id !== attemptId) return { won: false };
      ctx.setState({ ...doc, state: 'ready', percent: 100, attempt: null, outputPrefix: `media/${ctx.key}/${attemptId}/`, output, updatedAt: new Date() });
      ctx.effect({ kind: 'notify', event: 'ready' });
      return { won: true };
    },
    fail: async (ctx, { attemptId, code, message }) => {
      const doc = existing(ctx);
      const mine = attemptId === null ? doc.state === 'uploaded' || doc.state === 'uploading' : doc.attempt?.id === attemptId;
      if (doc.state === 'ready' || doc.state === 'failed' || doc.state === 'deleted' || !mine) return { changed: false, owner: doc.owner };
      ctx.setState({ ...doc, state: 'failed', attempt: null, error: { code, message }, updatedAt: new Date() });
      ctx.effect({ kind: 'notify', event: 'failed' });
      // Nothing of a failed file is kept: its original and whatever the attempts wrote.
      ctx.effect({ kind: 'purge', keys: [doc.sourceKey], prefixes: [`media/${ctx.key}/`] });
      return { changed: true, owner: doc.owner };
    },
    release: async (ctx, { attemptId }) => {
      const doc = existing(ctx);
      if (doc.state !== 'processing' || doc.attempt?.id !== attemptId) return { changed: false };
      // The run failed for a passing reason: the next one may claim at once, from the start.
      ctx.setState({ ...doc, state: 'uploaded', attempt: null, percent: 0, updatedAt: new Date() });
      return { changed: true };
    },
    remove: async (ctx, { userId }) => {
      const doc = ctx.state;
      if (!doc) throw new FlockError('MEDIA_NOT_FOUND');
      if (userId !== null && doc.owner !== userId) throw new FlockError('MEDIA_NOT_FOUND');
      if (doc.state === 'deleted') return { changed: false, owner: doc.owner };
      // An upload given up (userId null) removes only what never became a whole upload.
      if (userId === null && doc.state !== 'uploading' && doc.state !== 'failed') return { changed: false, owner: doc.owner };
      const now = new Date();
      ctx.setState({ ...doc, state: 'deleted', attempt: null, output: null, deletedAt: now, updatedAt: now });
      ctx.effect({ kind: 'purge', keys: [doc.sourceKey], prefixes: [`media/${ctx.key}/`] });
      return { changed: true, owner: doc.owner };
    },
  },
});

function existing(ctx: Ctx): MediaFields {
  const doc = ctx.state;
  if (!doc || doc.state === 'deleted') throw new FlockError('MEDIA_NOT_FOUND');
  return doc;
}

async function runEffect(ctx: Ctx, effect: MediaEffect): Promise<void> {
  const doc = ctx.state;
  const media = ctx.services.media;
  switch (effect.kind) {
    case 'notify':
      if (doc) await media.notify(ctx.key, doc, effect.event);
      return;
    case 'process':
      await media.process(ctx.key);
      return;
    case 'purge':
      await media.purge(ctx.key, effect.keys, effect.prefixes);
      return;
  }
}
