import { error } from '@sveltejs/kit';
import type { PageLoad } from './$types';
import { fetchLicense } from './license';

export const load = (async ({ params, parent }) => {
  // Token keys are asked for by role, known once the layout has loaded the session (on a reload, not before).
  await parent();
  const license = await fetchLicense(params.id);
  if (!license) error(404, 'This license does not exist, or belongs to another tenant.');
  return { license };
}) satisfies PageLoad;
