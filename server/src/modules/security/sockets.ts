import { CloseCode } from 'graphql-ws';
import type { WebSocket } from 'ws';
import type { Actor, AppDeps } from '../../context.ts';
import type { DomainEvent } from '../audit/bus.ts';
import { hashSecret } from '../tenants/secrets.ts';
import { stillValid } from '../tenants/service.ts';

/**
 * Open graphql-ws sockets end when their credential does: a subscription keeps streaming the tenant's
 * events long after the credential was checked on connect and subscribe. A revoked token or a signed-out
 * session closes its sockets on every instance (the audit events reach all of them through the bus); an
 * expired one is caught by the periodic re-check.
 */
export interface SocketGuard {
  /** Watches an authenticated socket until it closes. */
  track(socket: WebSocket, actor: Actor, credential: { bearer: string | null; session: string | null }): void;
  /** Closes (4403) the open sockets whose credential no longer authenticates; all of them, or those `which` picks. */
  recheck(which?: (s: TrackedSocket) => boolean): Promise<number>;
  start(everyMs: number): void;
  /** Stops the timer and the bus listeners, and waits for re-checks in flight. */
  stop(): Promise<void>;
}

export interface TrackedSocket {
  socket: WebSocket;
  tenantId: string;
  tokenId: string | null;
  userId: string | null;
  /** The hash of the bearer token or session secret, as stored. */
  credential: { kind: 'token' | 'session'; hash: string };
}

/** Credentials per query, well below PostgreSQL's bind-parameter limit. */
const CHUNK = 1000;

/** Events after which some of the member's sessions no longer authenticate (which ones, the re-check finds out). */
const ENDS_SESSIONS = new Set(['member.signed_out', 'member.removed', 'member.password_reset', 'member.password_changed']);

const guards = new WeakMap<AppDeps, SocketGuard>();

/** The socket guard of one app (one per AppDeps, created on first use). */
export function socketGuardOf(deps: AppDeps, onError: (err: Error) => void = (err) => console.error('sockets:', err.message)): SocketGuard {
  let g = guards.get(deps);
  if (!g) {
    g = createGuard(deps, onError);
    guards.set(deps, g);
  }
  return g;
}

function createGuard(deps: AppDeps, onError: (err: Error) => void): SocketGuard {
  // Listening per tenant, as the bus routes events; a tenant's listener lives while it has open sockets.
  const tenants = new Map<string, { sockets: Set<TrackedSocket>; unlisten: () => void }>();
  const inFlight = new Set<Promise<unknown>>();
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const onEvent = (tenantId: string, e: DomainEvent) => {
    // Re-checked rather than closed outright: signOut deletes only the caller's session, so the member's
    // sockets on other sessions must stay.
    if (e.type === 'api_token.revoked') background(recheckTenant(tenantId, (s) => s.tokenId === e.subjectId));
    else if (ENDS_SESSIONS.has(e.type)) background(recheckTenant(tenantId, (s) => s.userId === e.subjectId));
    // The member's sockets were authorised for the old role; a session kept (one's own) reconnects with the new one.
    else if (e.type === 'member.role_changed') background(recheckTenant(tenantId, (s) => s.userId === e.subjectId, true));
  };

  /** Keeps a re-check in `inFlight` (stop() waits for it) and hands it back. */
  const tracked = <T>(p: Promise<T>): Promise<T> => {
    inFlight.add(p);
    void p.catch(() => {}).finally(() => inFlight.delete(p));
    return p;
  };
  const background = (p: Promise<unknown>) =>
    void tracked(p).catch((err: Error) => {
      if (!stopped) onError(err);
    });

  const untrack = (t: TrackedSocket) => {
    const group = tenants.get(t.tenantId);
    if (!group?.sockets.delete(t) || group.sockets.size) return;
    group.unlisten();
    tenants.delete(t.tenantId);
  };

  /** Closes those of `sockets` whose credential no longer authenticates (all of them when `all`). */
  const check = async (sockets: TrackedSocket[], all = false): Promise<number> => {
    const open = sockets.filter((s) => s.socket.readyState === s.socket.OPEN);
    const hashes = { tokens: new Set<string>(), sessions: new Set<string>() };
    for (const s of open) (s.credential.kind === 'token' ? hashes.tokens : hashes.sessions).add(s.credential.hash);
    const tokens = [...hashes.tokens];
    const sessions = [...hashes.sessions];
    const valid = new Set<string>();
    for (let i = 0; !all && i < Math.max(tokens.length, sessions.length); i += CHUNK) {
      const found = await stillValid(deps.prisma, { tokens: tokens.slice(i, i + CHUNK), sessions: sessions.slice(i, i + CHUNK) });
      for (const h of found) valid.add(h);
    }
    let closed = 0;
    for (const s of open) {
      if (valid.has(s.credential.hash) || s.socket.readyState !== s.socket.OPEN) continue;
      s.socket.close(CloseCode.Forbidden, 'Forbidden');
      untrack(s);
      closed++;
    }
    return closed;
  };

  const allSockets = () => [...tenants.values()].flatMap((g) => [...g.sockets]);
  const recheckTenant = (tenantId: string, which: (s: TrackedSocket) => boolean, all = false) =>
    check([...(tenants.get(tenantId)?.sockets ?? [])].filter(which), all);

  return {
    track(socket, actor, { bearer, session }) {
      const secret = bearer ?? session;
      if (stopped || actor.kind === 'anonymous' || actor.kind === 'operator' || !secret || socket.readyState !== socket.OPEN) return;
      const t: TrackedSocket = {
        socket,
        tenantId: actor.tenantId,
        tokenId: actor.kind === 'token' ? actor.tokenId : null,
        userId: actor.kind === 'user' ? actor.userId : null,
        credential: { kind: bearer ? 'token' : 'session', hash: hashSecret(secret) },
      };
      let group = tenants.get(t.tenantId);
      if (!group) {
        // A revocation or sign-out the bus may have lost on the way (Redis was away): every socket re-checked.
        const unlisten = deps.bus.listen(t.tenantId, (e) => onEvent(t.tenantId, e), () => background(recheckTenant(t.tenantId, () => true)));
        tenants.set(t.tenantId, (group = { sockets: new Set(), unlisten }));
      }
      group.sockets.add(t);
      socket.once('close', () => untrack(t));
    },
    async recheck(which = () => true) {
      return tracked(check(allSockets().filter(which)));
    },
    start(everyMs) {
      if (timer || stopped) return;
      let running = false;
      timer = setInterval(() => {
        if (running) return;
        running = true;
        background(check(allSockets()).finally(() => (running = false)));
      }, everyMs);
      timer.unref();
    },
    async stop() {
      stopped = true;
      if (timer) clearInterval(timer);
      for (const g of tenants.values()) g.unlisten();
      tenants.clear();
      await Promise.allSettled([...inFlight]);
    },
  };
}
