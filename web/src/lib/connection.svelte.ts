/**
 * The state of the live-feed socket, as the console shows it. `reconnecting` covers the pauses between
 * attempts too: the socket keeps trying (capped backoff) for as long as the page is open.
 */
export type LinkState = 'idle' | 'connecting' | 'live' | 'reconnecting' | 'refused';

export class Connection {
  state = $state<LinkState>('idle');
  /** When the socket was last lost (ms since epoch), while it is down. */
  downSince = $state<number | null>(null);
  #reconnected = new Set<() => void>();

  /** Called each time the socket is back after a loss; feeds resubscribe from their last event. */
  onReconnect(listener: () => void): () => void {
    this.#reconnected.add(listener);
    return () => this.#reconnected.delete(listener);
  }

  connecting(retry: boolean) {
    this.state = retry ? 'reconnecting' : 'connecting';
  }

  connected(retry: boolean) {
    this.state = 'live';
    this.downSince = null;
    if (retry) for (const listener of [...this.#reconnected]) listener();
  }

  /** 1000: the lazy socket closed with its last subscription; 4403: the session or token was refused. */
  closed(code: number | null) {
    if (code === 1000) this.state = 'idle';
    else if (code === 4403) this.state = 'refused';
    else {
      this.state = 'reconnecting';
      this.downSince ??= Date.now();
    }
  }
}

export const connection = new Connection();
