import { envInt, MAX_TIMER_MS } from '../common/env.ts';

/** Webhook delivery settings, read from the environment by loadConfig() (README.md, "Configuration"). */
export interface WebhookConfig {
  /** Delay before the first retry; each later one waits 3x longer (with +-20% jitter). */
  retryBaseMs: number;
  /** Attempts per delivery, the first included; after the last failed one the delivery is FAILED. */
  maxAttempts: number;
  /** Time allowed for one attempt (connect, send, response headers and the start of the body). */
  timeoutMs: number;
  /** Deliveries over (succeeded or finally failed) for longer than this are deleted with their attempts; 0 keeps them. */
  retentionDays: number;
  /**
   * An endpoint is disabled when this many of its deliveries in a row ended FAILED (after their last
   * attempt) with no success between; 0 never disables one.
   */
  disableAfterFailures: number;
}

export function loadWebhookConfig(env: NodeJS.ProcessEnv): WebhookConfig {
  return {
    // 10 s, 30 s, 90 s, ... : the 10th attempt comes about 27 hours after the first.
    retryBaseMs: envInt(env, 'TESSERA_WEBHOOK_RETRY_BASE_MS', 10_000, 1),
    maxAttempts: envInt(env, 'TESSERA_WEBHOOK_MAX_ATTEMPTS', 10, 1),
    timeoutMs: envInt(env, 'TESSERA_WEBHOOK_TIMEOUT_MS', 10_000, 100, MAX_TIMER_MS),
    retentionDays: envInt(env, 'TESSERA_WEBHOOK_RETENTION_DAYS', 30, 0, 36_500),
    // Each FAILED delivery already means a day of retries (with the defaults): ten in a row, and no
    // delivery getting through meanwhile, is a receiver that is gone, not one having a bad hour.
    disableAfterFailures: envInt(env, 'TESSERA_WEBHOOK_DISABLE_AFTER_FAILURES', 10, 0, 1_000_000),
  };
}
