/**
 * The last seconds of decoded rows, as the Native blocks the decoders made (one per ALS message), for the live tail
 * of the process that decodes them: a tail reads the rows that arrived since its last look straight from here,
 * within a tick of their arrival, instead of waiting for them to be batched into ClickHouse and read back.
 *
 * Blocks are kept by reference (they are the same buffers the write-ahead log batches), for `keepMs` and at most
 * `maxRows` rows. Reading costs nothing until someone reads: then only the key columns a filter needs are read from
 * the blocks since the reader's cursor, and whole rows only for the newest ones that match.
 */
import { readNative, type Row } from './native-reader.js';
import { nativeMatchRows, selectNativeRows, type StringMatch } from './native-select.js';

export interface RecentRowsOptions {
  /** How long a block is kept after it arrived. */
  keepMs?: number;
  /** Most rows kept (the oldest blocks go first). */
  maxRows?: number;
  now?: () => number;
}

interface Block {
  seq: number;
  at: number;
  data: Buffer;
  rows: number;
  streams?: Uint32Array;
}

export interface RecentRowsRead {
  /** The matching rows, oldest first (at most `limit`: the newest ones). */
  rows: Row[];
  /** Pass it to the next read: rows after it are the new ones. */
  cursor: number;
}

export class RecentRows {
  private readonly blocks: Block[] = [];
  private readonly keepMs: number;
  private readonly maxRows: number;
  private readonly now: () => number;
  private seq = 0;
  private rows = 0;

  constructor(options: RecentRowsOptions = {}) {
    this.keepMs = options.keepMs ?? 5_000;
    this.maxRows = options.maxRows ?? 200_000;
    this.now = options.now ?? Date.now;
  }

  /** The cursor of everything added so far: a reader starting now passes it to see only what comes next. */
  get cursor(): number {
    return this.seq;
  }

  /** Rows held now. */
  get size(): number {
    return this.rows;
  }

  /** A decoded block; `streams`, its stream ranges when the writer gave them (reading its key columns is then cheaper). */
  add(data: Buffer, rows: number, streams?: Uint32Array): void {
    if (rows === 0) return;
    const now = this.now();
    this.blocks.push({ seq: ++this.seq, at: now, data, rows, streams });
    this.rows += rows;
    while (this.blocks.length > 0 && (this.rows > this.maxRows || now - this.blocks[0].at > this.keepMs)) {
      this.rows -= this.blocks.shift()!.rows;
    }
  }

  /**
   * Rows of the blocks added after `cursor` that pass every clause of `match` (none: every row), at most the newest
   * `limit` of them, oldest first. Only the columns `match` names are read to find them (as bytes), and whole rows
   * only for the ones handed back.
   */
  read(cursor: number, match: readonly StringMatch[], limit: number): RecentRowsRead {
    const picked: Row[][] = [];
    let n = 0;
    for (let b = this.blocks.length - 1; b >= 0 && n < limit; b--) {
      const block = this.blocks[b];
      if (block.seq <= cursor) break;
      const room = limit - n;
      let wanted: number[];
      if (match.length > 0) {
        wanted = nativeMatchRows(block.data, match, block.streams);
        if (wanted.length > room) wanted = wanted.slice(wanted.length - room);
      } else {
        const from = Math.max(0, block.rows - room);
        wanted = Array.from({ length: block.rows - from }, (_, i) => from + i);
      }
      if (wanted.length === 0) continue;
      picked.push(
        readNative(
          wanted.length === block.rows ? block.data : selectNativeRows(block.data, wanted, block.streams),
        ),
      );
      n += wanted.length;
    }
    return { rows: picked.reverse().flat(), cursor: this.seq };
  }
}
