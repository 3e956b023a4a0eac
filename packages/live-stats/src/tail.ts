/**
 * Which tail rows are new. The tail re-reads a short look-back on every poll (rows arrive out of `start_time`
 * order); the cursor remembers the rows it has handed out inside that look-back and forgets older ones.
 */
export class TailCursor {
  private seen = new Map<string, number>();

  /** Rows not seen before, oldest first. `rows` carry `start_time_us`; `keyOf` identifies a row. */
  fresh<T extends { start_time_us: number | string }>(rows: readonly T[], keyOf: (row: T) => string): T[] {
    const out: T[] = [];
    for (const row of rows) {
      const key = keyOf(row);
      if (this.seen.has(key)) continue;
      this.seen.set(key, Number(row.start_time_us));
      out.push(row);
    }
    return out.sort((a, b) => Number(a.start_time_us) - Number(b.start_time_us));
  }

  /** Forget rows that started before `us` (they are out of the look-back and cannot come back). */
  forgetBefore(us: number): void {
    for (const [k, t] of this.seen) if (t < us) this.seen.delete(k);
  }

  get size(): number {
    return this.seen.size;
  }
}

/** A row identity good enough for de-duplication inside a few seconds of look-back. */
export function tailRowKey(row: Record<string, unknown>): string {
  return [
    row.start_time_us,
    row.request_id,
    row.node_id,
    row.downstream_remote_address,
    row.downstream_remote_port,
    row.duration_ms,
    row.path,
  ].join('\u0001');
}

/**
 * Per-socket rate limit for the tail: at most `perSecond` rows a second (token bucket, burst = perSecond);
 * what does not fit is counted and reported as one "N skipped" marker with the next batch.
 */
export class TailLimiter {
  private tokens: number;
  private last: number;
  private skipped = 0;
  constructor(
    readonly perSecond: number,
    now: number,
  ) {
    this.tokens = perSecond;
    this.last = now;
  }

  /** The rows to send now and how many were skipped since the last marker (0 if none). */
  take<T>(rows: readonly T[], now: number): { rows: T[]; skipped: number } {
    this.tokens = Math.min(this.perSecond, this.tokens + ((now - this.last) / 1000) * this.perSecond);
    this.last = now;
    const n = Math.max(0, Math.min(rows.length, Math.floor(this.tokens)));
    this.tokens -= n;
    this.skipped += rows.length - n;
    // Keep the newest rows when some must go: a live tail is about now.
    const kept = rows.slice(rows.length - n);
    let skipped = 0;
    if (this.skipped > 0 && (kept.length > 0 || rows.length === 0)) {
      skipped = this.skipped;
      this.skipped = 0;
    }
    return { rows: kept, skipped };
  }
}
