import type { PageLoad } from './$types';

export const load = (({ url }) => ({ key: url.searchParams.get('key') ?? '' })) satisfies PageLoad;
