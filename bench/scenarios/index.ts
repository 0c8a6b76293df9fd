/** Every scenario, in the order `npm run bench` runs them. */
import type { Scenario } from '../harness.js';
import { churn } from './churn.js';
import { decoders } from './decoder.js';
import { fastify } from './fastify.js';
import { large } from './large.js';
import { pipeline } from './pipeline.js';
import { pool50 } from './pool50.js';
import { seq } from './seq.js';
import { shared50 } from './shared50.js';

export const SCENARIOS: Scenario[] = [seq, pipeline, pool50, shared50, large, fastify, churn, ...decoders];

/** The scenarios named in `names` (comma-separated; a prefix such as `decode` selects several), or all. */
export function selectScenarios(names: string | undefined): Scenario[] {
  if (names === undefined || names === '') return SCENARIOS;
  const wanted = names.split(',').map((name) => name.trim());
  const chosen = SCENARIOS.filter((s) => wanted.some((name) => s.name === name || s.name.startsWith(`${name} `)));
  if (chosen.length === 0) throw new Error(`bench: no scenario matches ${JSON.stringify(names)}; have ${SCENARIOS.map((s) => s.name).join(', ')}`);
  return chosen;
}
