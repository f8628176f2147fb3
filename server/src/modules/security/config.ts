import { envInt } from '../common/env.ts';

/** Security settings, read from the environment by loadConfig() (README.md, "Configuration"). */
export interface SecurityConfig {
  /** Client operations (activate, heartbeat, validateLicense, ...) per license key, per minute. */
  keyPerMinute: number;
  /** Client operations per client IP, per minute. */
  ipPerMinute: number;
  /** Client operations answered LICENSE_NOT_FOUND (key probing) per client IP, per minute. */
  ipUnknownKeysPerMinute: number;
  /** Requests per admin credential (API token or console session), per minute. */
  adminPerMinute: number;
  /** Failed sign-ins per account (tenant + email) in 15 minutes. */
  signInAccountFailures: number;
  /** Failed sign-ins per client IP in 15 minutes. */
  signInIpFailures: number;
  /** Reverse proxies in front of the server whose X-Forwarded-For is trusted (0: use the socket address). */
  trustProxy: number;
  /** Origins allowed to call the API from a browser with cookies; others may call with bearer tokens only. */
  corsOrigins: string[];
  /** GraphQL document limits (applied before execution). */
  maxDepth: number;
  maxAliases: number;
  maxTokens: number;
  maxDirectives: number;
  maxCost: number;
  logLevel: string;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** TESSERA_CORS_ORIGINS: each entry as a browser sends it in `Origin` (scheme://host[:port], lower case). */
function corsOrigins(raw: string | undefined): string[] {
  return (raw ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((entry) => {
      let url: URL | undefined;
      try {
        url = new URL(entry);
      } catch {
        url = undefined;
      }
      // An entry with a path (a trailing slash too) or no scheme would never equal a browser's Origin.
      if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.origin.toLowerCase() !== entry.toLowerCase()) {
        throw new Error(`TESSERA_CORS_ORIGINS must list origins like https://console.example.com (scheme, host and port only), got "${entry}"`);
      }
      return url.origin;
    });
}

function logLevel(env: NodeJS.ProcessEnv): string {
  const level = env.LOG_LEVEL?.trim();
  if (!level) return env.NODE_ENV === 'test' ? 'silent' : 'info';
  if (!LOG_LEVELS.includes(level)) throw new Error(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got "${env.LOG_LEVEL}"`);
  return level;
}

export function loadSecurityConfig(env: NodeJS.ProcessEnv): SecurityConfig {
  return {
    // Generous for legitimate traffic (a site license's many devices behind one NAT, `pnpm bench`);
    // key probing is held by the much lower unknown-key limit.
    keyPerMinute: envInt(env, 'TESSERA_RATE_LIMIT_KEY_PER_MINUTE', 300_000),
    ipPerMinute: envInt(env, 'TESSERA_RATE_LIMIT_IP_PER_MINUTE', 600_000),
    ipUnknownKeysPerMinute: envInt(env, 'TESSERA_RATE_LIMIT_UNKNOWN_KEYS_PER_MINUTE', 60),
    adminPerMinute: envInt(env, 'TESSERA_RATE_LIMIT_ADMIN_PER_MINUTE', 6_000),
    signInAccountFailures: envInt(env, 'TESSERA_RATE_LIMIT_SIGNIN_ACCOUNT', 10),
    signInIpFailures: envInt(env, 'TESSERA_RATE_LIMIT_SIGNIN_IP', 100),
    trustProxy: envInt(env, 'TESSERA_TRUST_PROXY', 0),
    corsOrigins: corsOrigins(env.TESSERA_CORS_ORIGINS),
    maxDepth: envInt(env, 'TESSERA_GRAPHQL_MAX_DEPTH', 12),
    maxAliases: envInt(env, 'TESSERA_GRAPHQL_MAX_ALIASES', 15),
    maxTokens: envInt(env, 'TESSERA_GRAPHQL_MAX_TOKENS', 2000),
    maxDirectives: envInt(env, 'TESSERA_GRAPHQL_MAX_DIRECTIVES', 10),
    maxCost: envInt(env, 'TESSERA_GRAPHQL_MAX_COST', 5000),
    logLevel: logLevel(env),
  };
}
