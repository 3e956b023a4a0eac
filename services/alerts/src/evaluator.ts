import { readFileSync } from 'node:fs';
import {
  advance,
  alertLink,
  breaches,
  AlertStore,
  buildPayload,
  dueNotification,
  fillAnnotations,
  fingerprint,
  groupKey,
  groupLabelsOf,
  ingestSeries,
  newMessageId,
  parseAlertDuration,
  parseAlertsFile,
  parseRule,
  type AlertInstance,
  type CompiledRule,
  type DeliveryAttempt,
  type GroupState,
  type HistoryRow,
  type Observation,
  type StoredState,
  type TrafficMetricDef,
} from '@gatescope/alerts';
import {
  acquireMigrationLock,
  MigrationLockError,
  readJson,
  type ClickHouse,
  type MigrationLock,
} from '@gatescope/clickhouse';
import type { Config } from '@gatescope/config';
import { ledgerNodesQuery, shapeLedgerNodes, type LedgerNodeRow } from '@gatescope/ledger';
import {
  BucketCache,
  planSeriesQuestion,
  QueryParamError,
  rateSeconds,
  toStats,
  withLimits,
  type BuiltQuery,
  type ReadRows,
  type SeriesQuestion,
  type SeriesRow,
  type Source,
  type Stats,
} from '@gatescope/query';
import type { Logger } from 'pino';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { Delivery } from './delivery.js';

/**
 * The alert evaluator. Every `GATESCOPE_ALERTS_INTERVAL` it
 *   1. makes sure it holds the evaluator lease (below), else does nothing this cycle;
 *   2. reads the rules and receivers when they changed (so changes made through any API replica apply at the next
 *      cycle; a fingerprint of the three tables tells, `readConfig`);
 *   3. asks every rule's metric source for its values: traffic rules from a per-minute cache of the rollups
 *      (`trafficSource`, @gatescope/query `BucketCache`: the numbers of `seriesStatsQuery`, the API's planning,
 *      filters and quantiles, with only the minutes that changed read each cycle), ingest rules one ledger
 *      statement per window (@gatescope/ledger `ledgerNodesQuery`: the rows `/api/v1/ingest/nodes` returns);
 *   4. advances every series' state (@gatescope/alerts `advance`), appends transitions to the history;
 *   5. fills annotations, groups the firing and resolved alerts per receiver and hands due webhooks to delivery;
 *   6. persists what changed (states, groups, history, delivery attempts).
 *
 * One evaluator at a time: with several replicas (services/alerts, or all-in-one processes on one server) the
 * one holding the `alert_lease` in ClickHouse evaluates, the others stand by and take over when its lease runs
 * out (three intervals, at least 30 s). A lease rather than idempotent evaluation because evaluation has side
 * effects outside ClickHouse: two evaluators would each send every webhook, and a receiver cannot tell a
 * duplicate from a re-notification. The lease is the migration lock's protocol (claims deduplicated by insert
 * token), so it needs nothing but ClickHouse.
 */

/** A family of metrics (`traffic`, `ingest`): values for every rule using it. */
export type MetricSource = (
  rules: readonly CompiledRule[],
  now: number,
) => Promise<Map<CompiledRule, Map<string, { groupValues: string[]; obs: Observation }>>>;

export interface EvaluatorDeps {
  config: Readonly<Config>;
  clickhouse: ClickHouse;
  registry: Registry;
  logger: Logger;
  /** This process's own UI address, for links when GATESCOPE_EXTERNAL_URL is unset. */
  selfUrl?: string;
  now?: () => number;
  /** Delivery's first retry delay (tests); default 1 s. */
  retryBaseMs?: number;
}

export interface EvaluatorStats {
  rules: number;
  series: number;
  queryMs: number;
  totalMs: number;
  leader: boolean;
}

/** Resolved alerts stay listed (and can still be announced) this long, like Prometheus' resolved retention. */
const RESOLVED_RETENTION_MS = 15 * 60_000;

/**
 * Rules read the per-minute (or, from 12 h, hourly) rollups, as the API does with `source=rollup`: a rule's value
 * is the number the API and UI show for that window with `source=rollup`. Only a rule whose filters no rollup
 * keeps (path_template) reads raw rows. Why: over raw rows each cycle would re-read and sort every request of
 * every window for exact quantiles (50 rules at 1,000 requests/s: ≈ 0.7 s a cycle, `npm run bench`); the
 * rollups' DDSketch states answer the same question within 0.5 % for a fraction of that. The window is widened
 * to whole buckets (a 5m window covers the last 5 minutes plus the current one). A per-minute window is answered
 * from the minute cache (`trafficSource`: the per-minute rollup's minutes kept in memory, merged per window), which
 * gives exactly what the API's read of the tiers gives (a 1h window: its whole 10-minute blocks from `http_*_10m`,
 * the minutes around them per minute); the others are read as the API reads them.
 */
export function alertSource(q: SeriesQuestion): Source {
  try {
    return planSeriesQuestion({ ...q, mode: 'rollup' });
  } catch (err) {
    if (err instanceof QueryParamError) return planSeriesQuestion({ ...q, mode: 'auto' });
    throw err;
  }
}

type TrafficRule = CompiledRule & { metric: TrafficMetricDef };

/**
 * The questions a cycle asks for its traffic rules: one per distinct (window, filters, group_by, flag), so rules
 * differing only in metric or threshold share it; it asks for the latency quantiles when one of its rules needs
 * them. `questionOf` maps each rule to its question's index.
 */
export function trafficQuestions(
  rules: readonly CompiledRule[],
  now: number,
): { questions: (SeriesQuestion & { source: Source })[]; questionOf: Map<CompiledRule, number> } {
  const index = new Map<string, number>();
  const questionOf = new Map<CompiledRule, number>();
  const questions: (SeriesQuestion & { source: Source })[] = [];
  for (const r of rules) {
    if (r.metric.source !== 'traffic') continue;
    const metric = r.metric;
    const key = JSON.stringify([r.windowMs, r.filters, r.groupBy, metric.responseFlag ?? null]);
    let i = index.get(key);
    if (i === undefined) {
      const q: SeriesQuestion = {
        range: { from: now - r.windowMs, to: now },
        filters: r.filters,
        groupBy: r.groupBy,
        ...(metric.responseFlag ? { responseFlag: metric.responseFlag } : {}),
        quantiles: false,
      };
      i = questions.length;
      index.set(key, i);
      questions.push({ ...q, source: alertSource(q) });
    }
    questions[i].quantiles ||= metric.quantiles ?? false;
    questionOf.set(r, i);
  }
  return { questions, questionOf };
}

/**
 * Traffic rules' values. The questions (`trafficQuestions`) are answered by a `BucketCache` (@gatescope/query) kept
 * for the life of the source: per cycle one probe statement (`sum(requests)` per minute of the per-minute rollups)
 * and one fetch of the minutes that changed, then each window is merged in memory from its minutes. The numbers
 * are those `seriesStatsQuery` gives for the same questions (minute-cache.test.ts checks every kind of question);
 * questions the cache cannot answer (raw rows for a `path_template` filter, hourly rollups of windows ≥ 12 h, more
 * partials than its memory bound; all of them once a state cannot be decoded) are asked with `seriesStatsQuery` in
 * the same cycle.
 */
export function trafficSource(
  ch: ClickHouse,
  limits: Config['query']['limits'],
  cache: BucketCache = new BucketCache(ch.database),
): MetricSource {
  const read: ReadRows = async <T>(q: BuiltQuery) =>
    (await readJson<T>(ch.reader, withLimits(q, limits))).data;
  return async (all, now) => {
    const rules = all.filter((r): r is TrafficRule => r.metric.source === 'traffic');
    const out = new Map<CompiledRule, Map<string, { groupValues: string[]; obs: Observation }>>();
    if (rules.length === 0) return out;
    const { questions, questionOf } = trafficQuestions(rules, now);
    const { rows } = await cache.rows(questions, read);
    const byQuestion = new Map<number, SeriesRow[]>();
    for (const row of rows) {
      const i = Number(row.question);
      if (!byQuestion.has(i)) byQuestion.set(i, []);
      byQuestion.get(i)!.push(row);
    }
    // A question's stats, shaped once for all the rules asking it.
    const statsOf = new Map<SeriesRow, Stats>();
    for (const r of rules) {
      const i = questionOf.get(r)!;
      const source = questions[i].source;
      const series = new Map<string, { groupValues: string[]; obs: Observation }>();
      for (const row of byQuestion.get(i) ?? []) {
        let stats = statsOf.get(row);
        if (!stats) statsOf.set(row, (stats = toStats(row, rateSeconds(source, now))));
        if (stats.requests === 0) continue; // no traffic: absent, not zero
        const value = r.metric.value({ stats, flagged: Number(row.flagged) || 0 });
        series.set(row.series.join('\u0000'), {
          groupValues: row.series,
          obs: { value, requests: stats.requests },
        });
      }
      out.set(r, series);
    }
    return out;
  };
}

/**
 * The delivery ledger's metrics (`ingest_silence_seconds`, `ingest_drop_rate`): one statement per distinct
 * window and gateway filter, the nodes shaped as `/api/v1/ingest/nodes` shapes them, one series per node
 * (@gatescope/alerts `ingestSeries`: silent nodes kept, `gone` ones left out). A rule's `gateway` filter narrows
 * the nodes as a token's gateway scope does.
 */
export function ingestSource(
  ch: ClickHouse,
  limits: Config['query']['limits'],
  staleAfterMs: number,
): MetricSource {
  return async (rules, now) => {
    const out = new Map<CompiledRule, Map<string, { groupValues: string[]; obs: Observation }>>();
    const keyOf = (r: CompiledRule) => JSON.stringify([r.windowMs, r.filters.gateway ?? null]);
    const nodesByKey = new Map<string, ReturnType<typeof shapeLedgerNodes>>();
    for (const r of rules) {
      const key = keyOf(r);
      if (nodesByKey.has(key)) continue;
      const restriction = r.filters.gateway ? { gateways: r.filters.gateway } : undefined;
      const built = withLimits(
        ledgerNodesQuery(ch.database, { from: now - r.windowMs, to: now }, { restriction, staleAfterMs }),
        limits,
      );
      const rows = (await readJson<LedgerNodeRow>(ch.reader, built)).data;
      nodesByKey.set(key, shapeLedgerNodes(rows, now, staleAfterMs));
    }
    for (const r of rules) {
      if (r.metric.source !== 'ingest') continue;
      out.set(r, ingestSeries(r.metric, nodesByKey.get(keyOf(r)) ?? [], now));
    }
    return out;
  };
}

export class Evaluator {
  readonly store: AlertStore;
  readonly delivery: Delivery;
  private readonly sources: Record<CompiledRule['metric']['source'], MetricSource>;
  private readonly states = new Map<string, StoredState>();
  private groups = new Map<string, GroupState>();
  /**
   * Each series' labels and fingerprint from the last cycle, by rule (name, labels, grouping) and group values:
   * hashing 2,500 label sets each cycle cost more than the rest of the cycle's JavaScript. Rebuilt from the series
   * seen each cycle, so it holds only live ones.
   */
  private seriesIdentity = new Map<string, { labels: Readonly<Record<string, string>>; fp: string }>();
  private loaded = false;
  /** The traffic rules' per-minute cache (`trafficSource`): kept while this process leads, dropped when it stops. */
  private readonly minutes: BucketCache;
  /** The rules, receivers and targets last read, with the store fingerprint they were read at (`readConfig`). */
  private config:
    | {
        version: string;
        /** The enabled rules, compiled (an invalid stored rule is logged once per change and skipped). */
        rules: CompiledRule[];
        receivers: Awaited<ReturnType<AlertStore['listReceivers']>>;
        targets: Awaited<ReturnType<AlertStore['receiverTargets']>>;
      }
    | undefined;
  private lease: MigrationLock | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<EvaluatorStats | undefined> | undefined;
  private closed = false;
  private readonly pendingAttempts: DeliveryAttempt[] = [];
  private readonly now: () => number;
  private readonly m: ReturnType<typeof metrics>;
  readonly owner = `alerts:${process.pid}:${Math.random().toString(16).slice(2, 10)}`;

  constructor(private readonly deps: EvaluatorDeps) {
    this.now = deps.now ?? Date.now;
    this.store = new AlertStore(deps.clickhouse);
    this.minutes = new BucketCache(deps.clickhouse.database);
    this.m = metrics(deps.registry);
    this.sources = {
      traffic: trafficSource(deps.clickhouse, deps.config.query.limits, this.minutes),
      ingest: ingestSource(deps.clickhouse, deps.config.query.limits, deps.config.ledger.staleAfterMs),
    };
    this.delivery = new Delivery({
      queueSize: deps.config.alerts.deliveryQueue,
      maxAttempts: deps.config.alerts.deliveryAttempts,
      baseDelayMs: deps.retryBaseMs,
      logger: deps.logger,
      record: (a) => {
        this.pendingAttempts.push(a);
        void this.flushAttempts();
      },
      onAttempt: (outcome, seconds) => {
        this.m.attempts.inc({ outcome });
        if (outcome !== 'dropped' && outcome !== 'refused') this.m.attemptSeconds.observe(seconds);
      },
    });
    queueLength.current = () => this.delivery.queued;
  }

  private get externalUrl(): string {
    return this.deps.config.alerts.externalUrl ?? this.deps.selfUrl ?? 'http://127.0.0.1/';
  }

  /** Sync the provisioning file into the store: its rules and receivers replace earlier file-provisioned ones. */
  async provision(): Promise<void> {
    const file = this.deps.config.alerts.file;
    if (!file) return;
    const parsed = parseAlertsFile(readFileSync(file, 'utf8'), file);
    const [rules, receivers] = await Promise.all([this.store.listRules(), this.store.listReceivers()]);
    const now = this.now();
    const fileRules = new Set(parsed.rules.map((r) => r.rule.name));
    const fileReceivers = new Set(parsed.receivers.map((r) => r.name));
    await this.store.putReceivers(parsed.receivers, 'file', now);
    await this.store.putRules(
      parsed.rules.map((r) => r.rule),
      'file',
      now,
    );
    const goneRules = rules
      .filter((r) => r.origin === 'file' && !fileRules.has(r.rule.name))
      .map((r) => r.rule.name);
    const goneReceivers = receivers
      .filter((r) => r.origin === 'file' && !fileReceivers.has(r.name))
      .map((r) => r.name);
    if (goneRules.length) await this.store.deleteRules(goneRules, now);
    if (goneReceivers.length) await this.store.deleteReceivers(goneReceivers, now);
    this.deps.logger.info(
      { file, rules: parsed.rules.length, receivers: parsed.receivers.length },
      'alert rules and receivers provisioned from the file',
    );
  }

  start(): void {
    const tick = () => {
      if (this.closed) return;
      this.running = this.evaluate()
        .catch((err) => {
          this.m.failures.inc();
          this.deps.logger.error({ err }, `alert evaluation failed: ${(err as Error).message}`);
          return undefined;
        })
        .finally(() => {
          this.running = undefined;
          if (!this.closed) {
            this.timer = setTimeout(tick, this.deps.config.alerts.intervalMs);
            this.timer.unref();
          }
        });
    };
    tick();
  }

  /** Whether this process holds the lease now (taking it when free). */
  private async lead(): Promise<boolean> {
    if (this.lease) {
      try {
        this.lease.assertHeld();
        return true;
      } catch {
        this.deps.logger.warn({}, 'alert evaluator lease lost; standing by');
        this.minutes.clear(); // a standby holds no cache (up to BUCKET_CACHE_MAX_PARTIALS); refilled on takeover
        this.lease = undefined;
        this.loaded = false;
      }
    }
    try {
      this.lease = await acquireMigrationLock(this.deps.clickhouse, {
        table: 'alert_lease',
        leaseMs: Math.max(30_000, 3 * this.deps.config.alerts.intervalMs),
        waitMs: 0,
        owner: this.owner,
      });
      this.deps.logger.info(
        { owner: this.owner },
        'this process evaluates the alert rules (holds the lease)',
      );
      this.loaded = false; // another evaluator may have changed state meanwhile
      return true;
    } catch (err) {
      if (err instanceof MigrationLockError) return false;
      throw err;
    }
  }

  private async load(): Promise<void> {
    this.states.clear();
    const horizon = this.now() - RESOLVED_RETENTION_MS;
    for (const s of await this.store.loadStates({ states: ['pending', 'firing', 'resolved'] })) {
      if (s.state === 'resolved' && (s.resolvedAt ?? 0) < horizon) continue;
      this.states.set(`${s.rule}\u0000${s.fingerprint}`, s);
    }
    this.groups = new Map((await this.store.loadGroups()).map((g) => [`${g.receiver}\u0000${g.key}`, g]));
    this.loaded = true;
  }

  /**
   * The rules (compiled), receivers and targets as stored: re-read and re-compiled only when the store's fingerprint moved since the last
   * cycle (`AlertStore.configVersion`, one small statement instead of three reads). The fingerprint is taken before
   * the reads, so a change landing between them is read now and seen again, as a new fingerprint, next cycle.
   */
  private async readConfig(): Promise<NonNullable<Evaluator['config']>> {
    const version = await this.store.configVersion();
    if (this.config?.version === version) return this.config;
    const [stored, receivers, targets] = await Promise.all([
      this.store.listRules(),
      this.store.listReceivers(),
      this.store.receiverTargets(),
    ]);
    const rules: CompiledRule[] = [];
    for (const s of stored) {
      if (!s.rule.enabled) continue;
      try {
        rules.push(parseRule(s.rule));
      } catch (err) {
        this.deps.logger.error(
          { rule: s.rule.name, err: (err as Error).message },
          'stored alert rule is invalid; skipped',
        );
      }
    }
    return (this.config = { version, rules, receivers, targets });
  }

  /** One evaluation cycle (also called by tests and the benchmark). Undefined when another process leads. */
  async evaluate(): Promise<EvaluatorStats | undefined> {
    const started = performance.now();
    const leader = await this.lead();
    this.m.leader.set(leader ? 1 : 0);
    if (!leader) return undefined;
    if (!this.loaded) await this.load();
    const now = this.now();
    const { rules, receivers, targets } = await this.readConfig();
    this.m.rules.set(rules.length);

    // 3. values
    const queryStarted = performance.now();
    const bySource = new Map<string, CompiledRule[]>();
    for (const r of rules) {
      if (!bySource.has(r.metric.source)) bySource.set(r.metric.source, []);
      bySource.get(r.metric.source)!.push(r);
    }
    const values = new Map<CompiledRule, Map<string, { groupValues: string[]; obs: Observation }>>();
    for (const [name, list] of bySource) {
      for (const [r, v] of await this.sources[name as keyof typeof this.sources](list, now)) values.set(r, v);
    }
    const queryMs = performance.now() - queryStarted;

    // 4. states
    const history: HistoryRow[] = [];
    const changed: StoredState[] = [];
    const ruleNames = new Set(rules.map((r) => r.rule.name));
    // The known series of each rule, to visit those with no value this cycle (one pass, not one per rule).
    const knownByRule = new Map<string, [string, StoredState][]>();
    for (const entry of this.states) {
      const list = knownByRule.get(entry[1].rule);
      if (list) list.push(entry);
      else knownByRule.set(entry[1].rule, [entry]);
    }
    let seriesCount = 0;
    const identities = new Map<string, { labels: Readonly<Record<string, string>>; fp: string }>();
    for (const r of rules) {
      const seen = values.get(r) ?? new Map();
      const keys = new Set<string>();
      const judgement = {
        op: r.rule.op,
        threshold: r.rule.threshold,
        forMs: r.forMs,
        // Ingest silence is judged with no entries at all (see IngestMetricDef).
        minRequests: r.metric.source === 'ingest' && !r.metric.minRequestsApplies ? 0 : r.rule.min_requests,
      };
      const visit = (fp: string, labels: Record<string, string>, obs: Observation | undefined) => {
        const key = `${r.rule.name}\u0000${fp}`;
        keys.add(key);
        const prev: StoredState = this.states.get(key) ?? {
          rule: r.rule.name,
          fingerprint: fp,
          labels,
          annotations: {},
          state: 'inactive',
          value: null,
          requests: 0,
          evaluatedAt: now,
        };
        const { next, transition } = advance(prev, obs, judgement, now);
        const state: StoredState = {
          ...next,
          labels,
          annotations:
            next.state === 'inactive'
              ? {}
              : fillAnnotations(r.rule.annotations, {
                  labels,
                  value: next.value ?? prev.value,
                  threshold: r.rule.threshold,
                  requests: next.requests,
                  window: r.rule.window,
                  metric: r.rule.metric,
                  rule: r.rule.name,
                }),
        };
        if (transition) {
          history.push({
            at: now,
            rule: r.rule.name,
            fingerprint: fp,
            labels,
            from: transition.from,
            to: transition.to,
            value: state.value,
            requests: state.requests,
          });
          this.m.transitions.inc({ to: transition.to });
        }
        if (state.state === 'inactive') {
          if (this.states.delete(key) || transition) changed.push(state);
        } else if (state.state === 'resolved' && !transition) {
          this.states.set(key, { ...state, value: prev.value, annotations: prev.annotations });
          if ((state.resolvedAt ?? 0) < now - RESOLVED_RETENTION_MS) this.states.delete(key);
        } else {
          this.states.set(key, state);
          changed.push(state);
        }
      };
      const ruleId = `${JSON.stringify([r.rule.name, r.rule.labels, r.seriesLabels])}\u0000`;
      for (const { groupValues, obs } of seen.values()) {
        const id = ruleId + groupValues.join('\u0000');
        let identity = this.seriesIdentity.get(id);
        if (!identity) {
          const labels: Record<string, string> = { alertname: r.rule.name, ...r.rule.labels };
          r.seriesLabels.forEach((d, i) => (labels[d] = groupValues[i] ?? ''));
          identity = { labels: Object.freeze(labels), fp: fingerprint(labels) };
        }
        identities.set(id, identity);
        seriesCount++;
        // Most series are inactive and stay so: no state, no breach, nothing to advance or record (what
        // `advance` would answer: inactive, no transition).
        if (
          !this.states.has(`${r.rule.name}\u0000${identity.fp}`) &&
          !(
            obs.value !== null &&
            obs.requests >= judgement.minRequests &&
            breaches(obs.value, r.rule.op, r.rule.threshold)
          )
        )
          continue;
        visit(identity.fp, identity.labels, obs);
      }
      for (const [key, s] of knownByRule.get(r.rule.name) ?? []) {
        if (!keys.has(key)) visit(s.fingerprint, s.labels, undefined);
      }
    }
    this.seriesIdentity = identities;
    // Alerts of rules deleted or disabled since the last cycle: forgotten (no resolved webhook).
    for (const [key, s] of [...this.states]) {
      if (!ruleNames.has(s.rule)) {
        this.states.delete(key);
        changed.push({ ...s, state: 'inactive', evaluatedAt: now });
      }
    }
    let pending = 0;
    let firing = 0;
    for (const s of this.states.values()) {
      if (s.state === 'pending') pending++;
      if (s.state === 'firing') firing++;
    }
    this.m.active.set({ state: 'pending' }, pending);
    this.m.active.set({ state: 'firing' }, firing);

    // 5. notifications
    const groupChanges = this.notify(rules, receivers, targets, now);

    // 6. persist
    await Promise.all([
      this.store.saveStates(changed, now),
      this.store.appendHistory(history),
      this.store.saveGroups(groupChanges, now),
    ]);
    const totalMs = performance.now() - started;
    this.m.evaluations.inc();
    this.m.duration.observe(totalMs / 1000);
    return { rules: rules.length, series: seriesCount, queryMs, totalMs, leader: true };
  }

  private notify(
    rules: CompiledRule[],
    receivers: Awaited<ReturnType<AlertStore['listReceivers']>>,
    targets: Awaited<ReturnType<AlertStore['receiverTargets']>>,
    now: number,
  ): { group: GroupState; deleted: boolean }[] {
    const changes: { group: GroupState; deleted: boolean }[] = [];
    const ruleByName = new Map(rules.map((r) => [r.rule.name, r]));
    for (const rv of receivers) {
      const target = targets.get(rv.name);
      if (!target) continue;
      const timing = {
        groupWaitMs: parseAlertDuration(rv.group_wait) ?? 30_000,
        groupIntervalMs: parseAlertDuration(rv.group_interval) ?? 300_000,
        repeatIntervalMs: parseAlertDuration(rv.repeat_interval) ?? 4 * 3_600_000,
        sendResolved: rv.send_resolved,
      };
      const byGroup = new Map<string, { labels: Record<string, string>; alerts: AlertInstance[] }>();
      for (const s of this.states.values()) {
        if (s.state !== 'firing' && s.state !== 'resolved') continue;
        const r = ruleByName.get(s.rule);
        if (!r || !r.rule.receivers.includes(rv.name)) continue;
        const labels = groupLabelsOf(s.labels, rv.group_by);
        const key = groupKey(rv.name, labels);
        if (!byGroup.has(key)) byGroup.set(key, { labels, alerts: [] });
        const startsAt = s.activeAt ?? s.firedAt ?? now;
        byGroup.get(key)!.alerts.push({
          fingerprint: s.fingerprint,
          rule: s.rule,
          labels: s.labels,
          annotations: s.annotations,
          status: s.state === 'firing' ? 'firing' : 'resolved',
          startsAt,
          endsAt: s.resolvedAt,
          value: s.value,
          generatorURL: alertLink(this.externalUrl, {
            labels: s.labels,
            filter: r.rule.filter,
            from: startsAt - r.windowMs,
            to: s.state === 'resolved' ? (s.resolvedAt ?? now) : now,
            source: r.metric.source,
          }),
        });
      }
      const keys = new Set([
        ...byGroup.keys(),
        ...[...this.groups.values()].filter((g) => g.receiver === rv.name).map((g) => g.key),
      ]);
      for (const key of keys) {
        const id = `${rv.name}\u0000${key}`;
        const entry = byGroup.get(key);
        const alerts = entry?.alerts ?? [];
        let group = this.groups.get(id);
        if (!group) {
          if (!alerts.some((a) => a.status === 'firing')) continue;
          group = { key, receiver: rv.name, labels: entry!.labels, createdAt: now, sentFiring: [] };
          this.groups.set(id, group);
          changes.push({ group, deleted: false });
        }
        const due = dueNotification(group, alerts, timing, now);
        if (!due) continue;
        if (due.alerts.length > 0) {
          const payload = buildPayload({
            receiver: rv.name,
            group: { key, labels: group.labels },
            alerts: due.alerts,
            externalURL: this.externalUrl,
          });
          this.m.notifications.inc({ status: payload.status });
          this.delivery.enqueue({
            id: newMessageId(),
            receiver: rv.name,
            url: target.url,
            secret: target.secret,
            allowPrivate: rv.allow_private_network || this.deps.config.alerts.allowPrivateNetwork,
            timeoutMs: parseAlertDuration(rv.timeout) ?? 10_000,
            payload,
          });
        }
        if (due.after) {
          this.groups.set(id, due.after);
          changes.push({ group: due.after, deleted: false });
        } else {
          this.groups.delete(id);
          changes.push({ group, deleted: true });
        }
      }
    }
    return changes;
  }

  private flushing: Promise<void> | undefined;
  private async flushAttempts(): Promise<void> {
    if (this.flushing) return this.flushing;
    this.flushing = (async () => {
      while (this.pendingAttempts.length) {
        const batch = this.pendingAttempts.splice(0);
        await this.store.appendDeliveries(batch).catch((err) => {
          this.deps.logger.warn(
            { err: (err as Error).message },
            'could not record webhook delivery attempts',
          );
        });
      }
    })().finally(() => (this.flushing = undefined));
    return this.flushing;
  }

  /** Wait for queued webhooks and their records (tests). */
  async settled(): Promise<void> {
    await this.delivery.drained();
    await this.flushAttempts();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
    await this.delivery.close();
    await this.flushAttempts();
    await this.lease?.release().catch(() => {});
  }
}

/** What the queue gauge reads when scraped: the latest evaluator's delivery queue. */
const queueLength = { current: () => 0 };

function metrics(registry: Registry) {
  const get = <T>(name: string, make: () => T): T =>
    (registry.getSingleMetric(name) as T | undefined) ?? make();
  const registers = [registry];
  return {
    evaluations: get(
      'gatescope_alerts_evaluations_total',
      () =>
        new Counter({
          name: 'gatescope_alerts_evaluations_total',
          help: 'Alert evaluation cycles completed',
          registers,
        }),
    ),
    failures: get(
      'gatescope_alerts_evaluation_failures_total',
      () =>
        new Counter({
          name: 'gatescope_alerts_evaluation_failures_total',
          help: 'Alert evaluation cycles that failed (ClickHouse unreachable, …)',
          registers,
        }),
    ),
    duration: get(
      'gatescope_alerts_evaluation_duration_seconds',
      () =>
        new Histogram({
          name: 'gatescope_alerts_evaluation_duration_seconds',
          help: 'Duration of one alert evaluation cycle (all rules)',
          buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
          registers,
        }),
    ),
    rules: get(
      'gatescope_alerts_rules',
      () => new Gauge({ name: 'gatescope_alerts_rules', help: 'Enabled alert rules evaluated', registers }),
    ),
    active: get(
      'gatescope_alerts_active',
      () =>
        new Gauge({
          name: 'gatescope_alerts_active',
          help: 'Alert series by state (pending, firing)',
          labelNames: ['state'] as const,
          registers,
        }),
    ),
    leader: get(
      'gatescope_alerts_leader',
      () =>
        new Gauge({
          name: 'gatescope_alerts_leader',
          help: '1 when this process holds the evaluator lease and evaluates the rules',
          registers,
        }),
    ),
    transitions: get(
      'gatescope_alerts_transitions_total',
      () =>
        new Counter({
          name: 'gatescope_alerts_transitions_total',
          help: 'Alert state transitions, by the state entered',
          labelNames: ['to'] as const,
          registers,
        }),
    ),
    notifications: get(
      'gatescope_alerts_notifications_total',
      () =>
        new Counter({
          name: 'gatescope_alerts_notifications_total',
          help: 'Webhook notifications queued, by status (firing, resolved)',
          labelNames: ['status'] as const,
          registers,
        }),
    ),
    attempts: get(
      'gatescope_alerts_delivery_attempts_total',
      () =>
        new Counter({
          name: 'gatescope_alerts_delivery_attempts_total',
          help: 'Webhook delivery attempts by outcome (delivered, retry, failed, refused, dropped)',
          labelNames: ['outcome'] as const,
          registers,
        }),
    ),
    attemptSeconds: get(
      'gatescope_alerts_delivery_duration_seconds',
      () =>
        new Histogram({
          name: 'gatescope_alerts_delivery_duration_seconds',
          help: 'Duration of webhook delivery attempts',
          buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
          registers,
        }),
    ),
    queue: get(
      'gatescope_alerts_delivery_queue',
      () =>
        new Gauge({
          name: 'gatescope_alerts_delivery_queue',
          help: 'Webhook notifications waiting or in flight',
          registers,
          collect() {
            this.set(queueLength.current());
          },
        }),
    ),
  };
}
