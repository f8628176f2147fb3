import type { Client } from '@urql/core';
import type { Link } from './activity-manager.svelte';
import { ActivityDocument } from './graphql/generated/graphql';
import { dayIn } from './histogram';

export interface ActivationCounts {
  timeZone: string;
  days: readonly { date: string; activations: number }[];
  /** The feed cursor the counts are exact up to (activationsPerDay). */
  cursor: string | null;
}

/**
 * Device activations per day: the server's counts, then each `activation.created` event of the feed
 * resumed after the counts' cursor, so every activation is counted once, however busy the tenant.
 * After a lost socket the feed resumes after the last event it gave.
 */
export class ActivationTally {
  counts = $state<Record<string, number>>({});
  readonly timeZone: string;
  #after: string | null;

  constructor(
    private readonly client: Client,
    initial: ActivationCounts,
    private readonly link: Link | null = null,
  ) {
    this.timeZone = initial.timeZone;
    this.#after = initial.cursor;
    this.counts = Object.fromEntries(initial.days.map((d) => [d.date, d.activations]));
  }

  /** Counts one activation that happened at `occurredAt` (the feed gives each event once). */
  add(occurredAt: string) {
    const day = dayIn(new Date(occurredAt), this.timeZone);
    this.counts = { ...this.counts, [day]: (this.counts[day] ?? 0) + 1 };
  }

  listen(): () => void {
    let stop: (() => void) | undefined;
    const subscribe = () => {
      stop?.();
      const { unsubscribe } = this.client
        .subscription(ActivityDocument, { after: this.#after, filter: { types: ['activation.created'] } })
        .subscribe((result) => {
          const e = result.data?.activity;
          if (!e) return;
          this.#after = e.id;
          this.add(e.occurredAt);
        });
      stop = unsubscribe;
    };
    subscribe();
    const offReconnect = this.link?.onReconnect(subscribe);
    return () => {
      offReconnect?.();
      stop?.();
    };
  }
}
