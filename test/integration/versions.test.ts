/**
 * Issue 13, across PostgreSQL majors: the cross-version scenarios (test/helpers/matrix.ts)
 * on one mixed pair, oldest (15) to newest (18). `npm run test:matrix` runs them on every
 * pair and writes docs/compatibility.md.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useClusters } from '../helpers/env.js';
import { SCENARIOS, makeScenarioDbs, serverMajor } from '../helpers/matrix.js';

const env = useClusters(['old', 'new'], { majors: { old: 15, new: 18 } });

test('the clusters run the majors asked for', async () => {
  assert.deepEqual(await Promise.all(env.group().clusters.map(serverMajor)), [15, 18]);
});

for (const s of SCENARIOS.filter((x) => x.fits([15, 18]))) {
  test(`15 -> 18: ${s.name}: ${s.about}`, () => s.run((count, ddl) => makeScenarioDbs(env.group().clusters, s.name.replace(/-/g, '_'), count, ddl)));
}
