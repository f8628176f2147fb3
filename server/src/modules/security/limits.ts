import { EnvelopArmor } from '@escape.tech/graphql-armor';
import { NoSchemaIntrospectionCustomRule } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { SecurityConfig } from './config.ts';

/**
 * Limits checked on the parsed document before anything executes (graphql-armor): depth, aliases,
 * tokens, directives and cost. Tuned so every console and SDK operation passes (limits.test.ts).
 * In production the schema is not introspectable and unknown fields get no "Did you mean" hints.
 */
export function graphqlLimitPlugins(config: SecurityConfig, production: boolean): Plugin[] {
  const armor = new EnvelopArmor({
    // 0 turns a limit off.
    maxDepth: { enabled: config.maxDepth > 0, n: config.maxDepth, ignoreIntrospection: true, flattenFragments: true },
    maxAliases: { enabled: config.maxAliases > 0, n: config.maxAliases },
    maxTokens: { enabled: config.maxTokens > 0, n: config.maxTokens },
    maxDirectives: { enabled: config.maxDirectives > 0, n: config.maxDirectives },
    costLimit: { enabled: config.maxCost > 0, maxCost: config.maxCost, objectCost: 2, scalarCost: 1, depthCostFactor: 1.5, ignoreIntrospection: true },
    blockFieldSuggestion: { enabled: production },
  });
  const plugins: Plugin[] = armor.protect().plugins as Plugin[];
  if (production) {
    plugins.push({
      onValidate({ addValidationRule }) {
        addValidationRule(NoSchemaIntrospectionCustomRule);
      },
    });
  }
  return plugins;
}
