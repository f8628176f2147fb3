import { client, data } from '$lib/graphql/client';
import { ActivationHistoryDocument, ComplianceCountDocument, DashboardStatsDocument } from '$lib/graphql/generated/graphql';
import { session } from '$lib/session.svelte';
import type { PageLoad } from './$types';

export const load = (async ({ depends }) => {
  depends('app:dashboard');
  const [stats, compliance, history] = await Promise.all([
    client.query(DashboardStatsDocument, { expiringWithinDays: 30 }).toPromise().then(data),
    client.query(ComplianceCountDocument, {}).toPromise().then(data),
    // The audit log is SUPPORT and up; a read-only member sees the chart fill from the live feed only.
    session.can('viewAudit') ? client.query(ActivationHistoryDocument, { first: 1000 }).toPromise().then(data) : null,
  ]);
  const activations = history?.auditEvents.edges.flatMap((e) => (e.node ? [{ id: e.node.id, occurredAt: e.node.occurredAt }] : [])) ?? [];
  return { ...stats, compliance: compliance.complianceSummary, activations };
}) satisfies PageLoad;
