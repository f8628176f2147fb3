import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ActivityManager, type ActivityEvent, type ActivitySource } from './activity-manager.svelte';
import { Connection } from './connection.svelte';
import { LicenseManager, type LicenseNode } from './license-manager.svelte';

const event = (id: string, at: string, type = 'license.created'): ActivityEvent => ({
  id,
  type,
  occurredAt: at,
  actorType: 'user',
  actorId: null,
  subjectType: 'License',
  subjectId: 's',
  licenseId: null,
  customerId: null,
  payload: {},
});

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

describe('ActivityManager', () => {
  it('keeps events newest first, once each, within the limit', () => {
    const m = new ActivityManager({ recent: async () => [] }, 3);
    m.add([event('1', '2026-01-01T00:00:01Z'), event('2', '2026-01-01T00:00:02Z')], false);
    m.add([event('2', '2026-01-01T00:00:02Z'), event('3', '2026-01-01T00:00:03Z'), event('4', '2026-01-01T00:00:04Z')], true);
    expect(m.events.map((e) => e.id)).toEqual(['4', '3', '2']);
    expect([...m.fresh]).toEqual(['3', '4']);
  });

  it('remembers as fresh only the events it keeps, however many arrive on a page left open', () => {
    const m = new ActivityManager({ recent: async () => [] }, 3);
    for (let i = 0; i < 500; i++) m.add([event(String(i), new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString())], true);
    expect(m.events.map((e) => e.id)).toEqual(['499', '498', '497']);
    expect([...m.fresh].sort()).toEqual(['497', '498', '499']);
    // What a page that reacts to new events counts: every one that arrived.
    expect(m.arrived).toBe(500);
  });

  it('loads history, then follows the subscription from there', async () => {
    let push: ((e: ActivityEvent) => void) | undefined;
    const unsubscribe = vi.fn();
    const source: ActivitySource = {
      recent: async () => [event('1', '2026-01-01T00:00:01Z')],
      subscribe: (onEvent) => {
        push = onEvent;
        return unsubscribe;
      },
    };
    const m = new ActivityManager(source);
    const stop = m.listen();
    await vi.waitFor(() => expect(push).toBeDefined());
    expect(m.loading).toBe(false);
    expect(m.live).toBe(true);
    push!(event('2', '2026-01-01T00:00:02Z', 'activation.created'));
    expect(m.events.map((e) => e.id)).toEqual(['2', '1']);
    expect(m.fresh.has('2')).toBe(true);
    stop();
    expect(unsubscribe).toHaveBeenCalledOnce();
  });

  it('falls back to polling when the subscription fails', async () => {
    let fail: ((message: string) => void) | undefined;
    const recent = vi.fn(async () => [event('1', '2026-01-01T00:00:01Z')]);
    const m = new ActivityManager({ recent, subscribe: (_e, onError) => ((fail = onError), () => {}) }, 30, 1000);
    const stop = m.listen();
    await vi.waitFor(() => expect(fail).toBeDefined());
    fail!('socket closed');
    expect(m.live).toBe(false);
    recent.mockResolvedValueOnce([event('2', '2026-01-01T00:00:02Z')]);
    await vi.advanceTimersByTimeAsync(1000);
    expect(m.events.map((e) => e.id)).toEqual(['2', '1']);
    stop();
    const calls = recent.mock.calls.length;
    await vi.advanceTimersByTimeAsync(5000);
    expect(recent.mock.calls.length).toBe(calls);
  });

  it('says when the socket is down, polls only a history it may read, and starts the channel again once it is back', async () => {
    for (const history of [false, true]) {
      const link = new Connection();
      const recent = vi.fn(async () => [event('1', '2026-01-01T00:00:01Z')]);
      const subscribe = vi.fn((_onEvent: (e: ActivityEvent) => void) => () => {});
      const m = new ActivityManager({ recent, history, subscribe }, 30, 1000, link);
      const stop = m.listen();
      await vi.waitFor(() => expect(subscribe).toHaveBeenCalledOnce());
      expect(m.status).toBe('connecting');
      link.connecting(false);
      link.connected(false);
      expect(m.status).toBe('live');
      link.closed(1006);
      expect(m.status).toBe('reconnecting');
      const calls = recent.mock.calls.length;
      await vi.advanceTimersByTimeAsync(3000);
      // Polling a history the role cannot read would show nothing while claiming to refresh.
      expect(recent.mock.calls.length > calls).toBe(history);
      link.connecting(true);
      expect(subscribe).toHaveBeenCalledOnce();
      link.connected(true);
      expect(m.status).toBe('live');
      expect(subscribe).toHaveBeenCalledTimes(2);
      stop();
    }
  });

  it('shows the error of a failed load', async () => {
    const m = new ActivityManager({ recent: async () => Promise.reject(new Error('Your role does not allow this.')) });
    await m.poll();
    expect(m.error).toBe('Your role does not allow this.');
    expect(m.loading).toBe(false);
  });
});

describe('LicenseManager', () => {
  const license = (used: number) => ({ id: 'L', activationsUsed: used, maxActivations: 3 }) as unknown as LicenseNode;

  it('refreshes on a push and on a timer, and stops on cleanup', async () => {
    let changed: (() => void) | undefined;
    const fetch = vi.fn(async () => license(1));
    const m = new LicenseManager({ fetch, watch: (c) => ((changed = c), () => {}) }, license(0), 1000);
    const stop = m.listen();
    changed!();
    await vi.waitFor(() => expect(m.license?.activationsUsed).toBe(1));
    expect(fetch).toHaveBeenCalledTimes(1);
    // With a push channel the timer is only a safety net (6x slower).
    await vi.advanceTimersByTimeAsync(6000);
    expect(fetch).toHaveBeenCalledTimes(2);
    stop();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(fetch).toHaveBeenCalledTimes(2);
  });

  it('coalesces concurrent refreshes and keeps the last good state on error', async () => {
    const fetch = vi.fn(async () => license(2));
    const m = new LicenseManager({ fetch }, license(0));
    await Promise.all([m.refresh(), m.refresh(), m.refresh()]);
    // One read, and one more after it for those that asked while it was in flight.
    expect(fetch).toHaveBeenCalledTimes(2);
    expect(m.license?.activationsUsed).toBe(2);
    fetch.mockRejectedValueOnce(new Error('offline'));
    await m.refresh();
    expect(m.error).toBe('offline');
    expect(m.license?.activationsUsed).toBe(2);
  });

  it('a change pushed while a read is in flight is read after it, not lost', async () => {
    // The server's state: a heartbeat lands after the first read has left.
    let lastSeen = 'before';
    const reads: { resolve: () => void }[] = [];
    const fetch = vi.fn(() => {
      const at = lastSeen;
      return new Promise<LicenseNode>((resolve) => reads.push({ resolve: () => resolve({ ...license(1), name: at } as LicenseNode) }));
    });
    let changed: (() => void) | undefined;
    const m = new LicenseManager({ fetch, watch: (c) => ((changed = c), () => {}) }, license(0), 1000);
    const stop = m.listen();
    changed!();
    lastSeen = 'heartbeat';
    changed!();
    reads[0]!.resolve();
    await vi.waitFor(() => expect(reads).toHaveLength(2));
    reads[1]!.resolve();
    await vi.waitFor(() => expect((m.license as unknown as { name: string }).name).toBe('heartbeat'));
    expect(fetch).toHaveBeenCalledTimes(2);
    stop();
  });

  it('applies a pushed patch without a read, and again to an answer read before it', async () => {
    let patch: ((update: (l: LicenseNode) => LicenseNode) => void) | undefined;
    let changed: (() => void) | undefined;
    let resolveRead: (() => void) | undefined;
    const fetch = vi.fn(() => new Promise<LicenseNode>((resolve) => (resolveRead = () => resolve(license(5)))));
    const m = new LicenseManager({ fetch, watch: (c, p) => ((changed = c), (patch = p), () => {}) }, license(0), 1000);
    const stop = m.listen();
    const seen = (l: LicenseNode) => ({ ...l, name: 'seen' }) as LicenseNode;
    patch!(seen);
    expect((m.license as unknown as { name: string }).name).toBe('seen');
    expect(fetch).not.toHaveBeenCalled();
    // A read leaves, then a patch arrives: the answer (read before it) gets the patch too.
    changed!();
    patch!(seen);
    resolveRead!();
    await vi.waitFor(() => expect(m.license?.activationsUsed).toBe(5));
    expect((m.license as unknown as { name: string }).name).toBe('seen');
    stop();
  });

  it('applies a mutation answer at once', () => {
    const m = new LicenseManager({ fetch: async () => null }, license(0));
    m.apply({ activationsUsed: 3 });
    expect(m.license?.activationsUsed).toBe(3);
  });
});
