/**
 * The signed-in session: the API token is kept in session storage (gone when the tab closes, never
 * written to disk by us), and checked against `GET /v1/whoami`, which names the workspace shown.
 * The API answers at the page's own origin: the Worker serves the UI and the API together.
 */
import type { z } from "zod";
import { create } from "zustand";
import { WhoAmI } from "../../../proto/api";
import { ParallelsClient } from "../../../proto/client";

const TOKEN_KEY = "parallels.token";

type Identity = z.infer<typeof WhoAmI>;
export interface Session extends Identity {
  token: string;
  client: ParallelsClient;
}

/** The control plane's base URL: where this page was served from. */
export const apiBase = () => window.location.origin;

/** Who a token is, or the API's error (401 for an unknown token). */
async function whoami(token: string): Promise<Identity> {
  const res = await fetch(`${apiBase()}/v1/whoami`, { headers: { authorization: `Bearer ${token}` } });
  const body: unknown = await res.json().catch(() => null);
  if (!res.ok) {
    const error = (body as { error?: { message?: string } } | null)?.error;
    throw new Error(error?.message ?? `the control plane answered HTTP ${res.status}`);
  }
  return WhoAmI.parse(body);
}

interface SessionStore {
  session: Session | null;
  /** True while a stored token is being checked after a reload. */
  restoring: boolean;
  signIn(token: string): Promise<void>;
  signOut(): void;
  restore(): Promise<void>;
}

export const useSession = create<SessionStore>((set, get) => ({
  session: null,
  restoring: sessionStorage.getItem(TOKEN_KEY) !== null,
  async signIn(token) {
    const who = await whoami(token.trim());
    sessionStorage.setItem(TOKEN_KEY, token.trim());
    set({ session: { token: token.trim(), ...who, client: new ParallelsClient({ baseUrl: apiBase(), token: token.trim() }) }, restoring: false });
  },
  signOut() {
    sessionStorage.removeItem(TOKEN_KEY);
    set({ session: null, restoring: false });
  },
  async restore() {
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (!token || get().session) return set({ restoring: false });
    // A token that no longer works (revoked, another control plane) sends the user to sign in.
    await get()
      .signIn(token)
      .catch(() => get().signOut());
  },
}));

/** The client of the signed-in session (pages below the sign-in gate only). */
export function useClient(): ParallelsClient {
  const session = useSession((s) => s.session);
  if (!session) throw new Error("useClient outside a signed-in page");
  return session.client;
}
