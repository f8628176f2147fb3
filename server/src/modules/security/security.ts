import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import type { Plugin } from 'graphql-yoga';
import type { AppDeps } from '../../context.ts';
import { loggingMaskError } from './availability.ts';
import { requestBodyLimit } from './body-limit.ts';
import { corsOptions, csrfPlugin } from './csrf.ts';
import { graphqlLimitPlugins } from './limits.ts';
import { createLogger, requestLogPlugin } from './log.ts';
import { createRateLimits, rateLimitPlugin } from './ratelimit.ts';

/** Everything buildApp() wires into yoga for issue 9's hardening, in one place. */
export function createSecurity(deps: AppDeps, options: { busPrefix?: string; logger?: Logger } = {}) {
  const { config } = deps;
  const logger = options.logger ?? createLogger(config.security.logLevel);
  const limits = createRateLimits(config.security, config.redisUrl, options.busPrefix ?? 'tessera');
  const plugins: Plugin<{ req?: IncomingMessage }>[] = [
    requestLogPlugin(logger),
    requestBodyLimit(),
    csrfPlugin(),
    ...graphqlLimitPlugins(config.security, config.production),
    rateLimitPlugin(deps, limits),
  ];
  return {
    logger,
    plugins,
    yogaOptions: {
      maskedErrors: { maskError: loggingMaskError(logger) },
      cors: corsOptions(config.security.corsOrigins),
      batching: false,
      // requestBodyLimit() above enforces the limit without streaming bodies that declare their length.
      maxRequestBodySize: false as const,
      // Yoga's own messages go to the structured log (the originals of masked errors: loggingMaskError).
      logging: {
        debug: (...args: unknown[]) => logger.debug({ detail: args.slice(1) }, String(args[0])),
        info: (...args: unknown[]) => logger.info({ detail: args.slice(1) }, String(args[0])),
        warn: (...args: unknown[]) => logger.warn({ detail: args.slice(1) }, String(args[0])),
        error: (...args: unknown[]) => logger.error({ err: args.find((a) => a instanceof Error) }, String(args[0] instanceof Error ? args[0].message : args[0])),
      },
    },
    close: () => limits.close(),
  };
}
