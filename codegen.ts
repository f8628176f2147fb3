import type { CodegenConfig } from '@graphql-codegen/cli';

// Types for every client of the API, generated from the printed schema (`pnpm generate`).
const config: CodegenConfig = {
  schema: 'schema/schema.graphql',
  generates: {
    'sdk/src/generated/schema.ts': {
      plugins: ['typescript'],
      config: { enumsAsTypes: true, scalars: { DateTime: 'string', JSON: 'unknown' }, avoidOptionals: false },
    },
  },
  hooks: {},
};

export default config;
