#!/usr/bin/env node
/**
 * The `bucardo` command: parses arguments and hands each command to its module in
 * cli/commands/. Each module exports `register(program)`.
 */
import { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { packageRoot } from '../engine/paths.js';
import { printError, printStderr } from './common.js';
import * as validate from './commands/validate.js';
import * as plan from './commands/plan.js';
import * as apply from './commands/apply.js';
import * as destroy from './commands/destroy.js';
import * as run from './commands/run.js';
import * as kick from './commands/kick.js';
import * as status from './commands/status.js';
import * as compare from './commands/compare.js';
import * as demo from './commands/demo.js';
import * as init from './commands/init.js';

const pkg = JSON.parse(readFileSync(`${packageRoot()}/package.json`, 'utf8')) as { version: string };

const program = new Command('bucardo')
  .description('Asynchronous, trigger-based, multi-source PostgreSQL replication, as config-as-code')
  .version(pkg.version, '-V, --version')
  .showHelpAfterError('(run with --help for usage)')
  .configureOutput({ outputError: (s) => printStderr(s) });

for (const m of [validate, plan, apply, destroy, run, kick, status, compare, demo, init]) m.register(program);

program.parseAsync(process.argv).catch((e: unknown) => {
  printError(e);
  process.exitCode = 1;
});
