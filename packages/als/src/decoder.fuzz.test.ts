/**
 * Property-based fuzzing of the decoder (fast-check): random bytes, random protobuf-shaped garbage, and
 * mutations of the real fixtures (bit flips, truncations, length fields that lie, nested garbage, huge
 * varints). For every input the decoder either throws a DecodeError and keeps nothing of the message, or
 * writes Native blocks that read back with every column of its declared type and length, with no more rows
 * than the limit (and than 2 input bytes per entry allow) and no more bytes than the input and the limits
 * account for.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ALL_FIXTURES,
  FIXTURE_PATH_TEMPLATER,
  emptyEntriesMessage,
  makeTrafficMessage,
} from '../../../test/fixtures/als.js';
import { HTTP_REQUEST_COLUMNS, TCP_CONNECTION_COLUMNS, type ColumnSpec } from './columns.js';
import {
  AccessLogDecoder,
  DecodeError,
  DEFAULT_DECODE_LIMITS,
  RESPONSE_FLAG_CODES,
  type DecodeLimits,
} from './decoder.js';
import { nativeType } from './native-block.js';
import { readNativeBlocks, type RowValue } from './native-reader.js';

const RUNS = 400;

/** Small limits, so that mutated fixtures hit them too. */
const LIMITS: DecodeLimits = {
  ...DEFAULT_DECODE_LIMITS,
  maxEntriesPerMessage: 40,
  maxStringBytes: 300,
  maxIdentifierBytes: 120,
};
const IDENTITY = { nodeId: 'fuzz-node', nodeCluster: 'fuzz-cluster', logName: 'fuzz' };

/**
 * Bytes one row may take beyond the input bytes it copies: fixed-width columns, LEB128 string lengths,
 * the 28 response-flag codes, enum names, cipher names, address punctuation and ports.
 */
const ROW_OVERHEAD_BYTES = 512;

const SEEDS: Buffer[] = [
  ...ALL_FIXTURES.map((f) => f.bytes),
  makeTrafficMessage({ entries: 12, identifier: true, nodeExtensions: 20, seed: 7 }).bytes,
  emptyEntriesMessage(30),
];

function varint(n: bigint): number[] {
  const out: number[] = [];
  while (n >= 0x80n) {
    out.push(Number(n & 0x7fn) | 0x80);
    n >>= 7n;
  }
  out.push(Number(n));
  return out;
}

// ---- inputs --------------------------------------------------------------------------------------------
type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'lie'; at: number; value: bigint }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'hugeVarint'; at: number; bytes: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  // A varint (a length, a tag) replaced by another value: lengths that lie in both directions.
  fc.record({
    kind: fc.constant('lie' as const),
    at: fc.nat(),
    value: fc.oneof(fc.bigInt(0n, 300n), fc.bigInt(0n, 2n ** 32n), fc.bigInt(0n, 2n ** 64n - 1n)),
  }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ maxLength: 40 }) }),
  // 10-byte and longer varints (continuation bits all set).
  fc.record({
    kind: fc.constant('hugeVarint' as const),
    at: fc.nat(),
    bytes: fc.integer({ min: 9, max: 14 }),
  }),
);

function mutate(seed: Buffer, mutations: Mutation[]): Buffer {
  let b = Buffer.from(seed);
  for (const m of mutations) {
    if (b.length === 0) break;
    const at = m.at % b.length;
    switch (m.kind) {
      case 'flip':
        b[at] ^= 1 << m.bit;
        break;
      case 'truncate':
        b = b.subarray(0, at);
        break;
      case 'lie': {
        // Find the end of the varint starting at `at` and splice the new value in its place.
        let end = at;
        while (end < b.length && b[end] & 0x80) end++;
        b = Buffer.concat([
          b.subarray(0, at),
          Buffer.from(varint(m.value)),
          b.subarray(Math.min(end + 1, b.length)),
        ]);
        break;
      }
      case 'insert':
        b = Buffer.concat([b.subarray(0, at), m.bytes, b.subarray(at)]);
        break;
      case 'hugeVarint': {
        const v = Buffer.alloc(m.bytes, 0xff);
        v[v.length - 1] = 0x01;
        b = Buffer.concat([b.subarray(0, at), v, b.subarray(at)]);
        break;
      }
    }
  }
  return b;
}

const mutatedFixture = fc
  .tuple(fc.constantFrom(...SEEDS), fc.array(mutation, { minLength: 1, maxLength: 6 }))
  .map(([seed, ms]) => mutate(seed, ms));

/** Protobuf-shaped garbage: fields of every wire type, length-delimited ones nesting more garbage. */
const { field: garbageField } = fc.letrec<{ field: number[]; fields: number[] }>((tie) => ({
  field: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc
      .tuple(fc.integer({ min: 1, max: 40 }), fc.bigInt(0n, 2n ** 64n - 1n))
      .map(([f, v]) => [...varint(BigInt(f << 3)), ...varint(v)]),
    fc
      .tuple(fc.integer({ min: 1, max: 40 }), fc.uint8Array({ minLength: 8, maxLength: 8 }))
      .map(([f, v]) => [...varint(BigInt((f << 3) | 1)), ...v]),
    fc
      .tuple(fc.integer({ min: 1, max: 40 }), fc.uint8Array({ minLength: 4, maxLength: 4 }))
      .map(([f, v]) => [...varint(BigInt((f << 3) | 5)), ...v]),
    fc
      .tuple(fc.integer({ min: 1, max: 40 }), fc.uint8Array({ maxLength: 30 }))
      .map(([f, v]) => [...varint(BigInt((f << 3) | 2)), ...varint(BigInt(v.length)), ...v]),
    fc
      .tuple(fc.integer({ min: 1, max: 40 }), tie('fields'))
      .map(([f, inner]) => [...varint(BigInt((f << 3) | 2)), ...varint(BigInt(inner.length)), ...inner]),
  ),
  fields: fc.array(tie('field'), { maxLength: 6 }).map((fs) => fs.flat()),
}));
/** Garbage under the real top-level fields: identifier (1), http_logs (2), tcp_logs (3) holding entries (1). */
const nestedGarbage = fc
  .tuple(fc.constantFrom(1, 2, 3), fc.array(fc.array(garbageField, { maxLength: 8 }), { maxLength: 6 }))
  .map(([top, entries]) => {
    const body = entries.flatMap((fields) => {
      const entry = fields.flat();
      return [0x0a, ...varint(BigInt(entry.length)), ...entry];
    });
    return Buffer.from([...varint(BigInt((top << 3) | 2)), ...varint(BigInt(body.length)), ...body]);
  });

const anyInput = fc.oneof(
  fc.uint8Array({ maxLength: 600 }).map((b) => Buffer.from(b)),
  mutatedFixture,
  nestedGarbage,
  fc.array(garbageField, { maxLength: 10 }).map((fs) => Buffer.from(fs.flat())),
);

// ---- invariants -----------------------------------------------------------------------------------------
const DATETIME = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$|^-?\d+ us$/;
const FLAGS = new Set(RESPONSE_FLAG_CODES);

function checkValue(type: string, v: RowValue, where: string): void {
  if (type.startsWith('Nullable(')) {
    if (v !== null) checkValue(type.slice(9, -1), v, where);
    return;
  }
  if (type.startsWith('Array(')) {
    expect(Array.isArray(v), where).toBe(true);
    for (const e of v as RowValue[]) {
      checkValue(type.slice(6, -1), e, where);
      expect(FLAGS.has(e as string), `${where}: ${String(e)} is no response flag`).toBe(true);
    }
    return;
  }
  switch (type) {
    case 'String':
      expect(typeof v, where).toBe('string');
      return;
    case 'UInt16':
      expect(Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 0xffff, `${where}: ${v}`).toBe(
        true,
      );
      return;
    case 'UInt64':
      expect(typeof v === 'number' && v >= 0, `${where}: ${v}`).toBe(true);
      return;
    case 'Float64':
      expect(typeof v, where).toBe('number');
      return;
    default:
      expect(type, where).toMatch(/^DateTime64\(6/);
      expect(v, where).toMatch(DATETIME);
  }
}

/** Byte length of each String value, at any depth (the reader gives JS strings back). */
function maxStringBytes(values: RowValue[]): number {
  let max = 0;
  for (const v of values) {
    if (typeof v === 'string') max = Math.max(max, Buffer.byteLength(v));
    else if (Array.isArray(v)) max = Math.max(max, maxStringBytes(v));
  }
  return max;
}

/** The block reads back whole: the declared columns, each with `rows` values of its type. */
function checkBlock(data: Buffer, rows: number, columns: readonly ColumnSpec[]): void {
  const blocks = readNativeBlocks(data);
  expect(blocks).toHaveLength(1);
  const [block] = blocks;
  expect(block.rows).toBe(rows);
  expect(block.columns.map((c) => [c.name, c.type])).toEqual(
    columns.map((c) => [c.name, nativeType(c.type)]),
  );
  for (const col of block.columns) {
    expect(col.values, col.name).toHaveLength(rows);
    for (const v of col.values) checkValue(col.type, v, col.name);
    if (col.name === 'node_id' || col.name === 'node_cluster' || col.name === 'log_name') {
      // Replacement characters can make a JS string longer in UTF-8 than the bytes were: compare loosely.
      expect(maxStringBytes(col.values), col.name).toBeLessThanOrEqual(3 * LIMITS.maxIdentifierBytes);
    }
  }
}

const emptyBlockBytes = (() => {
  const d = new AccessLogDecoder({ pathTemplater: FIXTURE_PATH_TEMPLATER, limits: LIMITS });
  return { http: d.takeHttp().data.length, tcp: d.takeTcp().data.length };
})();

/** What the fuzzed inputs became, so a run proves it reached both the decoding and the refusing paths. */
const outcomes = new Map<string, number>();
const seen = (what: string) => outcomes.set(what, (outcomes.get(what) ?? 0) + 1);

/** Decodes `bytes` on a fresh decoder and checks every invariant. */
function checkDecode(bytes: Buffer): void {
  const decoder = new AccessLogDecoder({
    pathTemplater: FIXTURE_PATH_TEMPLATER,
    initialBufferBytes: 64,
    limits: LIMITS,
  });
  const state = { identity: { ...IDENTITY } };
  let result;
  try {
    result = decoder.decode(bytes, state);
  } catch (err) {
    // Only DecodeError, and nothing of the message kept.
    expect(err).toBeInstanceOf(DecodeError);
    seen((err as DecodeError).reason);
    expect(decoder.pendingHttpRows + decoder.pendingTcpRows).toBe(0);
    expect(decoder.pendingBytes).toBe(0);
    expect(state.identity).toEqual(IDENTITY);
    return;
  }
  const rows = result.http + result.tcp;
  seen(rows > 0 ? 'rows' : 'no_rows');
  expect(result.http === 0 || result.tcp === 0).toBe(true);
  expect(rows).toBeLessThanOrEqual(LIMITS.maxEntriesPerMessage);
  expect(rows).toBeLessThanOrEqual(bytes.length / 2); // an entry is at least a tag and a length
  const http = decoder.takeHttp();
  const tcp = decoder.takeTcp();
  expect([http.rows, tcp.rows]).toEqual([result.http, result.tcp]);
  checkBlock(http.data, http.rows, HTTP_REQUEST_COLUMNS);
  checkBlock(tcp.data, tcp.rows, TCP_CONNECTION_COLUMNS);
  // Bounded in bytes: input bytes are copied at most twice (path, path_template), three times over for
  // invalid UTF-8 in the template; the identifier strings once per row; plus a fixed overhead per row.
  const identityBytes = 3 * (LIMITS.maxIdentifierBytes + 2);
  const bound =
    emptyBlockBytes.http +
    emptyBlockBytes.tcp +
    4 * bytes.length +
    rows * (ROW_OVERHEAD_BYTES + identityBytes);
  expect(http.data.length + tcp.data.length).toBeLessThanOrEqual(bound);
  for (const s of readNativeBlocks(http.data)[0].columns.filter(
    (c) => c.type === 'String' && c.name === 'path',
  ))
    expect(maxStringBytes(s.values)).toBeLessThanOrEqual(3 * LIMITS.maxStringBytes);
}

describe('decoder fuzzing (fast-check)', () => {
  it('the seeds themselves decode and satisfy every invariant', () => {
    for (const seed of SEEDS.slice(0, -2)) {
      // The fixtures are real traffic: under these small limits some are refused, never crash.
      checkDecode(seed);
    }
  });

  it('mutated fixtures: bit flips, truncations, lying lengths, inserted bytes, huge varints', () => {
    fc.assert(
      fc.property(mutatedFixture, (bytes) => checkDecode(bytes)),
      { numRuns: RUNS, seed: 1 },
    );
  });

  it('protobuf-shaped garbage nested under the real top-level fields', () => {
    fc.assert(
      fc.property(nestedGarbage, (bytes) => checkDecode(bytes)),
      { numRuns: RUNS, seed: 2 },
    );
  });

  it('random bytes and random field sequences', () => {
    fc.assert(
      fc.property(anyInput, (bytes) => checkDecode(bytes)),
      { numRuns: RUNS },
    );
  });

  it('one decoder across many inputs: a refused message never disturbs the rows before it', () => {
    fc.assert(
      fc.property(fc.array(anyInput, { minLength: 1, maxLength: 8 }), (inputs) => {
        const decoder = new AccessLogDecoder({
          pathTemplater: FIXTURE_PATH_TEMPLATER,
          initialBufferBytes: 64,
          limits: LIMITS,
        });
        const state = { identity: { ...IDENTITY } };
        let http = 0;
        let tcp = 0;
        for (const bytes of inputs) {
          try {
            const r = decoder.decode(bytes, state);
            http += r.http;
            tcp += r.tcp;
          } catch (err) {
            expect(err).toBeInstanceOf(DecodeError);
          }
          expect([decoder.pendingHttpRows, decoder.pendingTcpRows]).toEqual([http, tcp]);
        }
        const h = decoder.takeHttp();
        const t = decoder.takeTcp();
        checkBlock(h.data, http, HTTP_REQUEST_COLUMNS);
        checkBlock(t.data, tcp, TCP_CONNECTION_COLUMNS);
      }),
      { numRuns: RUNS / 4, seed: 3 },
    );
  });
});
