import type { Client } from '@urql/core';
import { data } from './graphql/client';
import { ViewerDocument, type Role, type ViewerQuery } from './graphql/generated/graphql';
import { can, type Action } from './permissions';

/** Who is signed in. Loaded once by the app layout; pages ask it what the role allows. */
export class Session {
  viewer = $state<ViewerQuery['viewer']>(null);
  tenant = $state<ViewerQuery['tenant'] | null>(null);

  get role(): Role | null {
    return this.viewer?.role ?? null;
  }

  can(action: Action): boolean {
    return can(this.role, action);
  }

  /** Returns false when nobody is signed in (no session cookie, or it expired). */
  async load(client: Client): Promise<boolean> {
    const result = await client.query(ViewerDocument, {}).toPromise();
    // Signed out: viewer is null and `tenant` fails with UNAUTHENTICATED; neither is an error here.
    if (result.data?.viewer === null || result.error?.graphQLErrors.some((e) => e.extensions?.code === 'UNAUTHENTICATED')) {
      this.clear();
      return false;
    }
    const d = data(result);
    this.viewer = d.viewer;
    this.tenant = d.viewer ? d.tenant : null;
    return d.viewer !== null;
  }

  clear() {
    this.viewer = null;
    this.tenant = null;
  }
}

export const session = new Session();
