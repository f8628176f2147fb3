import type { HandleClientError } from '@sveltejs/kit';

// Leaving a page aborts its live subscriptions on purpose. @urql/core's stream reader then calls
// reader.cancel() on the aborted body without awaiting it, which surfaces as an unhandled
// AbortError; it is not a failure, so it is not reported as one.
window.addEventListener('unhandledrejection', (event) => {
  const reason: unknown = event.reason;
  if (reason instanceof DOMException && reason.name === 'AbortError') event.preventDefault();
});

export const handleError: HandleClientError = ({ error, message }) => {
  console.error(error);
  return { message: error instanceof Error ? error.message : message };
};
