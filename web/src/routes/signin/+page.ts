import { redirect } from '@sveltejs/kit';
import { client } from '$lib/graphql/client';
import { session } from '$lib/session.svelte';
import type { PageLoad } from './$types';

export const load = (async ({ url }) => {
  const next = safeNext(url.searchParams.get('next'));
  // Already signed in (the cookie is still good): go straight in.
  if (await session.load(client).catch(() => false)) redirect(307, next);
  return { next, tenant: url.searchParams.get('tenant') ?? '' };
}) satisfies PageLoad;

/** Only same-site paths, so a crafted link cannot send people elsewhere after signing in. */
function safeNext(next: string | null): string {
  return next && next.startsWith('/') && !next.startsWith('//') ? next : '/';
}
