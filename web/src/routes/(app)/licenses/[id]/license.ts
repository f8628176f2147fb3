import { client, data } from '$lib/graphql/client';
import { LicenseDocument, LicenseLiveDocument, type LicenseQuery } from '$lib/graphql/generated/graphql';
import type { LicenseNode, LicenseSource } from '$lib/license-manager.svelte';
import { session } from '$lib/session.svelte';

const DEVICES_PAGE = 50;

/** The license with its seat map (floating) and usage balances (metered), as the detail page shows it. */
export type LicenseView = LicenseNode & {
  seatMap: LicenseQuery['seatMap'] | null;
  usage: LicenseQuery['usageReconciliation'] | null;
};

export function fetchLicense(id: string, known?: Pick<LicenseNode, 'provisioning' | 'meters'>): Promise<LicenseView | null> {
  return client
    .query(LicenseDocument, {
      id,
      withTokens: session.can('viewTokenKeys'),
      devicesFirst: DEVICES_PAGE,
      // Before the first answer we do not know; after it, ask only for what applies.
      floating: known ? known.provisioning === 'FLOATING' : true,
      metered: known ? known.meters.length > 0 : true,
    })
    .toPromise()
    .then(data)
    .then((d) => (d.node?.__typename === 'License' ? { ...d.node, seatMap: d.seatMap ?? null, usage: d.usageReconciliation ?? null } : null));
}

/**
 * Fetches the license, and re-fetches whenever `licenseLive` answers: after each event about it, and
 * with its first answer (the state when the subscription started), which catches what happened
 * between the page's load and the socket being ready.
 */
export function licenseSource(id: string, current: () => LicenseView | null): LicenseSource<LicenseView> {
  return {
    fetch: () => fetchLicense(id, current() ?? undefined),
    watch(changed) {
      const { unsubscribe } = client.subscription(LicenseLiveDocument, { licenseId: id }).subscribe((result) => {
        if (result.data) changed();
      });
      return unsubscribe;
    },
  };
}
