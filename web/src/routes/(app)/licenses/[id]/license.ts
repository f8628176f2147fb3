import { client, data } from '$lib/graphql/client';
import { LicenseDocument, LicenseLiveDocument } from '$lib/graphql/generated/graphql';
import type { LicenseNode, LicenseSource } from '$lib/license-manager.svelte';
import { session } from '$lib/session.svelte';

const DEVICES_PAGE = 50;

export function fetchLicense(id: string): Promise<LicenseNode | null> {
  return client
    .query(LicenseDocument, { id, withTokens: session.can('viewTokenKeys'), devicesFirst: DEVICES_PAGE })
    .toPromise()
    .then(data)
    .then((d) => (d.node?.__typename === 'License' ? d.node : null));
}

/** Fetches the license, and re-fetches whenever `licenseLive` reports an event about it. */
export function licenseSource(id: string): LicenseSource {
  return {
    fetch: () => fetchLicense(id),
    watch(changed) {
      const { unsubscribe } = client.subscription(LicenseLiveDocument, { licenseId: id }).subscribe((result) => {
        if (result.data?.licenseLive.eventId) changed();
      });
      return unsubscribe;
    },
  };
}
