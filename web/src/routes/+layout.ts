// A client-rendered SPA: the API process serves the built files and answers deep links with index.html.
export const ssr = false;
export const prerender = false;
