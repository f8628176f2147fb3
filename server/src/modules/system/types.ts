import { builder } from '../../builder.ts';

builder.mutationField('noop', (t) =>
  t.boolean({
    description: 'Does nothing and returns true: the baseline that benchmarks compare operations with.',
    resolve: () => true,
  }),
);
