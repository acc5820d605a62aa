/**
 * Benchmark parameters: the full run reproduces the peers' workloads (scale 10, 100k-row
 * bursts, 60 s lag phases, 30 s TPS phases, see ../shared/bench/peers/measure.sh); --quick
 * shrinks every phase so the whole suite takes about two minutes while developing.
 */

export interface BenchConfig {
  quick: boolean;
  /** pgbench scale: 100k pgbench_accounts rows per unit. */
  scale: number;
  /** Rows of the M1 bursts (one transaction; and one-row transactions). */
  m1Rows: number;
  m1SingleRows: number;
  /** Seconds of each M2 lag phase, and its TPC-B-like rates (transactions per second). */
  m2Secs: number;
  m2Rates: number[];
  /** Rates of the two-source lag phases (M5). */
  mmRates: number[];
  /** Seconds of each M3 TPS phase. */
  m3Secs: number;
  /** Repetitions of the COPY limit (median reported). */
  reps: number;
  /** Repetitions of each M3 arm (capture / none; medians reported). */
  m3Reps: number;
  /** The two delta sizes of the RSS check. */
  rssRows: [number, number];
  /** Fixed rate of the writes running on A during the onetimecopy (M4). */
  m4WriteRate: number;
  /** Phases to run (all by default). */
  phases: Set<Phase>;
  /** Node --cpu-prof for the runner child (profiles into the results folder). */
  cpuProf: boolean;
  /** pg_stat_statements.track = all (nested statements of the capture triggers too). */
  trackAll: boolean;
  /** Output folder for JSON, runner logs and profiles. */
  outDir: string;
}

export const PHASES = ['limit', 'm3', 'm1', 'm2', 'rss', 'm5', 'm4', 'lr', 'custom', 'transform', 'failover', 'scale', 'targets'] as const;
export type Phase = (typeof PHASES)[number];

/** Connections from the same settings the peers used (setup-clusters.sh), durability on. */
export const CLUSTER_SETTINGS: Record<string, string> = {
  shared_buffers: '512MB',
  work_mem: '16MB',
  maintenance_work_mem: '256MB',
  wal_level: 'logical',
  max_wal_senders: '10',
  max_replication_slots: '10',
  max_wal_size: '8GB',
  checkpoint_timeout: '30min',
  fsync: 'on',
  synchronous_commit: 'on',
  full_page_writes: 'on',
  jit: 'off',
  max_connections: '100',
  log_min_messages: 'warning',
  shared_preload_libraries: 'pg_stat_statements',
};

const USAGE = `npm run bench -- [--quick] [--scale N] [--rss-rows N,M] [--reps N] [--only PHASE,...] [--cpu-prof] [--track-all] [--out DIR]
  phases: ${PHASES.join(', ')} (limit always runs: every figure is a ratio to it)`;

export function parseArgs(argv: string[]): BenchConfig {
  const quick = argv.includes('--quick');
  const cfg: BenchConfig = quick
    ? {
        quick,
        scale: 1,
        m1Rows: 20_000,
        m1SingleRows: 5_000,
        m2Secs: 12,
        m2Rates: [200, 500],
        mmRates: [500],
        m3Secs: 8,
        reps: 1,
        m3Reps: 1,
        rssRows: [10_000, 100_000],
        m4WriteRate: 200,
        phases: new Set(PHASES),
        cpuProf: false,
        trackAll: false,
        outDir: 'bench-results',
      }
    : {
        quick,
        scale: 10,
        m1Rows: 100_000,
        m1SingleRows: 100_000,
        m2Secs: 60,
        m2Rates: [200, 500],
        mmRates: [200, 500],
        m3Secs: 30,
        reps: 3,
        m3Reps: 2,
        rssRows: [100_000, 1_000_000],
        m4WriteRate: 200,
        phases: new Set(PHASES),
        cpuProf: false,
        trackAll: false,
        outDir: 'bench-results',
      };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value\n${USAGE}`);
      return v;
    };
    switch (a) {
      case '--quick':
        break;
      case '--scale':
        cfg.scale = positive(a, next());
        cfg.rssRows = [Math.min(cfg.rssRows[0], cfg.scale * 100_000), Math.min(cfg.rssRows[1], cfg.scale * 100_000)];
        cfg.m1Rows = Math.min(cfg.m1Rows, cfg.scale * 100_000);
        cfg.m1SingleRows = Math.min(cfg.m1SingleRows, cfg.scale * 100_000);
        break;
      case '--rss-rows': {
        // after --scale: the two delta sizes of the RSS phase, e.g. 1000000,3000000 at --scale 30
        const [x, y] = next()
          .split(',')
          .map((v) => positive(a, v));
        if (y === undefined || Math.max(x, y) > cfg.scale * 100_000)
          throw new Error(`--rss-rows needs two sizes up to the accounts of the scale (${cfg.scale * 100_000})\n${USAGE}`);
        cfg.rssRows = [x, y];
        break;
      }
      case '--reps':
        cfg.reps = positive(a, next());
        cfg.m3Reps = cfg.reps;
        break;
      case '--m2-secs':
        cfg.m2Secs = positive(a, next());
        break;
      case '--m3-secs':
        cfg.m3Secs = positive(a, next());
        break;
      case '--only': {
        const want = next()
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
        for (const p of want) if (!(PHASES as readonly string[]).includes(p)) throw new Error(`unknown phase ${p}\n${USAGE}`);
        cfg.phases = new Set(['limit', ...want] as Phase[]);
        break;
      }
      case '--cpu-prof':
        cfg.cpuProf = true;
        break;
      case '--track-all':
        cfg.trackAll = true;
        break;
      case '--out':
        cfg.outDir = next();
        break;
      case '-h':
      case '--help':
        console.log(USAGE);
        process.exit(0);
        break;
      default:
        throw new Error(`unknown option ${a}\n${USAGE}`);
    }
  }
  return cfg;
}

function positive(flag: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${flag} wants a positive integer, got ${v}`);
  return n;
}
