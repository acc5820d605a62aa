/** `bucardo init --from URL`: a starter topology written from an existing database. */
import type { Command } from 'commander';
import fs from 'node:fs';
import path from 'node:path';
import { action, printStderr, EXIT } from '../common.js';
import { collectValues } from '../flags.js';
import { makeStarterTopology } from '../../engine/init/index.js';
import { topologySchemaPath } from '../../engine/paths.js';
import { BucardoError } from '../../engine/errors.js';

interface InitOpts {
  from: string;
  tables: string[];
  out?: string;
}

/** The schema's path relative to where the file goes, so editors find it. */
function schemaRef(out: string | undefined): string {
  const rel = path.relative(out ? path.dirname(path.resolve(out)) : process.cwd(), topologySchemaPath());
  return rel.split(path.sep).join('/');
}

export function register(program: Command): void {
  program
    .command('init')
    .description('write a starter topology from an existing database: every table with a usable key, and a note on those without')
    .requiredOption('--from <url>', 'the database to read, as postgres://user[:password]@host[:port]/dbname (the password is never written)')
    .option('--tables <pattern>', 'only tables whose schema.table matches this glob (* any run, ? one character); repeatable', collectValues, [] as string[])
    .option('-o, --out <file>', 'write the topology to this file (never overwritten) instead of stdout')
    .addHelpText('after', '\nExit codes: 0 ok, 1 error.')
    .action(
      action(async (opts: InitOpts) => {
        if (opts.out && fs.existsSync(opts.out)) {
          throw new BucardoError('file_exists', `${opts.out} already exists; bucardo init never overwrites a file`, {
            hint: 'choose another path with -o, or remove that file first',
          });
        }
        const r = await makeStarterTopology(opts.from, { tables: opts.tables, schemaRef: schemaRef(opts.out) });
        if (!opts.out) {
          process.stdout.write(r.text);
          return EXIT.ok;
        }
        try {
          fs.writeFileSync(opts.out, r.text, { flag: 'wx' });
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code === 'EEXIST')
            throw new BucardoError('file_exists', `${opts.out} already exists; bucardo init never overwrites a file`, { hint: 'choose another path with -o' });
          throw new BucardoError('write_failed', `cannot write ${opts.out} (${code ?? String(e)})`, { hint: 'check the folder exists and is writable' });
        }
        const n = (c: number, w: string) => `${c} ${w}${c === 1 ? '' : 's'}`;
        printStderr(
          `Wrote ${opts.out}: ${n(r.tables.length, 'table')}, ${n(r.sequences.length, 'sequence')}` +
            (r.keyless.length ? `; ${n(r.keyless.length, 'table')} without a usable key listed at its end` : '') +
            '.\n',
        );
        printStderr(`Next: set the target in ${opts.out}, then bucardo validate -f ${opts.out} && bucardo plan -f ${opts.out}\n`);
        return EXIT.ok;
      }),
    );
}
