import { redirect } from '@sveltejs/kit';
import { client, data, errorCode, errorMessage } from '$lib/graphql/client';
import { AuditEventsDocument, EventTypesDocument, type AuditEventsQuery } from '$lib/graphql/generated/graphql';
import { rawId } from '$lib/ids';
import { session } from '$lib/session.svelte';
import type { PageLoad } from './$types';

const PAGE_SIZE = 50;
const NO_EVENTS: AuditEventsQuery['auditEvents'] = {
  __typename: 'QueryAuditEventsConnection',
  pageInfo: { __typename: 'PageInfo', hasNextPage: false, endCursor: null },
  edges: [],
};

export const load = (async ({ url, parent }) => {
  // The role is known once the layout has loaded the session (on a reload or a deep link, not before).
  await parent();
  if (!session.can('viewAudit')) redirect(307, '/');
  const type = url.searchParams.get('type')?.trim() || null;
  const license = url.searchParams.get('license') || null;
  const licenseId = license ? rawId(license) : null;
  const [result, types] = await Promise.all([
    client.query(AuditEventsDocument, { first: PAGE_SIZE, type, licenseId }).toPromise(),
    client.query(EventTypesDocument, {}).toPromise().then(data),
  ]);
  // A filter the server refuses (a malformed pattern typed in, a link cut short) is said beside the filter, not as an error page.
  const filterError = errorCode(result.error) === 'BAD_USER_INPUT' ? errorMessage(result.error) : null;
  const events = filterError ? NO_EVENTS : data(result).auditEvents;
  return { events, eventTypes: types.webhookEventTypes, type, licenseId, filterError, pageSize: PAGE_SIZE };
}) satisfies PageLoad;
