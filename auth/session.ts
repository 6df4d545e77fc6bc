// What a signed-in caller is, as the socket gateway and the HTTP routes see
// it: the claims of a verified access token.
import { ACCOUNT_ROLES, type AccountRole } from '../models/account.ts';

export const ROLES = ACCOUNT_ROLES;
export type Role = AccountRole;

export interface Session {
  userId: string;
  sessionId: string;
  roles: readonly Role[];
  /** Access token expiry, epoch ms. */
  expiresAt: number;
  /** When the user last signed in with a password or a provider, epoch ms; absent or 0: unknown, never recent. */
  authTime?: number;
}
