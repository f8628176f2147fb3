import { client, data } from '$lib/graphql/client';
import { withCustomer } from '$lib/customers';
import { NewLicenseOptionsDocument } from '$lib/graphql/generated/graphql';
import type { PageLoad } from './$types';

export const load = (async ({ url }) => {
  const options = data(await client.query(NewLicenseOptionsDocument, {}).toPromise());
  const customerId = url.searchParams.get('customer');
  const customers = await withCustomer(
    options.customers.edges.flatMap((e) => (e.node ? [e.node] : [])),
    customerId,
  );
  return { options, customers, editionId: url.searchParams.get('edition'), customerId };
}) satisfies PageLoad;
