import type { Connection } from './connection.svelte';

/** One domain event as the feed shows it, whether it came from the audit log or the subscription. */
export interface ActivityEvent {
  id: string;
  type: string;
  occurredAt: string;
  actorType: string;
  actorId: string | null;
  subjectType: string;
  subjectId: string;
  licenseId: string | null;
  customerId: string | null;
  payload: unknown;
}

export interface ActivitySource {
  /** The newest events, newest first. */
  recent(limit: number): Promise<ActivityEvent[]>;
  /** False when `recent` cannot read the history (the role may not read the audit log): polling it would show nothing. */
  history?: boolean;
  /** Optional push channel (the `activity` subscription, resumed after the last event it gave); returns a cleanup. */
  subscribe?(onEvent: (event: ActivityEvent) => void, onError: (message: string) => void): () => void;
}

/** What the feed can say about itself: `polling` re-reads the audit log, `stopped` gets nothing new. */
export type FeedStatus = 'polling' | 'connecting' | 'live' | 'reconnecting' | 'stopped';

/** The socket the push channel rides on (lib/connection.svelte.ts). */
export type Link = Pick<Connection, 'state' | 'onReconnect'>;

/**
 * The live activity feed: newest first, each event once, at most `limit` kept. Uses the push
 * channel when the source has one; while that is down (or has failed) it polls the audit log when
 * the role may read it, and otherwise says that it is waiting, never that it refreshes.
 */
export class ActivityManager {
  events = $state<ActivityEvent[]>([]);
  loading = $state(true);
  error = $state<string | null>(null);
  /** Ids of the kept events that arrived after the first load, to highlight them briefly. */
  fresh = $state<Set<string>>(new Set());
  /** How many events have arrived after the first load, ever: what a page that reacts to new ones watches. */
  arrived = $state(0);
  /** Why the push channel ended (a GraphQL error on the subscription); null while it runs. */
  failed = $state<string | null>(null);

  constructor(
    private readonly source: ActivitySource,
    private readonly limit = 30,
    private readonly pollMs = 4000,
    private readonly link: Link | null = null,
  ) {}

  /** Whether polling `recent` brings anything. */
  get polls(): boolean {
    return this.source.history !== false;
  }

  get status(): FeedStatus {
    if (!this.source.subscribe) return 'polling';
    const link = this.link?.state ?? 'live';
    if (link === 'refused' || this.failed !== null) return this.polls ? 'polling' : 'stopped';
    if (link === 'live') return 'live';
    return link === 'reconnecting' ? 'reconnecting' : 'connecting';
  }

  get live(): boolean {
    return this.status === 'live';
  }

  add(incoming: readonly ActivityEvent[], markFresh: boolean) {
    const known = new Set(this.events.map((e) => e.id));
    const added = incoming.filter((e) => !known.has(e.id));
    if (added.length === 0) return;
    const merged = [...added, ...this.events].sort((a, b) => (a.occurredAt < b.occurredAt ? 1 : a.occurredAt > b.occurredAt ? -1 : 0));
    this.events = merged.slice(0, this.limit);
    if (!markFresh) return;
    this.arrived += added.length;
    // Only ids still shown: on a page left open for days the set would otherwise grow with every event.
    const kept = new Set(this.events.map((e) => e.id));
    this.fresh = new Set([...this.fresh, ...added.map((e) => e.id)].filter((id) => kept.has(id)));
  }

  async poll(markFresh = true): Promise<void> {
    try {
      this.add(await this.source.recent(this.limit), markFresh && !this.loading);
      this.error = null;
    } catch (e) {
      this.error = e instanceof Error ? e.message : String(e);
    } finally {
      this.loading = false;
    }
  }

  /**
   * Loads the history first, then follows the push channel from there. Each time the socket comes
   * back after a loss the channel is started again, resuming after the last event seen.
   */
  listen(): () => void {
    let stopped = false;
    let stop: (() => void) | undefined;
    const subscribe = () => {
      if (!this.source.subscribe) return;
      this.failed = null;
      stop = this.source.subscribe(
        (event) => this.add([event], true),
        (message) => {
          stop?.();
          stop = undefined;
          this.failed = message;
        },
      );
    };
    const timer = setInterval(() => {
      const visible = typeof document === 'undefined' || document.visibilityState === 'visible';
      if (visible && !this.loading && this.status !== 'live' && this.polls) void this.poll();
    }, this.pollMs);
    const offReconnect = this.link?.onReconnect(() => {
      if (stopped || this.loading) return;
      stop?.();
      subscribe();
    });
    void this.poll(false).then(() => {
      if (!stopped) subscribe();
    });
    return () => {
      stopped = true;
      clearInterval(timer);
      offReconnect?.();
      stop?.();
    };
  }
}
