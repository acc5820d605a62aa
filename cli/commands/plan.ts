/** `bucardo plan`: what apply would change, from the live catalogs. */
import type { Command } from 'commander';
import { topologyPath, action, useColor, printStderr, EXIT } from '../common.js';
import { fileOption, noColorOption, formatOption } from '../flags.js';
import { loadTopologyAndModules } from '../../engine/topology/load.js';
import { readCatalogsAndPlan } from '../../engine/applier/index.js';
import { renderText, renderJson, renderMarkdown, renderErrors, type RenderContext } from '../../engine/planner/render.js';
import { writePlanFile } from '../planfile.js';
import { describeDatabase } from '../../engine/connect.js';
import type { Topology } from '../../engine/topology/types.js';

export interface PlanOptions {
  file?: string;
  out?: string;
  format: 'text' | 'json' | 'markdown';
  detailedExitcode?: boolean;
  color: boolean;
}

export function renderContext(topology: Topology, file: string, color: boolean): RenderContext {
  return {
    file,
    color,
    describe: (db) => {
      const d = topology.databases.get(db);
      return d ? describeDatabase(d) : db;
    },
  };
}

export function register(program: Command): void {
  fileOption(program.command('plan'))
    .description("show what apply would change, computed from the databases' live catalogs")
    .option('-o, --out <planfile>', 'save the plan, with a fingerprint of the state it was computed from, for `apply PLANFILE`')
    .addOption(formatOption(['text', 'json', 'markdown'], 'text, json or markdown'))
    .option('--detailed-exitcode', 'exit 0 when there are no changes, 2 when there are (1 on error)')
    .addOption(noColorOption())
    .action(
      action(async (opts: PlanOptions) => {
        const file = topologyPath(opts);
        const topology = await loadTopologyAndModules(file);
        const plan = await readCatalogsAndPlan(topology);
        const ctx = renderContext(topology, file, useColor(process.stdout, !opts.color));
        if (opts.format === 'json') process.stdout.write(renderJson(plan));
        else if (opts.format === 'markdown') process.stdout.write(renderMarkdown(plan, ctx));
        else process.stdout.write(renderText(plan, ctx));
        if (plan.errors.length) {
          if (opts.format === 'text') printStderr(renderErrors(plan));
          printStderr(`${plan.errors.length} problem${plan.errors.length === 1 ? '' : 's'} block apply.\n`);
          return EXIT.error;
        }
        if (opts.out) {
          writePlanFile(opts.out, file, topology, plan);
          printStderr(`Saved the plan to ${opts.out}; apply it with: bucardo apply -f ${file} ${opts.out}\n`);
        }
        if (opts.detailedExitcode && plan.changes.length) return EXIT.changes;
        return EXIT.ok;
      }),
    );
}
