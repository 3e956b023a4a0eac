/**
 * The SQL console's pure parts (unit-tested): reading the streamed answer row by row, the default LIMIT, where an
 * error points in the user's text, the rows a scrolled grid shows, CSV/JSON for download.
 */

/**
 * Reads `POST /api/v1/sql`'s JSON answer as it streams: `{"data":[{…},{…}…],"meta":…,"rows":…,…}`. Rows come
 * out in batches as soon as their text is complete, so a large answer is parsed a piece at a time (the tab stays
 * responsive) and shown while it arrives. Strings, escapes and nested values are tracked, not guessed.
 */
export class JsonRowStream {
  private buf = '';
  private at = 0;
  private phase: 'head' | 'rows' | 'tail' = 'head';
  private depth = 0;
  private inString = false;
  private escaped = false;
  private rowStart = -1;
  private tail = '';

  /** Feed text; returns the rows completed by it. */
  push(text: string): Record<string, unknown>[] {
    if (this.phase === 'tail') {
      this.tail += text;
      return [];
    }
    this.buf += text;
    if (this.phase === 'head') {
      const m = /^\s*\{\s*"data"\s*:\s*\[/.exec(this.buf);
      if (!m) {
        if (this.buf.length > 64) throw new Error('The answer is not a streamed SQL result');
        return [];
      }
      this.phase = 'rows';
      this.at = m[0].length;
    }
    const rows: string[] = [];
    const b = this.buf;
    let i = this.at;
    for (; i < b.length; i++) {
      const c = b.charCodeAt(i);
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === 92 /* \ */) this.escaped = true;
        else if (c === 34 /* " */) this.inString = false;
        continue;
      }
      if (c === 34) this.inString = true;
      else if (c === 123 /* { */ || c === 91 /* [ */) {
        if (this.depth === 0) this.rowStart = i;
        this.depth++;
      } else if (c === 125 /* } */ || c === 93 /* ] */) {
        if (this.depth === 0) {
          // The end of the data array: what follows is the answer's other fields.
          this.phase = 'tail';
          this.tail = b.slice(i + 1);
          break;
        }
        this.depth--;
        if (this.depth === 0) {
          rows.push(b.slice(this.rowStart, i + 1));
          this.rowStart = -1;
        }
      }
    }
    // Keep only the unfinished row (everything before it has been scanned).
    if (this.phase === 'rows') {
      this.buf = this.rowStart >= 0 ? b.slice(this.rowStart) : '';
      if (this.rowStart >= 0) this.rowStart = 0;
      this.at = this.buf.length;
    } else this.buf = '';
    return rows.length ? (JSON.parse(`[${rows.join(',')}]`) as Record<string, unknown>[]) : [];
  }

  /** The answer's fields after `data` (meta, rows, truncated, message, statistics); call after the last push. */
  end<T>(): T {
    if (this.phase !== 'tail') throw new Error('The answer ended before its rows did');
    const t = this.tail.trim();
    return JSON.parse(`{${t.startsWith(',') ? t.slice(1) : t.replace(/^}/, '')}`) as T;
  }
}

/** Whether the statement ends with its own LIMIT (the outermost one, possibly with OFFSET or BY). */
export function hasLimit(sql: string): boolean {
  const text = stripComments(sql).trim().replace(/;\s*$/, '');
  return /\bLIMIT\s+\d+(\s*(,|OFFSET)\s*\d+)?(\s+WITH\s+TIES)?\s*$/i.test(text);
}

function stripComments(sql: string): string {
  return sql.replace(/--[^\n]*/g, '').replace(/\/\*[\s\S]*?\*\//g, '');
}

/** The statement with `LIMIT n` appended when it has none (shown in the editor: the user sees what runs). */
export function withDefaultLimit(sql: string, n: number): { sql: string; added: boolean } {
  if (hasLimit(sql)) return { sql, added: false };
  const body = sql.replace(/[\s;]+$/, '');
  return { sql: `${body}\nLIMIT ${n}`, added: true };
}

/** `… at line 2, column 7 …` in an error message -> the position in the text (0-based offset too). */
export function errorPosition(
  message: string,
  text: string,
): { line: number; column: number; offset: number } | undefined {
  const m = /at line (\d+), column (\d+)/.exec(message);
  if (!m) return undefined;
  const line = Number(m[1]);
  const column = Number(m[2]);
  const lines = text.split('\n');
  if (line < 1 || line > lines.length) return undefined;
  let offset = 0;
  for (let i = 0; i < line - 1; i++) offset += lines[i].length + 1;
  return { line, column, offset: offset + Math.min(column - 1, lines[line - 1].length) };
}

/** The text of the line an error points at and a caret under its column. */
export function caretLines(text: string, line: number, column: number): [string, string] {
  const src = text.split('\n')[line - 1] ?? '';
  return [src, `${' '.repeat(Math.max(0, column - 1))}^`];
}

/** Rows a scrolled grid of fixed row height draws: the visible ones and `overscan` either side. */
export function visibleRange(
  scrollTop: number,
  viewportHeight: number,
  rowHeight: number,
  total: number,
  overscan = 10,
): { start: number; end: number } {
  const first = Math.floor(Math.max(0, scrollTop) / rowHeight);
  const count = Math.ceil(viewportHeight / rowHeight);
  const start = Math.max(0, first - overscan);
  const end = Math.min(total, first + count + overscan);
  return { start, end: Math.max(start, end) };
}

const csvField = (v: unknown): string => {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

/** RFC 4180 CSV in pieces (a Blob takes them without one giant string). */
export function* csvPieces(
  columns: string[],
  rows: readonly Record<string, unknown>[],
  perPiece = 5000,
): Generator<string> {
  yield columns.map(csvField).join(',') + '\n';
  for (let s = 0; s < rows.length; s += perPiece) {
    let piece = '';
    for (let i = s; i < Math.min(rows.length, s + perPiece); i++)
      piece += columns.map((c) => csvField(rows[i][c])).join(',') + '\n';
    yield piece;
  }
}

/** JSON (an array of objects) in pieces. */
export function* jsonPieces(rows: readonly Record<string, unknown>[], perPiece = 5000): Generator<string> {
  yield '[';
  for (let s = 0; s < rows.length; s += perPiece) {
    const part = rows.slice(s, s + perPiece).map((r) => JSON.stringify(r));
    yield (s ? ',' : '') + part.join(',');
  }
  yield ']\n';
}

/** Column width in px for a ClickHouse type (the grid has fixed columns so that rows never jump). */
export function columnWidth(type: string, name: string): number {
  const t = type
    .replace(/^(Nullable|LowCardinality)\((.*)\)$/, '$2')
    .replace(/^(Nullable|LowCardinality)\((.*)\)$/, '$2');
  let w: number;
  if (/^(U?Int|Float|Decimal)/.test(t)) w = 110;
  else if (/^DateTime/.test(t)) w = 200;
  else if (/^Date/.test(t)) w = 110;
  else if (/^(Array|Map|Tuple)/.test(t)) w = 220;
  else if (/^UUID/.test(t)) w = 290;
  else w = 200;
  return Math.max(w, Math.min(260, name.length * 8 + 24));
}

export interface HistoryEntry {
  sql: string;
  at: number;
  rows?: number;
  ms?: number;
  error?: string;
}
/** The history after running `sql`: newest first, no duplicates, at most `max`. */
export function addToHistory(list: readonly HistoryEntry[], entry: HistoryEntry, max = 50): HistoryEntry[] {
  return [entry, ...list.filter((e) => e.sql.trim() !== entry.sql.trim())].slice(0, max);
}
