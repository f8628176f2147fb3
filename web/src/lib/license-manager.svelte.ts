import type { LicenseQuery } from './graphql/generated/graphql';

export type LicenseNode = Extract<NonNullable<LicenseQuery['node']>, { __typename: 'License' }>;

export interface LicenseSource<T = LicenseNode> {
  /** Fetches the license afresh; null when it no longer exists. */
  fetch(): Promise<T | null>;
  /** Optional push channel: calls back whenever the license may have changed; returns a cleanup. */
  watch?(changed: () => void): () => void;
}

/**
 * Live state of one license (status, activation progress, devices). Refreshes on a push from the
 * server when a watch channel exists, and otherwise every `intervalMs` while the page is visible.
 */
export class LicenseManager<T extends object = LicenseNode> {
  license = $state<T | null>(null);
  error = $state<string | null>(null);
  #inflight: Promise<void> | null = null;

  constructor(
    private readonly source: LicenseSource<T>,
    initial: T | null,
    private readonly intervalMs = 5000,
  ) {
    this.license = initial;
  }

  /** Replace the state with a mutation's answer, so the page never waits for the next refresh. */
  apply(next: Partial<T>) {
    if (this.license) this.license = { ...this.license, ...next };
  }

  refresh(): Promise<void> {
    this.#inflight ??= this.source
      .fetch()
      .then((next) => {
        this.license = next;
        this.error = null;
      })
      .catch((e: unknown) => {
        this.error = e instanceof Error ? e.message : String(e);
      })
      .finally(() => {
        this.#inflight = null;
      });
    return this.#inflight;
  }

  listen(): () => void {
    const stopWatch = this.source.watch?.(() => void this.refresh());
    const tick = () => {
      if (typeof document === 'undefined' || document.visibilityState === 'visible') void this.refresh();
    };
    const timer = setInterval(tick, stopWatch ? this.intervalMs * 6 : this.intervalMs);
    return () => {
      clearInterval(timer);
      stopWatch?.();
    };
  }
}
