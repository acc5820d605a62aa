/** Durations in the topology file (`checktime`, `run_history`): `500ms`, `30s`, `5m`, `1h`, `14d`, `1m30s`, or seconds. */

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/**
 * Milliseconds, or null when the text is not a duration. A plain integer (or a string of
 * digits) is seconds, as in Bucardo's checktime. Units may repeat in any order
 * (`1h30m`, `90s`); no fractions, so what the user wrote is exactly what runs.
 */
export function parseDuration(value: string | number): number | null {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value * 1000 : null;
  const text = value.trim();
  if (/^[0-9]+$/.test(text)) return Number(text) * 1000;
  const re = /([0-9]+)\s*(ms|h|m|s|d)\s*/gy;
  let ms = 0;
  let matched = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    ms += Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
    matched = re.lastIndex;
  }
  if (text === '' || matched !== text.length || !Number.isSafeInteger(ms)) return null;
  return ms;
}

/** For messages: what a valid duration looks like. */
export const DURATION_EXAMPLES = 'e.g. 30s, 500ms, 5m, 1h, 14d, 1m30s, or a number of seconds';
