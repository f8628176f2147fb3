import { client, data } from '$lib/graphql/client';
import { ActivationHistoryDocument, ComplianceCountDocument, DashboardStatsDocument, TenantUsageDocument } from '$lib/graphql/generated/graphql';
import { session } from '$lib/session.svelte';
import type { PageLoad } from './$types';

export const load = (async ({ depends, parent }) => {
  depends('app:dashboard');
  // The role is known once the layout has loaded the session (on a reload, not before).
  await parent();
  const [stats, compliance, usage, history] = await Promise.all([
    client.query(DashboardStatsDocument, { expiringWithinDays: 30 }).toPromise().then(data),
    client.query(ComplianceCountDocument, {}).toPromise().then(data),
    client.query(TenantUsageDocument, {}).toPromise().then(data),
    // The audit log is SUPPORT and up; a read-only member sees the chart fill from the live feed only.
    session.can('viewAudit') ? client.query(ActivationHistoryDocument, { first: 1000 }).toPromise().then(data) : null,
  ]);
  const activations = history?.auditEvents.edges.flatMap((e) => (e.node ? [{ id: e.node.id, occurredAt: e.node.occurredAt }] : [])) ?? [];
  const balances = usage.usageReconciliation.__typename === 'UsageReconciliation' ? usage.usageReconciliation.balances : [];
  // Current windows summed per meter across licenses.
  const meters = new Map<string, { meter: string; used: number; quota: number }>();
  for (const b of balances) {
    const m = meters.get(b.meter) ?? { meter: b.meter, used: 0, quota: 0 };
    m.used += b.used + b.reserved;
    m.quota += b.quota;
    meters.set(b.meter, m);
  }
  return { ...stats, compliance: compliance.complianceSummary, activations, usage: [...meters.values()] };
}) satisfies PageLoad;
