import { client, data } from '$lib/graphql/client';
import { DashboardStatsDocument } from '$lib/graphql/generated/graphql';
import type { PageLoad } from './$types';

export const load = (async ({ depends }) => {
  depends('app:dashboard');
  return data(await client.query(DashboardStatsDocument, { expiringWithinDays: 30 }).toPromise());
}) satisfies PageLoad;
