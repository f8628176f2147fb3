import { client, data } from '$lib/graphql/client';
import { LicenseDocument } from '$lib/graphql/generated/graphql';
import type { LicenseNode } from '$lib/license-manager.svelte';
import { session } from '$lib/session.svelte';

const DEVICES_PAGE = 50;

export function fetchLicense(id: string): Promise<LicenseNode | null> {
  return client
    .query(LicenseDocument, { id, withTokens: session.can('viewTokenKeys'), devicesFirst: DEVICES_PAGE })
    .toPromise()
    .then(data)
    .then((d) => (d.node?.__typename === 'License' ? d.node : null));
}
