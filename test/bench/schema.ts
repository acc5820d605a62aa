/**
 * The pgbench schema and data in SQL (what `pgbench -i -s N` builds with its server-side
 * generator, plus the peers' changes: pgbench_history gets `hid bigserial primary key`,
 * and a heartbeat table bench_hb), and the never-replicated helpers in schema benchctl,
 * copied from ../shared/bench/peers/setup-clusters.sh so the figures mean the same.
 */

export const TABLES = ['public.pgbench_accounts', 'public.pgbench_branches', 'public.pgbench_tellers', 'public.pgbench_history', 'public.bench_hb'];

/** Tables without data or keys (pgbench's "dt" steps). */
export const TABLES_DDL = `
CREATE TABLE pgbench_history (tid int, bid int, aid int, delta int, mtime timestamp, filler char(22));
CREATE TABLE pgbench_tellers (tid int NOT NULL, bid int, tbalance int, filler char(84)) WITH (fillfactor = 100);
CREATE TABLE pgbench_accounts (aid int NOT NULL, bid int, abalance int, filler char(84)) WITH (fillfactor = 100);
CREATE TABLE pgbench_branches (bid int NOT NULL, bbalance int, filler char(88)) WITH (fillfactor = 100);
`;

/** pgbench's "G" step (server-side generation), for scale s. */
export function dataSql(scale: number): string {
  return `
INSERT INTO pgbench_branches (bid, bbalance) SELECT bid, 0 FROM generate_series(1, ${scale}) bid;
INSERT INTO pgbench_tellers (tid, bid, tbalance) SELECT tid, (tid - 1) / 10 + 1, 0 FROM generate_series(1, ${10 * scale}) tid;
INSERT INTO pgbench_accounts (aid, bid, abalance, filler) SELECT aid, (aid - 1) / 100000 + 1, 0, '' FROM generate_series(1, ${100_000 * scale}) aid;
`;
}

/** pgbench's "p" step, then the peers' additions. */
export const KEYS_DDL = `
ALTER TABLE pgbench_branches ADD PRIMARY KEY (bid);
ALTER TABLE pgbench_tellers ADD PRIMARY KEY (tid);
ALTER TABLE pgbench_accounts ADD PRIMARY KEY (aid);
ALTER TABLE pgbench_history ADD COLUMN hid bigserial PRIMARY KEY;
CREATE TABLE bench_hb (run_id int NOT NULL, seq int NOT NULL, ts_a timestamptz NOT NULL DEFAULT clock_timestamp(), PRIMARY KEY (run_id, seq));
`;

/** Local helpers (setup-clusters.sh): never replicated. */
export const BENCHCTL_DDL = `
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
CREATE SCHEMA benchctl;
CREATE TABLE benchctl.hb_arrival (run_id int, seq int, ts_a timestamptz, ts_b timestamptz, PRIMARY KEY (run_id, seq));
CREATE FUNCTION benchctl.hb_arrive() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
  INSERT INTO benchctl.hb_arrival VALUES (NEW.run_id, NEW.seq, NEW.ts_a, clock_timestamp()) ON CONFLICT DO NOTHING;
  RETURN NULL;
END $f$;
CREATE SEQUENCE benchctl.run_id_seq;
-- Server-side poll (setup-clusters.sh): epoch seconds when heartbeat (run, seq) is visible
-- and, if given, sum(abalance) over aid <= p_maxaid equals p_expected; -1 on timeout.
-- VOLATILE: every statement inside takes a fresh snapshot.
-- The same poll with a marker instead of a sum: every aid <= p_maxaid has abalance = p_marker.
-- Used by the bursts, whose writers set a run-specific value: with two sources, whichever
-- source wins a conflicting key, the value is the same, so the end state is deterministic.
CREATE FUNCTION benchctl.wait_marker(p_run int, p_seq int, p_marker int, p_timeout float8, p_maxaid int)
RETURNS float8 LANGUAGE plpgsql VOLATILE AS $f$
DECLARE n bigint; deadline timestamptz := clock_timestamp() + p_timeout * interval '1 s';
BEGIN
  LOOP
    IF EXISTS (SELECT 1 FROM public.bench_hb WHERE run_id = p_run AND seq = p_seq) THEN
      SELECT count(*) INTO n FROM public.pgbench_accounts WHERE aid <= p_maxaid AND abalance = p_marker;
      IF n = p_maxaid THEN RETURN extract(epoch FROM clock_timestamp()); END IF;
    END IF;
    IF clock_timestamp() > deadline THEN RETURN -1; END IF;
    PERFORM pg_sleep(0.01);
  END LOOP;
END $f$;
-- waits until heartbeat (p_run, p_seq) has arrived: the completion marker of a phase
CREATE FUNCTION benchctl.wait_for(p_run int, p_seq int, p_timeout float8)
RETURNS float8 LANGUAGE plpgsql VOLATILE AS $f$
DECLARE deadline timestamptz := clock_timestamp() + p_timeout * interval '1 s';
BEGIN
  LOOP
    IF EXISTS (SELECT 1 FROM public.bench_hb WHERE run_id = p_run AND seq = p_seq) THEN
      RETURN extract(epoch FROM clock_timestamp());
    END IF;
    IF clock_timestamp() > deadline THEN RETURN -1; END IF;
    PERFORM pg_sleep(0.01);
  END LOOP;
END $f$;
`;

/**
 * On a receiver: a DEFERRED constraint trigger fires just before COMMIT of the applying
 * transaction, so ts_b is the moment the heartbeat becomes visible; ENABLE ALWAYS makes it
 * fire under session_replication_role = replica, which is how the runner writes.
 */
export const ARRIVAL_TRIGGER_DDL = `
CREATE CONSTRAINT TRIGGER hb_arrive AFTER INSERT ON public.bench_hb
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION benchctl.hb_arrive();
ALTER TABLE public.bench_hb ENABLE ALWAYS TRIGGER hb_arrive;
`;

/** measure.sh check_consistent: one text per database, equal iff the tables agree. */
export const FINGERPRINT_SQL = `SELECT (SELECT sum(abalance) FROM pgbench_accounts) || '/' || (SELECT sum(bbalance) FROM pgbench_branches) || '/' ||
  (SELECT sum(tbalance) FROM pgbench_tellers) || '/' || (SELECT count(*) || ':' || coalesce(sum(delta), 0) FROM pgbench_history) || '/' ||
  (SELECT count(*) FROM bench_hb) AS f`;
