/**
 * The type-fidelity table shared by runner-types.test and the cross-version matrix
 * (test/helpers/matrix.ts): one column of nearly every built-in type family, and three rows
 * of edge values (NaN, infinities, BC dates, huge text and bytea, empty ranges, NULLs).
 * Every type here exists on PostgreSQL 15 to 18, so no major drops a column.
 */
export const TYPES_DDL = `
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
CREATE TYPE pair AS (x integer, label text);
CREATE TABLE public.matrix (
  id bigint PRIMARY KEY,
  n numeric, n2 numeric(40, 20), f8 float8, f4 float4,
  b bytea, ts timestamptz, tsl timestamp, d date, tm timetz, iv interval,
  arr integer[][], tarr text[],
  j json, jb jsonb, u uuid, ip inet, net cidr, mac macaddr, mac8 macaddr8,
  bits bit(8), vbits varbit, tsv tsvector, tsq tsquery,
  pt point, bx box, poly polygon, circ circle, ln line, seg lseg, pth path,
  r4 int4range, rts tstzrange, nr numrange, mr int4multirange,
  m mood, p posint, c pair, x xml, money_ money, big text,
  doubled integer GENERATED ALWAYS AS (p * 2) STORED
);`;

/** Three rows of edge values into public.matrix. */
export const TYPES_INSERT = `INSERT INTO public.matrix (id, n, n2, f8, f4, b, ts, tsl, d, tm, iv, arr, tarr, j, jb, u, ip, net, mac, mac8, bits, vbits, tsv, tsq,
      pt, bx, poly, circ, ln, seg, pth, r4, rts, nr, mr, m, p, c, x, money_, big) VALUES
    (1, 'NaN', 12345678901234567890.12345678901234567890, 'Infinity', '-Infinity', '\\x00010200ff00'::bytea,
     '2024-02-29 23:59:59.999999+13:45', '1999-12-31 23:59:59.5', '0044-03-15 BC', '12:34:56.789+05:30', '1 year 2 mons -3 days 04:05:06.789',
     '{{1,NULL},{3,4}}', '{"a b","",NULL,"\\"q\\"","{}"}', '{"k": [1, 2.50, "x"]}', '{"b": {"c": null}, "a": 1e3}',
     'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '2001:db8::1/64', '10.1.0.0/16', '08:00:2b:01:02:03', '08:00:2b:01:02:03:04:05',
     B'10101010', B'1', 'the quick:1 brown fox', 'fat & (rat | cat)',
     '(1.5,-2)', '((0,0),(1,1))', '((0,0),(1,0),(1,1))', '<(1,1),2>', '{1,-1,0}', '[(0,0),(1,1)]', '[(0,0),(1,1),(2,0)]',
     '[1,10)', '[2024-01-01 00:00+00,2024-06-01 00:00+00)', '(,5.5]', '{[1,3),[7,9)}', 'happy', 7, ROW(3, 'x "y"'),
     '<doc a="1">t&amp;x</doc>', 12.34, 'short'),
    (2, -0.0000000000000000001, 0, '-0', 'NaN', '', '-infinity', 'infinity', 'infinity', '00:00:00+00', '-178000000 years',
     '{}', '{}', 'null', '[]', '00000000-0000-0000-0000-000000000000', '0.0.0.0', '::/0', 'ff:ff:ff:ff:ff:ff', '00:00:00:00:00:00:00:00',
     B'00000000', B'', '', 'a', '(0,0)', '((0,0),(0,0))', '((0,0))', '<(0,0),0>', '{0,1,0}', '[(0,0),(0,0)]', '((0,0))',
     'empty', 'empty', 'empty', '{}', 'sad', 1, ROW(NULL, NULL), '<a/>', -0.01, repeat('x', 3 * 1024 * 1024) || E'\\u00e9\\u4e2d\\U0001F600'),
    (3, 1e-300, NULL, 1.7976931348623157e308, 1.4e-45, decode(repeat('00ff', 600000), 'hex'), NULL, NULL, NULL, NULL, NULL,
     '{{{1}},{{NULL}}}', '{NULL}', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
     NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, E'tab\\there\\nnewline \\\\ backslash \\x01')`;
