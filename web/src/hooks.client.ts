import type { HandleClientError } from '@sveltejs/kit';
import { RequestError } from '$lib/graphql/client';

// Leaving a page aborts its live subscriptions on purpose. @urql/core's stream reader then calls
// reader.cancel() on the aborted body without awaiting it, which surfaces as an unhandled
// AbortError; it is not a failure, so it is not reported as one.
window.addEventListener('unhandledrejection', (event) => {
  const reason: unknown = event.reason;
  if (reason instanceof DOMException && reason.name === 'AbortError') event.preventDefault();
});

export const handleError: HandleClientError = ({ error, message }) => {
  // An ended session is no failure of the page: the error page sends the user to sign in. Nor is a page the
  // role may not open: the error page says so.
  if (error instanceof RequestError && (error.code === 'UNAUTHENTICATED' || error.code === 'FORBIDDEN')) return { message: error.message, code: error.code };
  console.error(error);
  return { message: error instanceof Error ? error.message : message, code: error instanceof RequestError ? error.code : null };
};
