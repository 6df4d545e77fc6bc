// Reading conversations in tests.
import type { MessageView } from '../../messaging/views.ts';
import type { SocialUser } from './social.ts';

/** Every message the user may read, oldest first, paging forward. */
export async function fullHistory(u: SocialUser, conversationId: string): Promise<MessageView[]> {
  const out: MessageView[] = [];
  for (let after = 0; ;) {
    const page = await u.c.request('conversations:history', { conversationId, after, limit: 50 });
    out.push(...page.messages);
    if (!page.hasMore || page.messages.length === 0) return out;
    after = page.messages.at(-1)!.seq;
  }
}
