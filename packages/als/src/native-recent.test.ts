import { describe, expect, it } from 'vitest';
import { FIXTURE_PATH_TEMPLATER, makeTrafficMessage } from '../../../test/fixtures/als.js';
import { AccessLogDecoder, type StreamState } from './decoder.js';
import type { NativeData } from './native-block.js';
import { RecentRows } from './native-recent.js';
import { readNative, type Row } from './native-reader.js';

/** `n` decoded messages of 40 entries each: one Native block per message, as the collector's decoders make them. */
function blocks(n: number): NativeData[] {
  const decoder = new AccessLogDecoder({ pathTemplater: FIXTURE_PATH_TEMPLATER });
  const state: StreamState = {};
  return Array.from({ length: n }, (_, i) => {
    const start = new Date(Date.UTC(2026, 0, 1, 0, 0, i));
    decoder.decode(makeTrafficMessage({ entries: 40, identifier: i === 0, start, seed: 7 + i }).bytes, state);
    return decoder.takeHttp();
  });
}

describe('RecentRows', () => {
  const at = (i: number): [Buffer, number, Uint32Array | undefined] => [
    data[i].data,
    data[i].rows,
    data[i].streams,
  ];
  // Half the blocks with the writer's stream ranges, half without: both ways read the same rows.
  const data = blocks(6).map((b, i) => (i % 2 === 0 ? b : { ...b, streams: undefined }));
  const all = data.map((b) => readNative(b.data));

  it('hands a reader the rows added after its cursor, oldest first, and nothing twice', () => {
    const recent = new RecentRows();
    recent.add(...at(0));
    const cursor = recent.cursor;
    recent.add(...at(1));
    recent.add(...at(2));
    const first = recent.read(cursor, [], 1_000);
    expect(first.rows).toEqual([...all[1], ...all[2]]);
    expect(recent.read(first.cursor, [], 1_000).rows).toEqual([]);
    recent.add(...at(3));
    expect(recent.read(first.cursor, [], 1_000).rows).toEqual(all[3]);
  });

  it('keeps the newest rows when more came than the limit', () => {
    const recent = new RecentRows();
    for (const b of data) recent.add(b.data, b.rows, b.streams);
    const read = recent.read(0, [], 50);
    expect(read.rows).toEqual(all.flat().slice(-50));
    expect(read.cursor).toBe(6);
  });

  it('filters on String columns as bytes, every clause and any of its columns, reading whole rows only for the matches', () => {
    const recent = new RecentRows();
    for (const b of data) recent.add(b.data, b.rows, b.streams);
    const rows = all.flat();
    const route = String(rows[0].route_name);
    const other = String(rows.find((r) => r.route_name !== route)!.route_name);
    const authority = String(rows[0].authority);
    const expected = rows.filter((r: Row) => r.route_name === route);
    expect(expected.length).toBeGreaterThan(5);
    expect(expected.length).toBeLessThan(240);
    const byRoute = [{ columns: ['route_name'], values: [route] }];
    expect(recent.read(0, byRoute, 10_000).rows).toEqual(expected);
    expect(recent.read(0, byRoute, 5).rows).toEqual(expected.slice(-5));
    // Any value of a clause; any column of a clause; every clause.
    expect(recent.read(0, [{ columns: ['route_name'], values: [route, other] }], 10_000).rows).toEqual(
      rows.filter((r) => r.route_name === route || r.route_name === other),
    );
    expect(recent.read(0, [{ columns: ['authority', 'route_name'], values: [route] }], 10_000).rows).toEqual(
      expected,
    );
    expect(
      recent.read(
        0,
        [
          { columns: ['route_name'], values: [route, other] },
          { columns: ['authority'], values: [authority] },
        ],
        10_000,
      ).rows,
    ).toEqual(
      rows.filter((r) => (r.route_name === route || r.route_name === other) && r.authority === authority),
    );
    // A value that is a prefix of the stored one is not it.
    expect(recent.read(0, [{ columns: ['route_name'], values: [route.slice(0, -1)] }], 10_000).rows).toEqual(
      [],
    );
    expect(() => recent.read(0, [{ columns: ['nope'], values: ['x'] }], 10)).toThrow(/no String column nope/);
  });

  it('forgets blocks older than keepMs and beyond maxRows', () => {
    let now = 0;
    const recent = new RecentRows({ keepMs: 1_000, maxRows: 100, now: () => now });
    recent.add(...at(0));
    now = 600;
    recent.add(...at(1));
    expect(recent.size).toBe(80);
    now = 1_200; // the first block is 1.2 s old
    recent.add(...at(2));
    expect(recent.size).toBe(80);
    expect(recent.read(0, [], 1_000).rows).toEqual([...all[1], ...all[2]]);
    recent.add(...at(3)); // 120 rows > 100: the oldest block goes
    expect(recent.size).toBe(80);
    expect(recent.read(0, [], 1_000).rows).toEqual([...all[2], ...all[3]]);
  });
});
