import { client, data } from '$lib/graphql/client';
import { NewLicenseOptionsDocument } from '$lib/graphql/generated/graphql';
import type { PageLoad } from './$types';

export const load = (async ({ url }) => {
  const options = data(await client.query(NewLicenseOptionsDocument, {}).toPromise());
  return { options, editionId: url.searchParams.get('edition'), customerId: url.searchParams.get('customer') };
}) satisfies PageLoad;
