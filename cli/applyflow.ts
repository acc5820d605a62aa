/**
 * The shared flow of apply and destroy: show the plan, ask (on a terminal only), then
 * carry it out as a listr2 task list: a task per database, a subtask per change, then the
 * commits. On a terminal the list redraws in place; in a log (no TTY: listr2's simple
 * renderer) each task is one line, written when it has finished.
 */
import readline from 'node:readline/promises';
import {
  Listr,
  ListrLogger,
  ListrLogLevels,
  LISTR_LOGGER_STDERR_LEVELS,
  type ListrTaskWrapper,
  type DefaultRenderer,
  type SimpleRenderer,
  type LoggerFieldOptions,
} from 'listr2';
import type { Topology } from '../engine/topology/types.js';
import type { Change } from '../engine/planner/types.js';
import { summarize } from '../engine/planner/types.js';
import { readCatalogsAndPlan, openApply, type ApplySession } from '../engine/applier/index.js';
import { renderText, renderErrors, MARK } from '../engine/planner/render.js';
import { BucardoError } from '../engine/errors.js';
import { useColor, printStderr, EXIT } from './common.js';
import { renderContext } from './commands/plan.js';
import { readPlanFile, fileSha, planFileMatches, moduleShas } from './planfile.js';

/**
 * The simple renderer's logger without its STARTED lines: a start line and an end line for
 * every object doubled the log of an apply and told nothing the end line does not (the
 * changes run one at a time, and a failure is logged as FAILED with the object).
 */
class FinishedTaskLogger extends ListrLogger<ListrLogLevels> {
  override log(level: ListrLogLevels, message: string, options?: LoggerFieldOptions): void {
    if (level !== ListrLogLevels.STARTED) super.log(level, message, options);
  }
}

async function confirm(question: string): Promise<boolean> {
  const rl = readline.createInterface({ input: process.stdin, output: process.stdout });
  try {
    const answer = await rl.question(question);
    return answer.trim() === 'yes';
  } finally {
    rl.close();
  }
}

export interface FlowOptions {
  destroy: boolean;
  autoApprove: boolean;
  planFile?: string;
  /** --no-color */
  noColor?: boolean;
}

export async function applyFlow(topology: Topology, file: string, opts: FlowOptions): Promise<number> {
  const verb = opts.destroy ? 'destroy' : 'apply';
  let session: ApplySession;
  if (opts.planFile) {
    session = await openFromPlanFile(topology, file, opts.planFile);
  } else {
    const opened = await openAfterApproval(topology, file, opts, verb);
    if (typeof opened === 'number') return opened;
    session = opened;
  }

  if (!session.changes.length) {
    await session.rollbackAll();
    await session.close();
    process.stdout.write('No changes (the databases already match).\n');
    return EXIT.ok;
  }
  const tasks = makeTaskList(session);
  try {
    await tasks.run();
  } catch (e) {
    await session.rollbackAll();
    await session.close();
    if (e instanceof BucardoError) throw new BucardoError(e.code, `${e.message}; every database was rolled back, nothing was changed`, { hint: e.hint });
    throw e;
  }
  await session.close();
  const s = summarize(session.changes);
  process.stdout.write(`${verb === 'destroy' ? 'Destroy' : 'Apply'} complete: ${s.add} added, ${s.change} changed, ${s.destroy} destroyed.\n`);
  return EXIT.ok;
}

/** apply PLANFILE: only when the topology file, its modules and every database are still what the plan was made from. */
async function openFromPlanFile(topology: Topology, file: string, planFile: string): Promise<ApplySession> {
  const pf = readPlanFile(planFile);
  if (pf.topology !== topology.name || pf.topology_sha256 !== fileSha(file)) {
    throw new BucardoError('stale_plan', `the plan file ${planFile} was made from another version of ${file}; nothing was changed`, {
      hint: 'run bucardo plan -o again',
    });
  }
  const now = moduleShas(topology);
  const changed = [...new Set([...Object.keys(pf.modules_sha256 ?? {}), ...Object.keys(now)])].filter((m) => pf.modules_sha256?.[m] !== now[m]);
  if (changed.length) {
    throw new BucardoError('stale_plan', `the plan file ${planFile} was made before module ${changed.join(', ')} changed; nothing was changed`, {
      hint: 'run bucardo plan -o again',
    });
  }
  const session = await openApply(topology, { expectedFingerprints: pf.fingerprints, file });
  if (!planFileMatches(pf, session.changes)) {
    await session.rollbackAll();
    await session.close();
    throw new BucardoError('stale_plan', `the plan file ${planFile} no longer matches what apply would do; nothing was changed`, {
      hint: 'run bucardo plan -o again',
    });
  }
  return session;
}

/**
 * apply/destroy without a plan file: show the plan, ask on a terminal (unless
 * --auto-approve), then open the session. A number: the exit code, when there is nothing
 * to do, the plan has errors, or the answer was not yes.
 */
async function openAfterApproval(topology: Topology, file: string, opts: FlowOptions, verb: 'apply' | 'destroy'): Promise<ApplySession | number> {
  const plan = await readCatalogsAndPlan(topology, { destroy: opts.destroy });
  const ctx = renderContext(topology, file, useColor(process.stdout, opts.noColor));
  process.stdout.write(renderText(plan, ctx));
  if (plan.errors.length) {
    printStderr(renderErrors(plan));
    printStderr(`${plan.errors.length} problem${plan.errors.length === 1 ? '' : 's'} block ${verb}; nothing was changed.\n`);
    return EXIT.error;
  }
  if (!plan.changes.length) return EXIT.ok;
  if (!opts.autoApprove) {
    if (!process.stdin.isTTY) {
      throw new BucardoError('needs_approval', `${verb} needs approval and there is no terminal to ask on; nothing was changed`, {
        hint: `review the plan above, then run bucardo ${verb} --auto-approve (or save it with plan -o and apply the file)`,
      });
    }
    const ok = await confirm(`\nDo you want to ${verb === 'destroy' ? 'remove these objects' : 'perform these actions'}? Only 'yes' will be accepted: `);
    if (!ok) {
      printStderr(`${verb} cancelled; nothing was changed.\n`);
      return EXIT.error;
    }
  }
  const session = await openApply(topology, { destroy: opts.destroy, shown: plan, autoApprove: opts.autoApprove, file });
  if (session.replanned) printStderr('note: the databases changed since the plan above was computed; applying the current plan.\n');
  return session;
}

/** The session's work as listr2 tasks: a task per database, a subtask per change, then the commits. */
function makeTaskList(session: ApplySession): Listr<unknown> {
  const byDb = new Map<string, Change[]>();
  for (const c of session.changes) byDb.set(c.database, [...(byDb.get(c.database) ?? []), c]);
  return new Listr<unknown>(
    [
      ...[...byDb].map(([db, changes]) => ({
        title: `database ${db}: ${changes.length} change${changes.length === 1 ? '' : 's'} (one transaction)`,
        task: (_ctx: unknown, task: ListrTaskWrapper<unknown, typeof DefaultRenderer, typeof SimpleRenderer>) =>
          task.newListr(
            changes.map((ch) => ({ title: `${MARK[ch.action]} ${ch.object}`, task: () => session.execute(ch) })),
            { concurrent: false, exitOnError: true },
          ),
      })),
      {
        title: 'commit',
        task: async () => {
          for (const db of session.databases) await session.commit(db);
        },
      },
    ],
    {
      concurrent: false,
      exitOnError: true,
      renderer: 'default',
      fallbackRenderer: 'simple',
      rendererOptions: { collapseSubtasks: false },
      fallbackRendererOptions: { logger: new FinishedTaskLogger({ useIcons: true, toStderr: LISTR_LOGGER_STDERR_LEVELS }) },
    },
  );
}
