import type { Connection } from './connection.svelte';
import type { LicenseQuery } from './graphql/generated/graphql';

export type LicenseNode = Extract<NonNullable<LicenseQuery['node']>, { __typename: 'License' }>;

export interface LicenseSource<T = LicenseNode> {
  /** Fetches the license afresh; null when it no longer exists. */
  fetch(): Promise<T | null>;
  /**
   * Optional push channel; returns a cleanup. It calls `changed` when the license must be read again,
   * and `patch` when the push says itself what changed (a device's heartbeat: its last-seen), so that
   * nothing is read for it.
   */
  watch?(changed: () => void, patch: (update: (license: T) => T, replay?: boolean) => void): () => void;
}

/**
 * Live state of one license (status, activation progress, devices). Refreshes on a push from the
 * server when a watch channel exists (and every 6 x `intervalMs` as a safety net), and every
 * `intervalMs` while the page is visible otherwise, or while the socket the channel rides is down.
 */
export class LicenseManager<T extends object = LicenseNode> {
  license = $state<T | null>(null);
  error = $state<string | null>(null);
  #inflight: Promise<void> | null = null;
  #again: Promise<void> | null = null;
  /** Patches applied while a read was in flight: its answer may predate them, so they go on it too. */
  #patches: ((license: T) => T)[] = [];

  constructor(
    private readonly source: LicenseSource<T>,
    initial: T | null,
    private readonly intervalMs = 5000,
    private readonly link: Pick<Connection, 'state'> | null = null,
  ) {
    this.license = initial;
  }

  /** Replace the state with a mutation's answer, so the page never waits for the next refresh. */
  apply(next: Partial<T>) {
    if (this.license) this.license = { ...this.license, ...next };
  }

  /**
   * Changes the state in place from a push. With `replay` (the default) `update` is applied again to the
   * answer of a read in flight, which may have been read before the change; it must then hold whatever
   * the state it is given (a last-seen that never goes back). Without it (a part read afresh, which a
   * later answer carries anyway) it is applied once.
   */
  patch(update: (license: T) => T, replay = true) {
    if (this.license) this.license = update(this.license);
    if (replay && this.#inflight) this.#patches.push(update);
  }

  /**
   * Reads the license again. Asked while a read is in flight, it reads once more after it (once however
   * many ask meanwhile): the answer in flight may have been read before the change that asks now (a
   * device's heartbeat, say), and the page would show the state before it until the next push.
   */
  refresh(): Promise<void> {
    if (this.#inflight) {
      this.#again ??= this.#inflight.then(() => {
        this.#again = null;
        return this.refresh();
      });
      return this.#again;
    }
    this.#inflight = this.source
      .fetch()
      .then((next) => {
        this.license = next && this.#patches.reduce((l, update) => update(l), next);
        this.error = null;
      })
      .catch((e: unknown) => {
        this.error = e instanceof Error ? e.message : String(e);
      })
      .finally(() => {
        this.#inflight = null;
        this.#patches = [];
      });
    return this.#inflight;
  }

  listen(): () => void {
    const stopWatch = this.source.watch?.(
      () => void this.refresh(),
      (update, replay) => this.patch(update, replay),
    );
    let ticks = 0;
    const tick = () => {
      ticks++;
      const pushed = stopWatch && (this.link?.state ?? 'live') === 'live';
      if (pushed && ticks % 6 !== 0) return;
      if (typeof document === 'undefined' || document.visibilityState === 'visible') void this.refresh();
    };
    const timer = setInterval(tick, this.intervalMs);
    return () => {
      clearInterval(timer);
      stopWatch?.();
    };
  }
}
