import { builder } from '../../builder.ts';
import { tenantWhere } from '../common/tenancy.ts';

builder.prismaObject('AuditEvent', {
  fields: (t) => ({
    id: t.id({ resolve: (e) => e.id.toString() }),
    type: t.exposeString('type'),
    actorType: t.exposeString('actorType'),
    actorId: t.exposeString('actorId', { nullable: true }),
    subjectType: t.exposeString('subjectType'),
    subjectId: t.exposeString('subjectId'),
    licenseId: t.exposeString('licenseId', { nullable: true }),
    customerId: t.exposeString('customerId', { nullable: true }),
    payload: t.expose('payload', { type: 'JSON' }),
    requestId: t.exposeString('requestId', { nullable: true }),
    occurredAt: t.expose('occurredAt', { type: 'DateTime' }),
  }),
});

builder.queryFields((t) => ({
  auditEvents: t.prismaConnection({
    type: 'AuditEvent',
    cursor: 'id',
    authScopes: { role: 'SUPPORT' },
    args: {
      type: t.arg.string({ description: 'Exact event type, e.g. "license.created".' }),
      licenseId: t.arg.id(),
    },
    resolve: (query, _r, args, ctx) =>
      ctx.prisma.auditEvent.findMany({
        ...query,
        where: {
          ...tenantWhere(ctx.actor),
          ...(args.type ? { type: args.type } : {}),
          ...(args.licenseId ? { licenseId: String(args.licenseId) } : {}),
        },
        orderBy: { id: 'desc' },
      }),
  }),
}));
