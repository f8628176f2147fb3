import { client, data } from '$lib/graphql/client';
import { CustomersDocument } from '$lib/graphql/generated/graphql';
import type { PageLoad } from './$types';

const PAGE_SIZE = 50;

export const load = (async ({ url, depends }) => {
  depends('app:customers');
  const search = url.searchParams.get('q')?.trim() || null;
  const after = url.searchParams.get('after');
  const d = data(await client.query(CustomersDocument, { first: PAGE_SIZE, after, search }).toPromise());
  return { customers: d.customers, search, paged: Boolean(after) };
}) satisfies PageLoad;
