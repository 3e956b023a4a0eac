import {
  LATENCY_RELATIVE_ACCURACY,
  LatencySketch,
  QUANTILE_LEVELS,
  sameAccuracy,
  type LatencySketchData,
} from './latency-sketch.js';

/**
 * ClickHouse's `quantilesDD(0.005, …)` state read in JavaScript, and a dense sketch that merges such states fast and
 * answers what `quantilesDDMerge(0.005, …)` answers for them (the rank rule and reported values of `LatencySketch`).
 *
 * The state's bytes, as ClickHouse 26.x writes them (src/AggregateFunctions/DDSketch.h `serialize`,
 * DDSketch/Mapping.h, DDSketch/Store.h, DDSketch/DDSketchEncoding.h; the DataDog DDSketch protobuf layout):
 *   0x02                  index mapping, logarithmic; then gamma and the index offset, two float64 little-endian
 *   0x01  <store>         the positive store
 *   0x03  <store>         the negative store (mirrored: keys of −v)
 *   0x04                  the zero count; then a float64 little-endian (plain, despite the flag's "VarFloat" name)
 * A store is one encoding byte, then
 *   0x0c (contiguous counts): uvarint n, varint first key, varint key step, n float64 counts;
 *   0x04 (index deltas and counts): uvarint n, n × (varint key delta from the previous key (from 0), float64 count).
 * ClickHouse writes whichever is smaller (dense when the empty bins inside the key range cost no more than 2 bytes
 * per non-empty bin). uvarint is LEB128; varint is ZigZag then LEB128 (ClickHouse `writeVarInt`).
 * The reported value of a key uses the α the aggregate was declared with (the mapping's deserialisation keeps it and
 * recomputes only the multiplier from gamma), so a state is decoded for one α and refused if its gamma differs.
 */

/** Bins of one store: `counts[i]` is the count of key `first + i` (zero for keys in the range with none). */
export interface DDStateStore {
  first: number;
  counts: Float64Array;
}

export interface DDState {
  zeros: number;
  positive: DDStateStore;
  negative: DDStateStore;
  /** Total count: positive + negative + zeros. */
  count: number;
}

const EMPTY = new Float64Array(0);
const FLAG_MAPPING_LOG = 0x02;
const FLAG_POSITIVE = 0x01;
const FLAG_NEGATIVE = 0x03;
const FLAG_ZERO_COUNT = 0x04;
const BINS_CONTIGUOUS = 0x0c;
const BINS_DELTAS_AND_COUNTS = 0x04;

export class DDStateError extends Error {
  constructor(message: string) {
    super(`quantilesDD state: ${message}`);
    this.name = 'DDStateError';
  }
}

/** Reads one state's bytes; `view` shares `bytes`' memory. */
class Cursor {
  pos = 0;
  private readonly view: DataView;
  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  byte(): number {
    if (this.pos >= this.bytes.length) throw new DDStateError('truncated');
    return this.bytes[this.pos++];
  }
  float64(): number {
    if (this.pos + 8 > this.bytes.length) throw new DDStateError('truncated');
    const v = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }
  uvarint(): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      const b = this.byte();
      result += (b & 0x7f) * scale;
      if (b < 0x80) return result;
      scale *= 128;
    }
    throw new DDStateError('varint too long');
  }
  /** ZigZag: 2n for n ≥ 0, −2n − 1 for n < 0. Keys and deltas are C++ ints, well inside 2^53. */
  varint(): number {
    const u = this.uvarint();
    return u % 2 === 0 ? u / 2 : -(u + 1) / 2;
  }
}

function readStore(c: Cursor): DDStateStore & { count: number } {
  const encoding = c.byte();
  if (encoding === BINS_CONTIGUOUS) {
    const n = c.uvarint();
    const first = c.varint();
    const step = c.varint();
    if (n === 0) return { first: 0, counts: EMPTY, count: 0 };
    if (step !== 1) {
      // ClickHouse writes step 1; any other step is still a valid encoding: spread it.
      const keys: number[] = [];
      const counts: number[] = [];
      for (let i = 0; i < n; i++) {
        keys.push(first + i * step);
        counts.push(c.float64());
      }
      return fromPairs(keys, counts);
    }
    const counts = new Float64Array(n);
    let count = 0;
    for (let i = 0; i < n; i++) count += counts[i] = c.float64();
    return { first, counts, count };
  }
  if (encoding === BINS_DELTAS_AND_COUNTS) {
    const n = c.uvarint();
    const keys: number[] = [];
    const counts: number[] = [];
    let key = 0;
    for (let i = 0; i < n; i++) {
      key += c.varint();
      keys.push(key);
      counts.push(c.float64());
    }
    return fromPairs(keys, counts);
  }
  throw new DDStateError(`unknown bin encoding 0x${encoding.toString(16)}`);
}

function fromPairs(keys: number[], counts: number[]): DDStateStore & { count: number } {
  if (keys.length === 0) return { first: 0, counts: EMPTY, count: 0 };
  let lo = keys[0];
  let hi = keys[0];
  for (const k of keys) {
    if (k < lo) lo = k;
    if (k > hi) hi = k;
  }
  const dense = new Float64Array(hi - lo + 1);
  let count = 0;
  keys.forEach((k, i) => {
    dense[k - lo] += counts[i];
    count += counts[i];
  });
  return { first: lo, counts: dense, count };
}

const gammaOf = (alpha: number) => (1 + alpha) / (1 - alpha);

/**
 * Decode one `quantilesDD(α, …)` state (its bytes, e.g. `base64Encode(toString(state))` decoded). Throws a
 * `DDStateError` on bytes that are not such a state, or a state of another α.
 */
export function decodeDDState(
  bytes: Uint8Array,
  relativeAccuracy: number = LATENCY_RELATIVE_ACCURACY,
): DDState {
  const c = new Cursor(bytes);
  if (c.byte() !== FLAG_MAPPING_LOG) throw new DDStateError('no logarithmic index mapping');
  const gamma = c.float64();
  const offset = c.float64();
  if (gamma !== gammaOf(relativeAccuracy))
    throw new DDStateError(`gamma ${gamma} is not that of relative accuracy ${relativeAccuracy}`);
  if (offset !== 0) throw new DDStateError(`index offset ${offset} is not 0`);
  if (c.byte() !== FLAG_POSITIVE) throw new DDStateError('no positive store');
  const positive = readStore(c);
  if (c.byte() !== FLAG_NEGATIVE) throw new DDStateError('no negative store');
  const negative = readStore(c);
  if (c.byte() !== FLAG_ZERO_COUNT) throw new DDStateError('no zero count');
  const zeros = c.float64();
  if (c.pos !== bytes.length) throw new DDStateError(`${bytes.length - c.pos} bytes after the state`);
  return {
    zeros,
    positive: { first: positive.first, counts: positive.counts },
    negative: { first: negative.first, counts: negative.counts },
    count: positive.count + negative.count + zeros,
  };
}

/** A decoded state as a `LatencySketch` (answers what `quantilesDDMerge` answers for that state alone). */
export function latencySketchFromState(
  state: DDState,
  relativeAccuracy: number = LATENCY_RELATIVE_ACCURACY,
): LatencySketch {
  const pairs = (s: DDStateStore): [number, number][] => {
    const out: [number, number][] = [];
    s.counts.forEach((n, i) => n !== 0 && out.push([s.first + i, n]));
    return out;
  };
  return LatencySketch.fromJSON({
    relative_accuracy: relativeAccuracy,
    zero_count: state.zeros,
    positive: pairs(state.positive),
    negative: pairs(state.negative),
  });
}

/** One growable store of dense bins keyed by offset from `first`. */
class DenseStore {
  first = 0;
  bins: Float64Array = EMPTY;
  lo = Infinity; // lowest key with a count
  hi = -Infinity; // highest key with a count
  count = 0;

  /** `margin`: the least room left on either side when the bins grow. */
  constructor(private readonly margin: number) {}

  clear(): void {
    if (this.count !== 0) this.bins.fill(0, this.lo - this.first, this.hi - this.first + 1);
    this.lo = Infinity;
    this.hi = -Infinity;
    this.count = 0;
  }

  add(s: DDStateStore): void {
    const n = s.counts.length;
    if (n === 0) return;
    const last = s.first + n - 1;
    if (s.first < this.first || last >= this.first + this.bins.length) this.grow(s.first, last);
    const at = s.first - this.first;
    const bins = this.bins;
    const src = s.counts;
    let added = 0;
    for (let i = 0; i < n; i++) {
      bins[at + i] += src[i];
      added += src[i];
    }
    if (added === 0) return;
    // The state's own range (its end bins are non-zero as ClickHouse writes them; an all-zero edge is harmless).
    if (s.first < this.lo) this.lo = s.first;
    if (last > this.hi) this.hi = last;
    this.count += added;
  }

  addKey(key: number, count: number): void {
    if (key < this.first || key >= this.first + this.bins.length) this.grow(key, key);
    this.bins[key - this.first] += count;
    if (key < this.lo) this.lo = key;
    if (key > this.hi) this.hi = key;
    this.count += count;
  }

  /** Add `[key, count]` pairs (any order). */
  addPairs(pairs: readonly (readonly [number, number])[]): void {
    for (const [key, count] of pairs) if (count > 0) this.addKey(key, count);
  }

  /** The bins with counts as `[key, count]` pairs, keys ascending (LatencySketch#toJSON's form). */
  pairs(): [number, number][] {
    const out: [number, number][] = [];
    for (let k = this.lo; k <= this.hi; k++) {
      const c = this.bins[k - this.first];
      if (c > 0) out.push([k, c]);
    }
    return out;
  }

  /** Add another store's bins. */
  addStore(o: DenseStore): void {
    if (o.count === 0) return;
    if (o.lo < this.first || o.hi >= this.first + this.bins.length) this.grow(o.lo, o.hi);
    const bins = this.bins;
    const src = o.bins;
    const shift = o.first - this.first;
    for (let i = o.lo - o.first; i <= o.hi - o.first; i++) bins[i + shift] += src[i];
    if (o.lo < this.lo) this.lo = o.lo;
    if (o.hi > this.hi) this.hi = o.hi;
    this.count += o.count;
  }

  /** Room for [lo, hi] and then some: the span at least doubles, so a sketch grows a few times, not per merge. */
  private grow(lo: number, hi: number): void {
    const has = this.bins.length > 0;
    const from = has ? Math.min(lo, this.first) : lo;
    const to = has ? Math.max(hi, this.first + this.bins.length - 1) : hi;
    const margin = Math.max(this.margin, has ? this.bins.length : 0);
    const next = new Float64Array(to - from + 1 + 2 * margin);
    if (has) next.set(this.bins, this.first - (from - margin));
    this.bins = next;
    this.first = from - margin;
  }

  /** The bins with counts, as a decoded state's store (a copy). */
  toStore(): DDStateStore {
    if (this.count === 0) return { first: 0, counts: EMPTY };
    return { first: this.lo, counts: this.bins.slice(this.lo - this.first, this.hi - this.first + 1) };
  }

  /** ClickHouse's DDSketchDenseStore::keyAtRank over the bins from the lowest key up. */
  keyAtRank(rank: number, lower: boolean): number {
    const bins = this.bins;
    let running = 0;
    for (let k = this.lo; k <= this.hi; k++) {
      running += bins[k - this.first];
      if ((lower && running > rank) || (!lower && running >= rank + 1)) return k;
    }
    return this.hi;
  }
}

/**
 * A sketch to merge many decoded states (or sketches sent as data, or other dense sketches) into, as
 * `quantilesDDMerge` merges them: bins in dense typed arrays keyed by offset (a merge is one loop of additions over
 * the state's key range, nothing allocated once the bins span it), quantiles by ClickHouse's rank rule (DDSketch.h
 * `get`), values as `LatencySketch.value`. Reusable: `clear()` keeps the arrays.
 */
export class DenseLatencySketch {
  private readonly positive: DenseStore;
  private readonly negative: DenseStore;
  private zeros = 0;
  private readonly values: LatencySketch;

  /**
   * `margin`: bins kept free on either side when a store grows (256 by default: few regrowths for a merge of many
   * states; a small one for the many small sketches of a live window).
   */
  constructor(
    relativeAccuracy: number = LATENCY_RELATIVE_ACCURACY,
    { margin = 256 }: { margin?: number } = {},
  ) {
    this.values = new LatencySketch(relativeAccuracy);
    this.positive = new DenseStore(margin);
    this.negative = new DenseStore(margin);
  }

  get relativeAccuracy(): number {
    return this.values.relativeAccuracy;
  }

  get count(): number {
    return this.positive.count + this.negative.count + this.zeros;
  }

  clear(): this {
    this.positive.clear();
    this.negative.clear();
    this.zeros = 0;
    return this;
  }

  merge(state: DDState): this {
    this.positive.add(state.positive);
    this.negative.add(state.negative);
    this.zeros += state.zeros;
    return this;
  }

  /** Count one value, as `LatencySketch#add` does. */
  add(value: number): this {
    const store = this.values.storeOf(value);
    if (store === 1) this.positive.addKey(this.values.key(value), 1);
    else if (store === -1) this.negative.addKey(this.values.key(-value), 1);
    else this.zeros++;
    return this;
  }

  /** As plain data, the form `LatencySketch#toJSON` sends and `mergeJSON` takes. */
  toJSON(): LatencySketchData {
    return {
      relative_accuracy: this.relativeAccuracy,
      zero_count: this.zeros,
      positive: this.positive.pairs(),
      negative: this.negative.pairs(),
    };
  }

  /** Add a sketch sent as data (`LatencySketch#toJSON`), as `LatencySketch#mergeJSON` does. */
  mergeJSON(data: LatencySketchData): this {
    sameAccuracy(this.relativeAccuracy, data.relative_accuracy);
    this.positive.addPairs(data.positive);
    this.negative.addPairs(data.negative);
    this.zeros += data.zero_count;
    return this;
  }

  /** Add another dense sketch of the same relative accuracy. */
  mergeSketch(other: DenseLatencySketch): this {
    sameAccuracy(this.relativeAccuracy, other.relativeAccuracy);
    this.positive.addStore(other.positive);
    this.negative.addStore(other.negative);
    this.zeros += other.zeros;
    return this;
  }

  /** The quantile at `level` as ClickHouse's quantilesDD(Merge) reports it; NaN when empty. */
  quantile(level: number): number {
    const total = this.count;
    if (!(level >= 0 && level <= 1) || total === 0) return NaN;
    const rank = level * (total - 1);
    const negatives = this.negative.count;
    if (rank < negatives) return -this.values.value(this.negative.keyAtRank(negatives - rank - 1, false));
    if (rank < this.zeros + negatives) return 0;
    return this.values.value(this.positive.keyAtRank(rank - this.zeros - negatives, true));
  }

  /**
   * The quantiles at `levels` (default p50, p90, p95, p99); null for an empty sketch. Ascending levels that fall in
   * the positive store (every latency but zeros) are found in one pass over its bins.
   */
  quantiles(levels: readonly number[] = QUANTILE_LEVELS): (number | null)[] {
    const total = this.count;
    if (total === 0) return levels.map(() => null);
    const below = this.zeros + this.negative.count;
    const out: (number | null)[] = new Array<number | null>(levels.length);
    const store = this.positive;
    let k = store.lo;
    let running = 0;
    let passed = 0; // the highest level the pass has reached
    for (let i = 0; i < levels.length; i++) {
      const level = levels[i];
      const rank = level * (total - 1);
      if (!(level >= passed && level <= 1) || rank < below) {
        out[i] = this.quantile(level);
        continue;
      }
      // The first bin whose running count exceeds the rank (DDSketchDenseStore::keyAtRank, lower): the pass goes on
      // from where the previous level stopped.
      passed = level;
      const r = rank - below;
      while (k <= store.hi && !(running + store.bins[k - store.first] > r)) {
        running += store.bins[k - store.first];
        k++;
      }
      out[i] = this.values.value(k <= store.hi ? k : store.hi);
    }
    return out;
  }

  /** The merged counts as a decoded state, to be merged elsewhere (`merge`). */
  toState(): DDState {
    return {
      zeros: this.zeros,
      positive: this.positive.toStore(),
      negative: this.negative.toStore(),
      count: this.count,
    };
  }
}
