/**
 * Pick `n` of `rows` evenly spread (not the first n, which would all be from the start of the second). Pure.
 */
export function sampleEvenly<T>(rows: readonly T[], n: number): T[] {
  if (rows.length <= n) return [...rows];
  const out: T[] = [];
  const step = rows.length / n;
  for (let i = 0; i < n; i++) out.push(rows[Math.floor(i * step)]);
  return out;
}
