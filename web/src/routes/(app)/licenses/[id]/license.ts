import { client, data } from '$lib/graphql/client';
import { LicenseDocument, LicenseLiveDocument, LicensePartsDocument, type LicenseLiveSubscription, type LicenseQuery } from '$lib/graphql/generated/graphql';
import type { LicenseNode, LicenseSource } from '$lib/license-manager.svelte';
import { session } from '$lib/session.svelte';

/** Devices listed at first, and how many more each "Show more" adds. */
export const DEVICES_PAGE = 50;

/** The license with its seat map (floating) and usage balances (metered), as the detail page shows it. */
export type LicenseView = LicenseNode & {
  seatMap: LicenseQuery['seatMap'] | null;
  usage: LicenseQuery['usageReconciliation'] | null;
};

export function fetchLicense(id: string, known?: Pick<LicenseNode, 'provisioning' | 'meters'>, devices = DEVICES_PAGE): Promise<LicenseView | null> {
  return client
    .query(LicenseDocument, {
      id,
      withTokens: session.can('viewTokenKeys'),
      devicesFirst: devices,
      // Before the first answer we do not know; after it, ask only for what applies.
      floating: known ? known.provisioning === 'FLOATING' : true,
      metered: known ? known.meters.length > 0 : true,
    })
    .toPromise()
    .then(data)
    .then((d) => (d.node?.__typename === 'License' ? { ...d.node, seatMap: d.seatMap ?? null, usage: d.usageReconciliation ?? null } : null));
}

type LiveDevice = NonNullable<LicenseLiveSubscription['licenseLive']['device']>;

/** The license with one of its listed devices as a heartbeat left it (its last-seen never goes back). */
export function withDevice(license: LicenseView, device: LiveDevice): LicenseView {
  let found = false;
  const edges = license.activations.edges.map((e) => {
    if (e.node?.id !== device.id) return e;
    found = true;
    // An older heartbeat's details (pushed late) do not overwrite a newer one's.
    const shown = e.node.lastHeartbeatAt;
    const newer = !shown || (!!device.lastHeartbeatAt && Date.parse(device.lastHeartbeatAt) >= Date.parse(shown));
    if (!newer) return e;
    const { lastHeartbeatAt, hostname, platform, osVersion, appVersion } = device;
    return { ...e, node: { ...e.node, lastHeartbeatAt, hostname, platform, osVersion, appVersion } };
  });
  return found ? { ...license, activations: { ...license.activations, edges } } : license;
}

/** What a `licenseLive` push means for the page: the event's type decides what is read again. */
export type LiveChange = 'none' | 'device' | 'seats' | 'usage' | 'license';

export function changeOf(eventType: string | null | undefined): LiveChange {
  // The state sent on subscribe (null) catches what happened between the page's load and the socket.
  if (!eventType) return 'license';
  // A heartbeat changes one device's last-seen and versions, which the push carries.
  if (eventType === 'device.heartbeat') return 'device';
  // Seat leases and the queue change the seat map only; usage the balances only.
  if (eventType.startsWith('lease.') || eventType.startsWith('seat.')) return 'seats';
  if (eventType.startsWith('usage.')) return 'usage';
  // Anything else (terms, status, activations, releases, devices' components, syncs, alerts) reads it all.
  return 'license';
}

/**
 * Fetches the license, and follows `licenseLive`: a device's heartbeat is shown from the push itself,
 * seat and usage events read only the seat map or the balances, and every other event (and the first
 * answer, the state when the subscription started, which catches what happened between the page's load
 * and the socket being ready) reads the license again.
 */
export function licenseSource(id: string, current: () => LicenseView | null, devices: () => number = () => DEVICES_PAGE): LicenseSource<LicenseView> {
  return {
    // As many devices as the page lists (more once the user asked for more), every time it is read again.
    fetch: () => fetchLicense(id, current() ?? undefined, devices()),
    watch(changed, patch) {
      const parts = async (floating: boolean, metered: boolean) => {
        const d = data(await client.query(LicensePartsDocument, { id, floating, metered }, { requestPolicy: 'network-only' }).toPromise());
        patch((l) => ({ ...l, ...(floating && d.seatMap ? { seatMap: d.seatMap } : {}), ...(metered && d.usageReconciliation ? { usage: d.usageReconciliation } : {}) }), false);
      };
      const { unsubscribe } = client.subscription(LicenseLiveDocument, { licenseId: id }).subscribe((result) => {
        const live = result.data?.licenseLive;
        if (!live) return;
        const l = current();
        switch (changeOf(live.eventType)) {
          case 'device':
            if (live.device) patch((v) => withDevice(v, live.device!));
            return;
          case 'seats':
            if (l?.provisioning === 'FLOATING') parts(true, false).catch(changed);
            return;
          case 'usage':
            if (l?.meters.length) parts(false, true).catch(changed);
            return;
          default:
            changed();
        }
      });
      return unsubscribe;
    },
  };
}
