import type { CodegenConfig } from '@graphql-codegen/cli';

// Types for every client of the API, generated from the printed schema (`pnpm generate`).
const config: CodegenConfig = {
  schema: 'schema/schema.graphql',
  generates: {
    'sdk/src/generated/schema.ts': {
      plugins: ['typescript'],
      config: { enumsAsTypes: true, scalars: { DateTime: 'string', JSON: 'unknown' }, avoidOptionals: false },
    },
    // The admin console's operations live in .graphql files; each becomes a TypedDocumentNode.
    'web/src/lib/graphql/generated/graphql.ts': {
      documents: 'web/src/lib/graphql/operations/**/*.graphql',
      plugins: ['typescript-operations', 'typed-document-node'],
      config: {
        enumsAsTypes: true,
        scalars: { DateTime: 'string', JSON: 'unknown' },
        avoidOptionals: false,
        useTypeImports: true,
        onlyOperationTypes: true,
        nonOptionalTypename: true,
      },
    },
  },
  hooks: {},
};

export default config;
