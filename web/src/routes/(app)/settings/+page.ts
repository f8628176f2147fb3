import { redirect } from '@sveltejs/kit';
import { session } from '$lib/session.svelte';
import type { PageLoad } from './$types';

/** /settings opens the first settings page the viewer may use: Members needs ADMIN, signing keys any role. */
export const load = (async ({ parent }) => {
  await parent();
  redirect(307, session.can('viewMembers') ? '/settings/members' : '/settings/signing-keys');
}) satisfies PageLoad;
