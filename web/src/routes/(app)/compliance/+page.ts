import { client, data } from '$lib/graphql/client';
import { ComplianceDocument } from '$lib/graphql/generated/graphql';
import type { PageLoad } from './$types';

export const load = (async ({ depends }) => {
  depends('app:compliance');
  return data(await client.query(ComplianceDocument, {}).toPromise());
}) satisfies PageLoad;
