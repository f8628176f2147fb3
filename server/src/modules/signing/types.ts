import { builder } from '../../builder.ts';
import { tenantWhere } from '../common/tenancy.ts';
import { ADMIN_ERRORS } from '../common/types.ts';
import { signerFor } from './service.ts';

builder.prismaObject('SigningKey', {
  fields: (t) => ({
    id: t.exposeID('id'),
    kid: t.exposeString('kid'),
    algorithm: t.exposeString('algorithm'),
    publicJwk: t.expose('publicJwk', { type: 'JSON' }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    retiredAt: t.expose('retiredAt', {
      type: 'DateTime',
      nullable: true,
      description: 'When a newer key took over signing; a retired key stays published so old tokens keep verifying.',
    }),
  }),
});

builder.queryFields((t) => ({
  signingKeys: t.prismaField({
    type: ['SigningKey'],
    description: "The tenant's signing keys, newest first (public halves only), as published at /.well-known/jwks.json?tenant=<slug>.",
    authScopes: { role: 'READ_ONLY' },
    resolve: (query, _r, _a, ctx) =>
      ctx.prisma.signingKey.findMany({ ...query, where: tenantWhere(ctx.actor), orderBy: { createdAt: 'desc' } }),
  }),
}));

builder.mutationFields((t) => ({
  rotateSigningKey: t.prismaField({
    type: 'SigningKey',
    description: 'Signs with a new key from now on; tokens signed with earlier keys keep verifying against the JWKS.',
    authScopes: { role: 'OWNER' },
    errors: { types: ADMIN_ERRORS },
    resolve: async (query, _r, _a, ctx) => {
      const key = await signerFor(ctx.app).rotate(ctx, tenantWhere(ctx.actor).tenantId);
      return ctx.prisma.signingKey.findUniqueOrThrow({ ...query, where: { id: key.id } });
    },
  }),
}));
