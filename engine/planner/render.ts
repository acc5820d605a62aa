/**
 * A plan as text (terminal, CI logs), JSON (machines; SPEC's format_version 1) and
 * Markdown (pull-request comments). Returns strings; the CLI prints them.
 */
import type { Plan, Change, PlanProblem } from './types.js';
import { summarize, approxRows } from './types.js';

/** The marker of each action in every rendering (and in apply's task list). */
export const MARK: Record<Change['action'], string> = { create: '+', update: '~', replace: '-/+', destroy: '-' };
const COLOR: Record<Change['action'], string> = { create: '32', update: '33', replace: '35', destroy: '31' };

export interface RenderContext {
  /** Topology file as the user gave it. */
  file: string;
  /** Redacted description per database (user@host:port/db). */
  describe: (database: string) => string;
  color: boolean;
}

export function summaryLine(plan: Plan): string {
  // with a blocking problem (an unreachable database, ...) "No changes." would be a claim
  // about databases that were never read
  if (plan.errors.length) {
    const n = plan.errors.length;
    return `No plan: ${n} problem${n === 1 ? '' : 's'} (below) block${n === 1 ? 's' : ''} it${plan.changes.length ? `; ${plan.changes.length} change${plan.changes.length === 1 ? ' is' : 's are'} known so far` : ''}.`;
  }
  if (!plan.changes.length) return 'No changes.';
  const s = summarize(plan.changes);
  return `Plan: ${s.add} to add, ${s.change} to change, ${s.destroy} to destroy.`;
}

function byDatabase(changes: Change[]): Map<string, Change[]> {
  const m = new Map<string, Change[]>();
  for (const c of changes) {
    const l = m.get(c.database) ?? [];
    l.push(c);
    m.set(c.database, l);
  }
  return m;
}

function problemLine(p: PlanProblem): string {
  return `${p.message}${p.hint ? ` (${p.hint})` : ''}`;
}

export function renderText(plan: Plan, ctx: RenderContext): string {
  const paint = (code: string, s: string) => (ctx.color ? `\x1b[${code}m${s}\x1b[0m` : s);
  const out: string[] = [];
  if (plan.changes.length) {
    out.push(`bucardo will make these changes for topology ${plan.topology} (${ctx.file}):`, '');
    for (const [db, changes] of byDatabase(plan.changes)) {
      out.push(`${paint('1', `database ${db}`)} (${ctx.describe(db)})`);
      for (const c of changes) {
        const mark = MARK[c.action].padStart(3);
        out.push(`  ${paint(COLOR[c.action], `${mark} ${c.object}`)}`);
        out.push(`        ${c.reason}`);
        if (c.diff) {
          for (const line of c.diff.split('\n').filter((l) => !l.startsWith('====='))) {
            if (!line) continue;
            const color = line.startsWith('+') ? '32' : line.startsWith('-') ? '31' : line.startsWith('@@') ? '36' : '';
            out.push(`        ${color ? paint(color, line) : line}`);
          }
        }
      }
      out.push('');
    }
  }
  if (plan.copies.length) {
    out.push('Onetimecopy on the next run:');
    for (const c of plan.copies) {
      out.push(`  sync ${c.sync}: ${c.table} from ${c.from} to ${c.to} (${c.mode}; ${approxRows(c.estimatedRows)})`);
    }
    out.push('');
  }
  for (const w of plan.warnings) out.push(paint('33', `warning: ${problemLine(w)}`));
  if (plan.warnings.length) out.push('');
  out.push(summaryLine(plan));
  return `${out.join('\n')}\n`;
}

/** The errors that block apply, one per line, for stderr. */
export function renderErrors(plan: Plan): string {
  return plan.errors.map((e) => `error: ${problemLine(e)}`).join('\n') + (plan.errors.length ? '\n' : '');
}

export function renderJson(plan: Plan): string {
  const doc = {
    format_version: '1',
    topology: plan.topology,
    changes: plan.changes.map((c) => ({
      database: c.database,
      action: c.action,
      object_type: c.objectType,
      object: c.object,
      reason: c.reason,
      ...(c.diff ? { diff: c.diff } : {}),
    })),
    summary: summarize(plan.changes),
    copies: plan.copies.map((c) => ({ sync: c.sync, table: c.table, from: c.from, to: c.to, mode: c.mode, estimated_rows: c.estimatedRows })),
    warnings: plan.warnings.map(jsonProblem),
    errors: plan.errors.map(jsonProblem),
  };
  return `${JSON.stringify(doc, null, 2)}\n`;
}

function jsonProblem(p: PlanProblem) {
  return { code: p.code, database: p.database ?? null, sync: p.sync ?? null, object: p.object ?? null, message: p.message, hint: p.hint ?? null };
}

const mdEscape = (s: string) => s.replace(/\|/g, '\\|').replace(/`/g, '\\`').replace(/\n/g, ' ');

export function renderMarkdown(plan: Plan, ctx: RenderContext): string {
  const s = summarize(plan.changes);
  const out: string[] = [`### bucardo plan: topology \`${plan.topology}\``, ''];
  if (plan.errors.length) {
    out.push(`**${plan.errors.length} error${plan.errors.length === 1 ? '' : 's'} block apply:**`, '');
    for (const e of plan.errors) out.push(`- :x: ${mdEscape(problemLine(e))}`);
    out.push('');
  }
  if (!plan.changes.length) {
    out.push('**No changes.** The databases match the topology.');
  } else {
    out.push(`**${s.add} to add, ${s.change} to change, ${s.destroy} to destroy.**`, '');
    out.push('| | database | object | reason |', '|---|---|---|---|');
    for (const c of plan.changes) out.push(`| \`${MARK[c.action]}\` | ${mdEscape(c.database)} | ${mdEscape(c.object)} | ${mdEscape(c.reason)} |`);
    const diffs = plan.changes.filter((c) => c.diff);
    for (const c of diffs) {
      out.push('', `<details><summary>${mdEscape(c.database)}: ${mdEscape(c.object)}</summary>`, '', '```diff', c.diff!.trimEnd(), '```', '', '</details>');
    }
  }
  if (plan.copies.length) {
    out.push('', '**Onetimecopy on the next run:**', '');
    for (const c of plan.copies)
      out.push(`- sync ${mdEscape(c.sync)}: ${mdEscape(c.table)} from ${mdEscape(c.from)} to ${mdEscape(c.to)} (${c.mode}, ${approxRows(c.estimatedRows)})`);
  }
  if (plan.warnings.length) {
    out.push('');
    for (const w of plan.warnings) out.push(`- :warning: ${mdEscape(problemLine(w))}`);
  }
  out.push('', `<sub>${mdEscape(ctx.file)}</sub>`);
  return `${out.join('\n')}\n`;
}
