import { redirect } from '@sveltejs/kit';
import { client, data } from '$lib/graphql/client';
import { AuditEventsDocument } from '$lib/graphql/generated/graphql';
import { session } from '$lib/session.svelte';
import type { PageLoad } from './$types';

const PAGE_SIZE = 50;

export const load = (async ({ url }) => {
  if (!session.can('viewAudit')) redirect(307, '/');
  const type = url.searchParams.get('type')?.trim() || null;
  const d = data(await client.query(AuditEventsDocument, { first: PAGE_SIZE, type }).toPromise());
  return { events: d.auditEvents, type, pageSize: PAGE_SIZE };
}) satisfies PageLoad;
