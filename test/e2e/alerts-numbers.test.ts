/* eslint-disable @typescript-eslint/no-explicit-any -- the tests read JSON bodies (API answers, webhooks) */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Evaluator } from '@gatescope/alerts-service';
import { AlertStore, fingerprint, parseRule } from '@gatescope/alerts';
import { loadConfig } from '@gatescope/config';
import { startGatescope, type Gatescope } from '@gatescope/gatescope';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertSyntheticTraffic } from '../support/synthetic-traffic.js';

// One number per question: a rule's value is what the API answers for the same window and filters from the
// rollups (`source=rollup`, what the evaluator reads): per-minute buckets for short windows, hourly ones for long. The evaluator runs on the all-in-one process's engine
// with a fixed clock; the API is asked over HTTP.
let gs: Gatescope;
// On an hour boundary, so the API (its clock is the real one, later) and the evaluator (this fixed clock) count a
// rate over the same seconds of the hourly rollup's whole-hour range.
const NOW = Math.floor(Date.now() / 3_600_000) * 3_600_000;
beforeAll(async () => {
  const config = loadConfig({
    GATESCOPE_DATA_DIR: mkdtempSync(join(tmpdir(), 'gs-e2e-alert-numbers-')),
    GATESCOPE_HTTP_PORT: '0',
    GATESCOPE_ALS_PORT: '0',
    GATESCOPE_ALERTS_EVALUATOR: '0',
  });
  gs = await startGatescope(config, pino({ level: 'silent' }));
  await insertSyntheticTraffic(gs.clickhouse, {
    rows: 60_000,
    routes: 6,
    from: NOW - 14 * 3_600_000,
    to: NOW,
  });
});
afterAll(async () => {
  await gs?.close();
});

async function summary(query: string) {
  const res = await fetch(`http://127.0.0.1:${gs.httpPort}/api/v1/summary?${query}`);
  expect(res.status).toBe(200);
  return (await res.json()) as Record<string, any>;
}

describe('alert values are the API numbers', () => {
  it('for every metric, grouped by route, over nested per-minute windows and an hourly one', async () => {
    const config = loadConfig({ GATESCOPE_DATA_DIR: '/unused' });
    const evaluator = new Evaluator({
      config,
      clickhouse: gs.clickhouse,
      registry: new Registry(),
      logger: pino({ level: 'silent' }),
      now: () => NOW,
    });
    const store = new AlertStore(gs.clickhouse);
    const metrics = [
      'error_rate',
      'p50_ms',
      'p90_ms',
      'p95_ms',
      'p99_ms',
      'rps',
      'requests',
      'flag:UH',
      'class:5xx',
    ];
    // Windows that nest (1m in 5m in 15m): one scan per table answers them all, each with its own numbers.
    const windows = ['1m', '5m', '15m', '13h'];
    const windowMs: Record<string, number> = {
      '1m': 60_000,
      '5m': 300_000,
      '15m': 900_000,
      '13h': 13 * 3_600_000,
    };
    const rules = windows.flatMap((window) =>
      metrics.map(
        (metric) =>
          parseRule({
            name: `${metric.replace(':', '-')}-${window}`,
            metric,
            filter: { authority: 'shop.example.com' },
            group_by: ['route'],
            op: '>=',
            threshold: 0,
            window,
            min_requests: 1,
          }).rule,
      ),
    );
    // Beside them, in the same cycle: rules with no filter and no group_by (the lean rollup, one series).
    const overall = ['p99_ms', 'error_rate'].map(
      (metric) =>
        parseRule({
          name: `overall-${metric}`,
          metric,
          op: '>=',
          threshold: 0,
          window: '15m',
          min_requests: 1,
        }).rule,
    );
    await store.putRules([...rules, ...overall], 'api', NOW);
    const stats = await evaluator.evaluate();
    expect(stats).toMatchObject({ rules: rules.length + 2, series: rules.length * 6 + 2, leader: true });
    const states = await store.loadStates({ states: ['firing'] });
    expect(states).toHaveLength(rules.length * 6 + 2);
    const all = await summary(`source=rollup&from=${NOW - 900_000}&to=${NOW}`);
    expect(states.find((x) => x.rule === 'overall-p99_ms')?.value).toBe(all.p99_ms);
    expect(states.find((x) => x.rule === 'overall-error_rate')?.value).toBe(all.error_rate);
    expect(all.requests).toBeGreaterThan(0);

    for (const window of windows) {
      const ms = windowMs[window];
      for (const route of ['route-0', 'route-4']) {
        const api = await summary(
          `route=${route}&authority=shop.example.com&source=rollup&from=${NOW - ms}&to=${NOW}`,
        );
        expect(api.source.granularity_s, window).toBe(window === '13h' ? 3600 : 60);
        const flagged = await summary(
          `route=${route}&authority=shop.example.com&response_flag=UH&source=rollup&from=${NOW - ms}&to=${NOW}`,
        );
        const expected: Record<string, number> = {
          error_rate: api.error_rate,
          p50_ms: api.p50_ms,
          p90_ms: api.p90_ms,
          p95_ms: api.p95_ms,
          p99_ms: api.p99_ms,
          rps: api.rps,
          requests: api.requests,
          'flag:UH': flagged.requests,
          'class:5xx': api.status_classes['5xx'],
        };
        for (const metric of metrics) {
          const s = states.find(
            (x) => x.rule === `${metric.replace(':', '-')}-${window}` && x.labels.route === route,
          );
          expect(s?.value, `${metric} over ${window} on ${route}`).toBe(expected[metric]);
        }
        expect(api.requests).toBeGreaterThan(0);
        if (ms >= 300_000) expect(flagged.requests).toBeGreaterThan(0); // 1 request in 150 carries UH
        expect(api.error_rate).toBeGreaterThan(0);
      }
    }
    await evaluator.close();
  });

  it('gives a series the labels and fingerprint of the rule as it is now, cycle after cycle', async () => {
    let clock = NOW;
    const evaluator = new Evaluator({
      config: loadConfig({ GATESCOPE_DATA_DIR: '/unused' }),
      clickhouse: gs.clickhouse,
      registry: new Registry(),
      logger: pino({ level: 'silent' }),
      now: () => clock,
    });
    const store = new AlertStore(gs.clickhouse);
    const rule = (severity: string) =>
      parseRule({
        name: 'relabelled',
        metric: 'requests',
        group_by: ['route'],
        op: '>=',
        threshold: 0,
        window: '5m',
        min_requests: 1,
        labels: { severity },
      }).rule;
    const active = async () =>
      (await store.loadStates({ states: ['firing'] })).filter((x) => x.rule === 'relabelled');
    await store.putRules([rule('page')], 'api', NOW);
    await evaluator.evaluate();
    const before = await active();
    expect(before.length).toBe(6);
    // The same series (same group values) in the next cycles: labels and fingerprint follow the rule's labels.
    await store.putRules([rule('ticket')], 'api', NOW + 1);
    await evaluator.evaluate();
    await evaluator.evaluate();
    const after = await active();
    expect(after.map((x) => x.labels.severity)).toEqual(after.map(() => 'ticket'));
    expect(after.length).toBe(6);
    for (const s of [...before, ...after]) expect(s.fingerprint).toBe(fingerprint(s.labels));
    for (const s of after) expect(before.map((x) => x.fingerprint)).not.toContain(s.fingerprint);
    // The evaluator re-reads rules only when the store's fingerprint moves: a delete (a tombstone row) moves it.
    const version = await store.configVersion();
    expect(await store.configVersion()).toBe(version);
    await store.deleteRules(['relabelled'], NOW + 2);
    expect(await store.configVersion()).not.toBe(version);
    clock += 15_000; // the next cycle (its state rows are newer than the last ones)
    await evaluator.evaluate();
    expect(await active()).toEqual([]);
    await evaluator.close();
  });
});
