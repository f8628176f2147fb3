// See https://svelte.dev/docs/kit/types#app.d.ts
declare global {
  namespace App {
    interface Error {
      message: string;
      /** The server's error code when a request failed (`UNAUTHENTICATED`: the session has ended). */
      code?: string | null;
      /** A detail page whose address names nothing: what was not found ("License"), and the list to go back to. */
      missing?: { what: string; back: { href: string; label: string } };
    }
  }
}

export {};
