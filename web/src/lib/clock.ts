import { createSubscriber } from 'svelte/reactivity';

/** How often relative times ("3 minutes ago") are brought up to date on an open page. */
export const TICK_MS = 15_000;

/**
 * The time now, for what a page shows relative to it. Read in a template (or an effect or a derived), it
 * makes the reader run again every TICK_MS, through one timer for the whole console that runs only while
 * something on the page reads it. Read anywhere else it is simply the time now.
 */
class Clock {
  #subscribe = createSubscriber((update) => {
    const timer = setInterval(update, TICK_MS);
    return () => clearInterval(timer);
  });

  get now(): number {
    this.#subscribe();
    return Date.now();
  }
}

export const clock = new Clock();
