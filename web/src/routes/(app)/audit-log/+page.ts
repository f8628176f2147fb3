import { redirect } from '@sveltejs/kit';
import { client, data } from '$lib/graphql/client';
import { AuditEventsDocument, EventTypesDocument } from '$lib/graphql/generated/graphql';
import { rawId } from '$lib/ids';
import { session } from '$lib/session.svelte';
import type { PageLoad } from './$types';

const PAGE_SIZE = 50;

export const load = (async ({ url, parent }) => {
  // The role is known once the layout has loaded the session (on a reload or a deep link, not before).
  await parent();
  if (!session.can('viewAudit')) redirect(307, '/');
  const type = url.searchParams.get('type')?.trim() || null;
  const license = url.searchParams.get('license') || null;
  const licenseId = license ? rawId(license) : null;
  const [d, types] = await Promise.all([
    client.query(AuditEventsDocument, { first: PAGE_SIZE, type, licenseId }).toPromise().then(data),
    client.query(EventTypesDocument, {}).toPromise().then(data),
  ]);
  return { events: d.auditEvents, eventTypes: types.webhookEventTypes, type, licenseId, pageSize: PAGE_SIZE };
}) satisfies PageLoad;
