import { redirect } from '@sveltejs/kit';
import { client } from '$lib/graphql/client';
import { session } from '$lib/session.svelte';
import type { PageLoad } from './$types';

export const load = (async ({ url }) => {
  const next = safeNext(url.searchParams.get('next'), url.origin);
  // Already signed in (the cookie is still good): go straight in.
  if (await session.load(client).catch(() => false)) redirect(307, next);
  return { next, tenant: url.searchParams.get('tenant') ?? '' };
}) satisfies PageLoad;

/**
 * Only paths of this origin (with their query), so a crafted link cannot send people elsewhere after
 * signing in: `//host`, `/\host` (a backslash), `https://host` and the like resolve to another origin and give `/`.
 */
function safeNext(next: string | null, origin: string): string {
  if (!next || !next.startsWith('/')) return '/';
  const url = new URL(next, origin);
  if (url.origin !== origin || url.pathname.startsWith('/signin')) return '/';
  return url.pathname + url.search + url.hash;
}
