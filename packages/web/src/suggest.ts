/**
 * "Did you mean": the known names closest to what was typed. Substring and prefix matches first (`frontend` ->
 * `frontend-canary`), then edit distance for typos, at most `max` names. Pure, unit-tested.
 */
export function suggest(typed: string, known: readonly string[], max = 3): string[] {
  const t = typed.toLowerCase();
  if (!t) return known.slice(0, max);
  const scored: { name: string; score: number }[] = [];
  for (const name of known) {
    if (!name) continue;
    const n = name.toLowerCase();
    let score: number;
    if (n === t) score = 0;
    else if (n.startsWith(t) || t.startsWith(n)) score = 1 + Math.abs(n.length - t.length) / 100;
    else if (n.includes(t) || t.includes(n)) score = 2 + Math.abs(n.length - t.length) / 100;
    else {
      const d = editDistance(t, n);
      if (d > Math.max(2, Math.floor(Math.max(t.length, n.length) / 3))) continue;
      score = 3 + d;
    }
    scored.push({ name, score });
  }
  return scored
    .sort((a, b) => a.score - b.score || a.name.localeCompare(b.name))
    .slice(0, max)
    .map((s) => s.name);
}

/** Levenshtein distance (insert, delete, substitute). */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++)
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}

/** `a`, `a or b`, `a, b or c` */
export function orList(names: readonly string[]): string {
  if (names.length <= 1) return names[0] ?? '';
  return `${names.slice(0, -1).join(', ')} or ${names[names.length - 1]}`;
}
