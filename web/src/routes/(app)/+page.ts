import { client, data } from '$lib/graphql/client';
import { ActivationsPerDayDocument, ComplianceCountDocument, DashboardStatsDocument, TenantUsageDocument } from '$lib/graphql/generated/graphql';
import { browserTimeZone } from '$lib/histogram';
import type { ActivationCounts } from '$lib/activation-tally.svelte';
import type { PageLoad } from './$types';

export const load = (async ({ depends, parent }) => {
  depends('app:dashboard');
  await parent();
  const [stats, compliance, usage, counted] = await Promise.all([
    client.query(DashboardStatsDocument, { expiringWithinDays: 30 }).toPromise().then(data),
    client.query(ComplianceCountDocument, {}).toPromise().then(data),
    client.query(TenantUsageDocument, {}).toPromise().then(data),
    activationCounts(browserTimeZone()),
  ]);
  const balances = usage.usageReconciliation.__typename === 'UsageReconciliation' ? usage.usageReconciliation.balances : [];
  // Current windows summed per meter across licenses.
  const meters = new Map<string, { meter: string; used: number; quota: number }>();
  for (const b of balances) {
    const m = meters.get(b.meter) ?? { meter: b.meter, used: 0, quota: 0 };
    m.used += b.used + b.reserved;
    m.quota += b.quota;
    meters.set(b.meter, m);
  }
  return { ...stats, compliance: compliance.complianceSummary, activations: counted, usage: [...meters.values()] };
}) satisfies PageLoad;

/** Activations per day of the last 14 days, counted by the server in the browser's time zone (or UTC, if the server does not know it). */
async function activationCounts(timeZone: string): Promise<ActivationCounts> {
  const r = data(await client.query(ActivationsPerDayDocument, { days: 14, timeZone }).toPromise()).activationsPerDay;
  if (r.__typename === 'ActivationsPerDay') return r;
  if (timeZone !== 'UTC') return activationCounts('UTC');
  throw new Error(r.message);
}
