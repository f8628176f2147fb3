import type { Database, PrismaClient } from '@tessera/db/database';
import type { Role } from '@tessera/db/client';
import type { Logger } from 'pino';
import type { Config } from './config.ts';
import type { EventBus } from './modules/audit/bus.ts';

/** Who is calling. Client (SDK) operations authenticate by license key inside their input instead. */
export type Actor =
  | { kind: 'anonymous' }
  | { kind: 'user'; tenantId: string; userId: string; sessionId: string; role: Role }
  | { kind: 'token'; tenantId: string; tokenId: string; role: Role }
  | { kind: 'operator'; tenantId: string };

/** Process-wide dependencies, built once by buildApp(). */
export interface AppDeps {
  config: Config;
  db: Database;
  prisma: PrismaClient;
  bus: EventBus;
  /** The server's structured log (security/log.ts); the CLI, which runs no background work, has none. */
  logger?: Logger;
}

interface BaseContext {
  app: AppDeps;
  prisma: PrismaClient;
  actor: Actor;
  requestId: string;
}

export interface HttpContext extends BaseContext {
  transport: 'http';
  request: Request;
  /** Set-Cookie values to add to the response. */
  cookies: string[];
}

export interface WsContext extends BaseContext {
  transport: 'ws';
  /** The address the socket's upgrade request came from (X-Forwarded-For as far as proxies are trusted). */
  clientIp: string | null;
}

export type Context = HttpContext | WsContext;
