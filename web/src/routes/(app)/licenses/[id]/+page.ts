import { nodeId } from '$lib/ids';
import { notFound } from '$lib/not-found';
import type { PageLoad } from './$types';
import { fetchLicense } from './license';

export const load = (async ({ params, parent }) => {
  const missing: () => never = () => notFound('License', 'No license of this workspace has this id: it may have been mistyped or cut short.', { href: '/licenses', label: 'Back to licenses' });
  const id = nodeId('License', params.id);
  if (!id) missing();
  // Token keys are asked for by role, known once the layout has loaded the session (on a reload, not before).
  await parent();
  const license = await fetchLicense(id);
  if (!license) missing();
  return { license };
}) satisfies PageLoad;
