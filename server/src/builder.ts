import SchemaBuilder from '@pothos/core';
import DataloaderPlugin from '@pothos/plugin-dataloader';
import ErrorsPlugin from '@pothos/plugin-errors';
import PrismaPlugin from '@pothos/plugin-prisma';
import RelayPlugin from '@pothos/plugin-relay';
import ScopeAuthPlugin from '@pothos/plugin-scope-auth';
import type { Role } from '@tessera/db/client';
import PrismaTypes, { getDatamodel } from '@tessera/db/pothos-types';
import type { PrismaClient } from '@tessera/db/database';
import { GraphQLError, GraphQLScalarType } from 'graphql';
import { DateTimeResolver, JSONResolver } from 'graphql-scalars';
import type { Context } from './context.ts';
import { assertNodeType, decodeNodeId } from './modules/common/ids.ts';
import { hasRole } from './modules/tenants/roles.ts';

const capitalize = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

export const builder = new SchemaBuilder<{
  Context: Context;
  PrismaTypes: PrismaTypes;
  Scalars: {
    DateTime: { Input: Date; Output: Date | string };
    JSON: { Input: unknown; Output: unknown };
  };
  AuthScopes: {
    /** A user session, an API token or the operator CLI of some tenant. */
    member: boolean;
    /** A member signed in to the console (a session): not an API token or the operator. */
    session: boolean;
    /** The caller's role is at least this one. */
    role: Role;
  };
  DefaultFieldNullability: false;
  DefaultEdgesNullability: false;
  DefaultNodeNullability: false;
}>({
  // Errors first, so domain failures become union members; auth failures stay GraphQL errors
  // with extensions.code (CONTRACT.md).
  plugins: [ErrorsPlugin, ScopeAuthPlugin, PrismaPlugin, RelayPlugin, DataloaderPlugin],
  defaultFieldNullability: false,
  errors: {
    directResult: true,
    defaultUnionOptions: { name: ({ fieldName }) => `${capitalize(fieldName)}Result` },
  },
  scopeAuth: {
    // Subscriptions check scopes when they start, not only per delivered event.
    authorizeOnSubscribe: true,
    authScopes: (ctx) => ({
      member: ctx.actor.kind !== 'anonymous',
      session: ctx.actor.kind === 'user',
      role: (required: Role) => hasRole(ctx.actor, required),
    }),
    unauthorizedError: (_parent, ctx) =>
      ctx.actor.kind === 'anonymous'
        ? new GraphQLError('Authentication required', { extensions: { code: 'UNAUTHENTICATED' } })
        : new GraphQLError('Your role does not allow this operation', { extensions: { code: 'FORBIDDEN' } }),
  },
  prisma: {
    client: (ctx) => ctx.prisma as PrismaClient,
    dmmf: getDatamodel(),
    exposeDescriptions: false,
    filterConnectionTotalCount: true,
    onUnusedQuery: process.env.NODE_ENV === 'production' ? null : 'error',
  },
  relay: {
    clientMutationId: 'omit',
    cursorType: 'String',
    edgesFieldOptions: { nullable: false },
    nodeFieldOptions: { nullable: false },
    // A malformed id, or one whose type is no Node, is BAD_USER_INPUT in node and nodes, as a malformed uuid in
    // it is (nodeWhere) and as any other id argument is; a well-formed id that names nothing visible is null.
    decodeGlobalID: decodeNodeId,
    nodeQueryOptions: {
      resolve: (_root, { id }, _ctx, info, resolveNode) => {
        assertNodeType(id.typename, info.schema);
        return resolveNode(id);
      },
    },
    nodesQueryOptions: {
      resolve: (_root, { ids }, _ctx, info, resolveNodes) => {
        for (const id of ids) assertNodeType(id.typename, info.schema);
        return resolveNodes(ids);
      },
    },
  },
});

/**
 * graphql-scalars' DateTime (same parsing, validation and schema), but serialised to its ISO string
 * during execution: its own serialize returns the Date, and the Date.toJSON calls that then run inside
 * the response's JSON.stringify cost more than serialising the rest of a heartbeat's answer.
 */
const DateTime = new GraphQLScalarType({
  ...DateTimeResolver.toConfig(),
  serialize: (value) => (DateTimeResolver.serialize(value) as Date).toISOString(),
});

builder.addScalarType('DateTime', DateTime);
builder.addScalarType('JSON', JSONResolver);
builder.queryType({});
builder.mutationType({});
builder.subscriptionType({});
