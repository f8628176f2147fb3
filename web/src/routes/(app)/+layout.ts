import { redirect } from '@sveltejs/kit';
import { client } from '$lib/graphql/client';
import { session } from '$lib/session.svelte';
import type { LayoutLoad } from './$types';

export const load = (async ({ url }) => {
  if (!session.viewer && !(await session.load(client))) {
    redirect(307, `/signin?next=${encodeURIComponent(url.pathname + url.search)}`);
  }
  return {};
}) satisfies LayoutLoad;
