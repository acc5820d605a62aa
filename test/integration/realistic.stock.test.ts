/**
 * Issue 10's scenario, on what users run: two stock PostgreSQL servers from the machine's
 * packages (JIT on, as Debian ships it) as sources and an embedded one as target, a schema
 * shaped like a film rental database (a dozen related tables, enums, domains, arrays, a
 * tsvector and last_update kept by the application's own triggers, ON UPDATE CASCADE keys,
 * payments partitioned by month into 36 partitions, per-source id ranges), under a
 * concurrent write load that includes writes aimed at partitions, COPY into one and
 * TRUNCATE of an old month. At the end every database is identical, and no statement of
 * the runner was JIT-compiled on the stock servers (while a forced one was: JIT works there).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { useClusters, useGroup, writeTopology, waitFor, type TestDb } from '../helpers/env.js';
import { applyOk, runOnce, assertSame } from '../helpers/install.js';
import { spawnCli } from '../helpers/cli.js';
import { startStockClusters } from '../helpers/stock.js';

// jit_above_cost lowered from 100000: the runner's statements on these small tables cost less than
// what a production table costs, and the point is that the runner never JIT-compiles
const stock = useGroup(['a', 'b'], () =>
  startStockClusters(['a', 'b'], { shared_preload_libraries: 'pg_stat_statements', 'pg_stat_statements.track': 'top', jit_above_cost: '500' }),
);
const embedded = useClusters(['t']);

const MONTHS = 36;

function schema(): string {
  const parts: string[] = [];
  for (let m = 0; m < MONTHS; m++) {
    const from = new Date(Date.UTC(2022, m, 1)).toISOString().slice(0, 10);
    const to = new Date(Date.UTC(2022, m + 1, 1)).toISOString().slice(0, 10);
    parts.push(`CREATE TABLE public.payment_p${from.slice(0, 7).replace('-', '_')} PARTITION OF public.payment FOR VALUES FROM ('${from}') TO ('${to}');`);
  }
  return `
CREATE TYPE public.mpaa_rating AS ENUM ('G', 'PG', 'PG-13', 'R', 'NC-17');
CREATE DOMAIN public.year AS integer CHECK (VALUE >= 1901 AND VALUE <= 2155);
CREATE FUNCTION public.last_updated() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.last_update := clock_timestamp(); RETURN NEW; END $$;
CREATE TABLE public.language (language_id serial PRIMARY KEY, name character(20) NOT NULL, last_update timestamptz NOT NULL DEFAULT now());
CREATE TABLE public.category (category_id serial PRIMARY KEY, name text NOT NULL, last_update timestamptz NOT NULL DEFAULT now());
CREATE TABLE public.actor (actor_id serial PRIMARY KEY, first_name text NOT NULL, last_name text NOT NULL, last_update timestamptz NOT NULL DEFAULT now());
CREATE TABLE public.film (film_id serial PRIMARY KEY, title text NOT NULL, description text, release_year public.year,
  language_id integer NOT NULL REFERENCES public.language ON UPDATE CASCADE, rental_rate numeric(4,2) NOT NULL DEFAULT 4.99,
  rating public.mpaa_rating DEFAULT 'G', special_features text[], fulltext tsvector, last_update timestamptz NOT NULL DEFAULT now());
CREATE FUNCTION public.film_fulltext() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.fulltext := to_tsvector('english', NEW.title || ' ' || coalesce(NEW.description, '')); RETURN NEW; END $$;
CREATE TRIGGER film_fulltext BEFORE INSERT OR UPDATE ON public.film FOR EACH ROW EXECUTE FUNCTION public.film_fulltext();
CREATE TABLE public.film_actor (actor_id integer NOT NULL REFERENCES public.actor ON UPDATE CASCADE, film_id integer NOT NULL REFERENCES public.film ON UPDATE CASCADE,
  last_update timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (actor_id, film_id));
CREATE TABLE public.film_category (film_id integer NOT NULL REFERENCES public.film ON UPDATE CASCADE, category_id integer NOT NULL REFERENCES public.category ON UPDATE CASCADE,
  last_update timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (film_id, category_id));
CREATE TABLE public.store (store_id serial PRIMARY KEY, name text NOT NULL, last_update timestamptz NOT NULL DEFAULT now());
CREATE TABLE public.customer (customer_id serial PRIMARY KEY, store_id integer NOT NULL REFERENCES public.store, first_name text NOT NULL, last_name text NOT NULL,
  email text, active boolean NOT NULL DEFAULT true, create_date date NOT NULL DEFAULT current_date, last_update timestamptz DEFAULT now());
CREATE TABLE public.inventory (inventory_id serial PRIMARY KEY, film_id integer NOT NULL REFERENCES public.film ON UPDATE CASCADE, store_id integer NOT NULL REFERENCES public.store,
  last_update timestamptz NOT NULL DEFAULT now());
CREATE TABLE public.rental (rental_id serial PRIMARY KEY, rental_date timestamptz NOT NULL, inventory_id integer NOT NULL REFERENCES public.inventory ON UPDATE CASCADE,
  customer_id integer NOT NULL REFERENCES public.customer ON UPDATE CASCADE, return_date timestamptz, last_update timestamptz NOT NULL DEFAULT now());
CREATE TABLE public.payment (payment_id serial NOT NULL, customer_id integer NOT NULL, rental_id integer, amount numeric(5,2) NOT NULL,
  payment_date date NOT NULL, PRIMARY KEY (payment_date, payment_id)) PARTITION BY RANGE (payment_date);
${parts.join('\n')}
${['language', 'category', 'actor', 'film', 'film_actor', 'film_category', 'store', 'customer', 'inventory', 'rental']
  .map((t) => `CREATE TRIGGER last_updated BEFORE UPDATE ON public.${t} FOR EACH ROW EXECUTE FUNCTION public.last_updated();`)
  .join('\n')}
INSERT INTO public.language (language_id, name, last_update) VALUES (1, 'English', '2024-01-01'), (2, 'Italian', '2024-01-01');
INSERT INTO public.category (category_id, name, last_update) SELECT i, 'category ' || i, '2024-01-01' FROM generate_series(1, 16) i;
INSERT INTO public.store (store_id, name, last_update) VALUES (1, 'north', '2024-01-01'), (2, 'south', '2024-01-01');
`;
}

const TABLES = ['language', 'category', 'actor', 'film', 'film_actor', 'film_category', 'store', 'customer', 'inventory', 'rental', 'payment'].map(
  (t) => `public.${t}`,
);
const SEQUENCES = [
  'actor_actor_id_seq',
  'film_film_id_seq',
  'customer_customer_id_seq',
  'inventory_inventory_id_seq',
  'rental_rental_id_seq',
  'payment_payment_id_seq',
];

/** Each source hands out ids from its own range (a: 1..1e9, b: 1e9+1..2e9). */
async function ranges(d: TestDb, n: number): Promise<void> {
  const lo = n * 1_000_000_000 + 1;
  for (const s of SEQUENCES) await d.query(`ALTER SEQUENCE public.${s} MINVALUE ${lo} MAXVALUE ${lo + 999_999_998} START ${lo} RESTART`);
}

/** One source's application: a few thousand small transactions over every table. */
async function load(d: TestDb, stop: () => boolean): Promise<number> {
  const c = new pg.Client(d.cluster.clientConfig(d.dbname));
  await c.connect();
  let n = 0;
  try {
    while (!stop()) {
      n++;
      await c.query('BEGIN');
      const actor = (await c.query(`INSERT INTO public.actor (first_name, last_name) VALUES ($1, $2) RETURNING actor_id`, [`A${n}`, d.name])).rows[0].actor_id;
      const film = (
        await c.query(
          `INSERT INTO public.film (title, description, release_year, language_id, rating, special_features)
        VALUES ($1, 'a film', 2000 + $2::int % 20, 1 + $2::int % 2, (ARRAY['G','PG','R']::public.mpaa_rating[])[1 + $2::int % 3], ARRAY['Trailers', 'Deleted Scenes']) RETURNING film_id`,
          [`${d.name} film ${n}`, n],
        )
      ).rows[0].film_id;
      await c.query(`INSERT INTO public.film_actor (actor_id, film_id) VALUES ($1, $2)`, [actor, film]);
      await c.query(`INSERT INTO public.film_category (film_id, category_id) VALUES ($1, 1 + $2::int % 16)`, [film, n]);
      const inv = (await c.query(`INSERT INTO public.inventory (film_id, store_id) VALUES ($1, 1 + $2::int % 2) RETURNING inventory_id`, [film, n])).rows[0]
        .inventory_id;
      const cust = (
        await c.query(`INSERT INTO public.customer (store_id, first_name, last_name, email) VALUES (1, $1, $2, $3) RETURNING customer_id`, [
          `C${n}`,
          d.name,
          `c${n}@${d.name}.example`,
        ])
      ).rows[0].customer_id;
      const rental = (
        await c.query(`INSERT INTO public.rental (rental_date, inventory_id, customer_id) VALUES (now(), $1, $2) RETURNING rental_id`, [inv, cust])
      ).rows[0].rental_id;
      if (n % 2)
        await c.query(`INSERT INTO public.payment (customer_id, rental_id, amount, payment_date) VALUES ($1, $2, 2.99, date '2022-01-01' + $3::int)`, [
          cust,
          rental,
          (n * 7) % (MONTHS * 28),
        ]);
      else
        await c.query(`INSERT INTO public.payment_p2023_06 (customer_id, rental_id, amount, payment_date) VALUES ($1, $2, 0.99, '2023-06-15')`, [cust, rental]);
      await c.query(`UPDATE public.film SET description = 'seen ' || $2::int, rental_rate = 0.99 + ($2::int % 4) WHERE film_id = $1`, [film, n]); // fulltext, last_update
      if (n % 5 === 0) await c.query(`UPDATE public.rental SET return_date = now() WHERE rental_id = $1`, [rental]);
      if (n % 7 === 0) await c.query(`UPDATE public.actor SET actor_id = actor_id + 500000000 WHERE actor_id = $1`, [actor]); // cascades to film_actor
      if (n % 11 === 0) await c.query(`DELETE FROM public.payment_p2023_06 WHERE customer_id = $1`, [cust]);
      if (n % 13 === 0) await c.query(`UPDATE public.payment SET payment_date = '2024-12-30' WHERE rental_id = $1`, [rental]); // moves partition
      await c.query('COMMIT');
    }
  } finally {
    await c.end();
  }
  return n;
}

test('a realistic schema on two stock (JIT) sources and a target converges under load, and the runner never JIT-compiles', { timeout: 600_000 }, async () => {
  const [a, b] = await stock.fresh('sakila', schema());
  const [t] = await embedded.fresh('sakila', schema());
  await ranges(a, 0);
  await ranges(b, 1);
  const file = writeTopology({
    version: 1,
    databases: { a: { url: a.url }, b: { url: b.url }, t: { url: t.url } },
    relgroups: { rental: { tables: TABLES, sequences: SEQUENCES.map((s) => `public.${s}`) } },
    syncs: { shop: { relgroup: 'rental', sources: ['a', 'b'], targets: ['t'], checktime: '2s' } },
  });
  await applyOk(file);
  for (const d of [a, b]) await d.query(`CREATE EXTENSION IF NOT EXISTS pg_stat_statements; SELECT pg_stat_statements_reset()`);
  const runner = spawnCli(['run', '-f', file, '--log-format', 'json']);
  let stop = false;
  let truncated: number[] = [];
  try {
    const writers = [load(a, () => stop), load(b, () => stop)];
    await waitFor(async () => (await a.one(`SELECT count(*)::int AS n FROM public.rental`)).n > 150, 'a load on a', 60_000);
    // the operator drops an old month on b and back-fills a month on a by COPY
    const tb = new pg.Client(b.cluster.clientConfig(b.dbname));
    await tb.connect();
    try {
      await tb.query('BEGIN');
      truncated = (await tb.query(`SELECT payment_id FROM public.payment_p2022_01`)).rows.map((r: { payment_id: number }) => r.payment_id);
      await tb.query(`TRUNCATE public.payment_p2022_01`);
      await tb.query('COMMIT');
    } finally {
      await tb.end();
    }
    const c = new pg.Client(a.cluster.clientConfig(a.dbname));
    await c.connect();
    try {
      const rows = Array.from({ length: 200 }, (_, i) => `${900_000_000 + i}\t7\t\\N\t1.50\t2022-02-${String(1 + (i % 28)).padStart(2, '0')}\n`).join('');
      await pipeline(
        Readable.from([rows]),
        c.query(copyFrom(`COPY public.payment_p2022_02 (payment_id, customer_id, rental_id, amount, payment_date) FROM STDIN`)),
      );
    } finally {
      await c.end();
    }
    await waitFor(async () => (await a.one(`SELECT count(*)::int AS n FROM public.rental`)).n > 400, 'more load', 120_000);
    console.log('load done');
    stop = true;
    const done = await Promise.all(writers);
    assert.ok(done.every((n) => n > 0));
  } finally {
    stop = true;
    runner.kill('SIGTERM');
    await runner.exited;
  }
  console.log('runner stopped');
  await runOnce(file);
  await assertSame([a, b, t], TABLES, 'after the load');
  // what b held in that month when it truncated it is gone everywhere (later rows may be there)
  assert.ok(truncated.length > 0);
  for (const d of [a, b, t])
    assert.equal((await d.one(`SELECT count(*)::int AS n FROM public.payment WHERE payment_id = ANY($1::int[])`, [truncated])).n, 0, d.name);
  assert.equal((await t.one(`SELECT count(*)::int AS n FROM public.payment_p2022_02 WHERE payment_id BETWEEN 900000000 AND 900000199`)).n, 200);
  // JIT: forced on once in a session of ours (it works on this server), never in the runner's
  const forced = new pg.Client({ ...a.cluster.clientConfig(a.dbname), options: '-c jit_above_cost=0' });
  await forced.connect();
  try {
    await forced.query(`SELECT sum(amount) AS forced_jit_probe FROM public.payment WHERE amount > 0`);
  } finally {
    await forced.end();
  }
  for (const d of [a, b]) {
    const probe = await d.one(`SELECT coalesce(sum(jit_functions), 0)::int AS n FROM pg_stat_statements WHERE query LIKE '%forced_jit_probe%'`);
    if (d === a) assert.ok(probe.n > 0, 'JIT is not active on the stock server: the check below would prove nothing');
    const ours = await d.one(
      `SELECT count(*)::int AS statements, coalesce(sum(jit_functions), 0)::int AS jit FROM pg_stat_statements WHERE query LIKE '%bucardo%'`,
    );
    assert.ok(ours.statements > 0);
    assert.equal(ours.jit, 0, `statements of the runner were JIT-compiled on ${d.name}`);
  }
  const durations = runner
    .output()
    .stdout.split('\n')
    .filter((l) => l.includes('"event":"run"'))
    .map((l) => JSON.parse(l).duration_ms as number)
    .sort((x, y) => x - y);
  console.log(
    `runs during the load: ${durations.length}, duration p50 ${durations[Math.floor(durations.length / 2)]} ms, max ${durations[durations.length - 1]} ms`,
  );
});
