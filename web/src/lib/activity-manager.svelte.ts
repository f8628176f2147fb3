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
  /** Optional push channel (the `activity` subscription); returns a cleanup. */
  subscribe?(onEvent: (event: ActivityEvent) => void, onError: (message: string) => void): () => void;
}

/**
 * The live activity feed: newest first, each event once, at most `limit` kept. Uses the push
 * channel when the source has one and polls the audit log otherwise, so new events appear without
 * a reload either way.
 */
export class ActivityManager {
  events = $state<ActivityEvent[]>([]);
  live = $state(false);
  loading = $state(true);
  error = $state<string | null>(null);
  /** Ids that arrived after the first load, to highlight them briefly. */
  fresh = $state<Set<string>>(new Set());

  constructor(
    private readonly source: ActivitySource,
    private readonly limit = 30,
    private readonly pollMs = 4000,
  ) {}

  add(incoming: readonly ActivityEvent[], markFresh: boolean) {
    const known = new Set(this.events.map((e) => e.id));
    const added = incoming.filter((e) => !known.has(e.id));
    if (added.length === 0) return;
    const merged = [...added, ...this.events].sort((a, b) => (a.occurredAt < b.occurredAt ? 1 : a.occurredAt > b.occurredAt ? -1 : 0));
    this.events = merged.slice(0, this.limit);
    if (markFresh) this.fresh = new Set([...this.fresh, ...added.map((e) => e.id)]);
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

  /** Loads the history first, then follows the push channel from there (or polls without one). */
  listen(): () => void {
    let stopped = false;
    let timer: ReturnType<typeof setInterval> | undefined;
    let stop: (() => void) | undefined;
    const startPolling = () => {
      this.live = false;
      timer ??= setInterval(() => {
        if (typeof document === 'undefined' || document.visibilityState === 'visible') void this.poll();
      }, this.pollMs);
    };
    void this.poll(false).then(() => {
      if (stopped) return;
      if (!this.source.subscribe) return startPolling();
      this.live = true;
      stop = this.source.subscribe(
        (event) => this.add([event], true),
        () => {
          // The push channel failed (network, proxy without streaming): keep the feed moving by polling.
          stop?.();
          stop = undefined;
          startPolling();
        },
      );
    });
    return () => {
      stopped = true;
      clearInterval(timer);
      stop?.();
    };
  }
}
