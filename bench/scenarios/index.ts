/** Every scenario, in the order `npm run bench` runs them. */
import type { Scenario } from '../harness.js';
import { churn } from './churn.js';
import { clusterScenario } from './cluster.js';
import { decoders } from './decoder.js';
import { fastifyScenarios } from './fastify.js';
import { large } from './large.js';
import { pipeline } from './pipeline.js';
import { pool50 } from './pool50.js';
import { seq } from './seq.js';
import { shared50 } from './shared50.js';

export const SCENARIOS: Scenario[] = [seq, pipeline, pool50, shared50, large, ...fastifyScenarios, churn, clusterScenario, ...decoders];

/** Whether `name` selects `scenario`: its exact name, or else a prefix up to a space or dash (`decode`, `fastify`). */
function selects(name: string, scenario: Scenario): boolean {
  if (SCENARIOS.some((s) => s.name === name)) return scenario.name === name;
  return scenario.name.startsWith(`${name} `) || scenario.name.startsWith(`${name}-`);
}

/**
 * The scenarios named in `names` (comma-separated), or all. A prefix such as
 * `decode` or `fastify` selects several; an exact name only that one
 * (`fastify-get` is not also `fastify-get-incr-expire`).
 */
export function selectScenarios(names: string | undefined): Scenario[] {
  if (names === undefined || names === '') return SCENARIOS;
  const wanted = names.split(',').map((name) => name.trim());
  const chosen = SCENARIOS.filter((s) => wanted.some((name) => selects(name, s)));
  if (chosen.length === 0) throw new Error(`bench: no scenario matches ${JSON.stringify(names)}; have ${SCENARIOS.map((s) => s.name).join(', ')}`);
  return chosen;
}
