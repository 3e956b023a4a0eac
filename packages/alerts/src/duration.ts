import { parseDuration } from '@gatescope/query';

/**
 * An alerting duration (`15s`, `5m`, `1h`, `0s`) in milliseconds: the API's duration form, plus zero
 * (`for: 0s` fires on the first evaluation above the threshold). Undefined when the text is not one.
 */
export function parseAlertDuration(text: string): number | undefined {
  if (/^\s*0+[smhdw]?\s*$/.test(text)) return 0;
  return parseDuration(text);
}

/** Milliseconds back to the shortest exact duration text (`90000` -> `90s`, `300000` -> `5m`). */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  for (const [unit, size] of [
    ['w', 604_800_000],
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
  ] as const) {
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${Math.round(ms / 1000)}s`;
}
