import { EnvelopArmor } from '@escape.tech/graphql-armor';
import { type ExecutionResult, NoSchemaIntrospectionCustomRule } from 'graphql';
import { handleStreamOrSingleExecutionResult, type Plugin } from 'graphql-yoga';
import type { SecurityConfig } from './config.ts';

/**
 * Limits checked on the parsed document before anything executes (graphql-armor): depth, aliases,
 * tokens, directives and cost. Tuned so every console and SDK operation passes (limits.test.ts).
 * In production the schema is not introspectable and no error suggests names (hideSuggestions).
 */
export function graphqlLimitPlugins(config: SecurityConfig, production: boolean): Plugin[] {
  const armor = new EnvelopArmor({
    // 0 turns a limit off.
    maxDepth: { enabled: config.maxDepth > 0, n: config.maxDepth, ignoreIntrospection: true, flattenFragments: true },
    maxAliases: { enabled: config.maxAliases > 0, n: config.maxAliases },
    maxTokens: { enabled: config.maxTokens > 0, n: config.maxTokens },
    maxDirectives: { enabled: config.maxDirectives > 0, n: config.maxDirectives },
    costLimit: { enabled: config.maxCost > 0, maxCost: config.maxCost, objectCost: 2, scalarCost: 1, depthCostFactor: 1.5, ignoreIntrospection: true },
    // Its masking knows one wording only (hideSuggestions below knows them all).
    blockFieldSuggestion: { enabled: false },
  });
  const plugins: Plugin[] = armor.protect().plugins as Plugin[];
  if (production) {
    plugins.push(
      {
        onValidate({ addValidationRule }) {
          addValidationRule(NoSchemaIntrospectionCustomRule);
        },
      },
      hideSuggestions(),
    );
  }
  return plugins;
}

/**
 * graphql-js's hints in every wording: `Did you mean "name"?`, `Did you mean "a", "b", or "c"?`,
 * `Did you mean the enum value "ACTIVE"?`, `Did you mean to use an inline fragment on "X"?`. Suggested
 * names never hold a "?" (GraphQL names are letters, digits and underscores).
 */
const SUGGESTION = / ?Did you mean [^?]*\?/g;

function stripSuggestions(errors: readonly Error[] | undefined): void {
  for (const error of errors ?? []) {
    if (error.message.includes('Did you mean')) error.message = error.message.replace(SUGGESTION, '');
  }
}

/**
 * Removes name suggestions from every error message, leaving the rest of it: validation errors, and
 * execution and subscription results, where variable coercion errors land (an unknown enum value or
 * input field in the variables). Hooked on envelop's phases, it covers HTTP (POST, GET, SSE) and
 * graphql-ws alike, and the operations graphql-jit runs (its refused variables go again to graphql-js,
 * whose errors end here too).
 */
export function hideSuggestions(): Plugin {
  const onResult = ({ result }: { result: ExecutionResult }) => stripSuggestions(result.errors);
  return {
    onValidate: () => ({ valid, result }) => {
      if (!valid) stripSuggestions(result);
    },
    onExecute: () => ({
      onExecuteDone: (payload) => handleStreamOrSingleExecutionResult(payload, onResult),
    }),
    onSubscribe: () => ({
      onSubscribeResult: (payload) => handleStreamOrSingleExecutionResult(payload, onResult),
    }),
  };
}
