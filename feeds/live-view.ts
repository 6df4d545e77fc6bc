// What a new post looks like on the live home timeline (`feeds:post`), sent
// once to every follower watching its author. One view goes to them all, so it
// carries only what each of them may see: the author's own post reaches only
// the author's followers (the room), and a quoted or reposted original of
// someone else is embedded only when it is public, with the users in a block
// with its author left out of the delivery. A post whose original some
// watchers could not see (followers-only or a private account's), or whose
// original's author is in too many blocks to list, is not sent live at all:
// each follower finds it on the next home read, built for them.
import type { PostDoc } from '../models/post.ts';
import type { SocialReads } from '../social/reads.ts';
import type { PostView } from '../social/views.ts';

/** Users in a block with the original's author left out of one live delivery at most (each direction). */
export const LIVE_EXCEPT_MAX = 1_000;

export interface LiveView {
  view: PostView;
  /** Users who must not receive it (a block with the original's author, either way). */
  except: string[];
}

/** The live view of `doc`, or null when it is not sent live. */
export async function liveView(reads: SocialReads, doc: PostDoc): Promise<LiveView | null> {
  const [view] = await reads.views(doc.authorId, [doc], undefined, { viewerState: false });
  if (!view) return null;
  const original = view.original;
  if (!original || original.author.userId === doc.authorId) {
    // Nothing embedded beyond the author's own content, which every follower may see. An original the
    // author cannot see (deleted, or a block with its author) is left out for everyone alike.
    return view.originalUnavailable && (await originalExists(reads, doc)) ? null : { view, except: [] };
  }
  if (original.visibility !== 'public' || original.author.private) return null;
  const store = reads.store;
  const except: string[] = [];
  for (const by of ['owner', 'member'] as const) {
    const page = await store.edges.page({ kind: 'block', by, id: original.author.userId, status: 'active', limit: LIVE_EXCEPT_MAX });
    if (page.nextCursor !== null) return null;
    except.push(...page.items.map((i) => i.id));
  }
  return { view, except: [...new Set(except)] };
}

/** Whether the post's quoted or reposted original is still there (hidden from the author rather than deleted). */
async function originalExists(reads: SocialReads, doc: PostDoc): Promise<boolean> {
  const id = doc.quoteOf ?? doc.repostOf;
  if (id === null) return false;
  const original = await reads.store.posts.findById(id, { deleted: 1 }).lean<{ deleted: boolean }>();
  return original !== null && !original.deleted;
}
