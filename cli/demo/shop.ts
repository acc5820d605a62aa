/**
 * The demo's little shop: schema, seed data, topology, and a write driver that writes on
 * both sources at once, partly on the same rows so that conflicts happen and get resolved.
 * East inserts odd ids and west even ids (as Bucardo users do with sequences stepping by
 * two), so inserts never collide; updates of the seeded rows do, on purpose.
 */
import pg from 'pg';

export const SHOP_DDL = `
CREATE TABLE public.customers (id bigint PRIMARY KEY, name text NOT NULL, email text, city text, updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE public.products (sku text PRIMARY KEY, title text NOT NULL, price numeric(10,2) NOT NULL, stock integer NOT NULL);
CREATE TABLE public.orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL, placed_at timestamptz NOT NULL DEFAULT now(), status text NOT NULL);
CREATE TABLE public.order_lines (order_id bigint NOT NULL, line_no integer NOT NULL, sku text NOT NULL, qty integer NOT NULL, PRIMARY KEY (order_id, line_no));
`;

/** The same seed on every database (so the sync starts from equal tables). */
export const SHOP_SEED = `
INSERT INTO public.customers (id, name, email, city, updated_at)
  SELECT i * 2, 'customer ' || i, 'c' || i || '@example.com', (ARRAY['Oslo', 'Lyon', 'Porto', 'Graz'])[1 + i % 4], timestamptz '2026-01-01 12:00:00+00'
  FROM generate_series(1, 500) i;
INSERT INTO public.products SELECT 'SKU-' || lpad(i::text, 4, '0'), 'product ' || i, (i % 90) + 9.99, 100 FROM generate_series(1, 200) i;
`;

export function shopTopology(urls: { east: string; west: string; warehouse: string }, schemaPath: string): string {
  return `# yaml-language-server: $schema=${schemaPath}
# The bucardo demo: two sources taking writes (east, west), one read-only target.
version: 1
name: shop

databases:
  east:
    url: ${urls.east}
  west:
    url: ${urls.west}
  warehouse:
    url: ${urls.warehouse}

relgroups:
  shop:
    tables:
      - public.customers
      - public.products
      - public.orders
      - public.order_lines

syncs:
  shop_mm:
    relgroup: shop
    sources: [east, west]
    targets: [warehouse]
    conflict: latest
    onetimecopy: if_empty
    autokick: true
    checktime: 5s
`;
}

export interface DriverStats {
  writes: Record<string, number>;
  /** Seeded customers updated on both sources: each is a conflict for the runner. */
  contested: number;
}

/**
 * Writes on every source until stop(): new customers and orders (disjoint ids per source),
 * price and stock updates, a few deletes, and, every few rounds, the same customer row
 * updated on both sources (a conflict).
 */
export class WriteDriver {
  readonly stats: DriverStats = { writes: {}, contested: 0 };
  private running = false;
  private loops: Promise<void>[] = [];
  private clients: pg.Client[] = [];

  constructor(
    private readonly sources: { name: string; config: pg.ClientConfig; parity: 0 | 1 }[],
    private readonly ratePerSource = 40,
  ) {}

  async start(): Promise<void> {
    this.running = true;
    for (const s of this.sources) {
      const c = new pg.Client(s.config);
      c.on('error', () => {});
      await c.connect();
      this.clients.push(c);
      this.stats.writes[s.name] = 0;
      this.loops.push(this.loop(c, s.name, s.parity));
    }
  }

  private async loop(c: pg.Client, name: string, parity: 0 | 1): Promise<void> {
    let n = 0;
    const interval = 1000 / this.ratePerSource;
    while (this.running) {
      const t0 = Date.now();
      n++;
      const id = 100_000 + n * 2 + parity;
      try {
        switch (n % 5) {
          case 0:
            await c.query(`INSERT INTO public.customers (id, name, email, city) VALUES ($1, $2, $3, $4)`, [
              id,
              `${name} customer ${n}`,
              `${name}${n}@example.com`,
              name,
            ]);
            break;
          case 1:
            await c.query('BEGIN');
            await c.query(`INSERT INTO public.orders (id, customer_id, status) VALUES ($1, $2, 'new')`, [id, 2 + 2 * (n % 500)]);
            await c.query(
              `INSERT INTO public.order_lines SELECT $1::bigint, l, 'SKU-' || lpad((1 + ($1::bigint + l) % 200)::text, 4, '0'), 1 + l FROM generate_series(1, 3) l`,
              [id],
            );
            await c.query('COMMIT');
            break;
          case 2:
            await c.query(`UPDATE public.products SET stock = stock - 1 WHERE sku = $1`, [`SKU-${String(1 + ((n * 7) % 200)).padStart(4, '0')}`]);
            break;
          case 3:
            // the same seeded customer, on every source, in the same second: a conflict
            await c.query(`UPDATE public.customers SET city = $2, updated_at = now() WHERE id = $1`, [2 * (1 + (Math.floor(n / 5) % 500)), `${name} ${n}`]);
            if (parity === 0) this.stats.contested++;
            break;
          default:
            await c.query(`DELETE FROM public.order_lines WHERE order_id = $1 AND line_no = 3`, [id - 6]);
        }
        this.stats.writes[name]++;
      } catch {
        await c.query('ROLLBACK').catch(() => {});
      }
      const wait = interval - (Date.now() - t0);
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    await Promise.all(this.clients.map((c) => c.end().catch(() => {})));
  }
}
