import { error } from '@sveltejs/kit';
import type { PageLoad } from './$types';
import { fetchLicense } from './license';

export const load = (async ({ params }) => {
  const license = await fetchLicense(params.id);
  if (!license) error(404, 'This license does not exist, or belongs to another tenant.');
  return { license };
}) satisfies PageLoad;
