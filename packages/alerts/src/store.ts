import { readJson, type ClickHouse } from '@gatescope/clickhouse';
import type { GroupState } from './notify.js';
import { ruleSchema, receiverSchema, type AlertRule, type Receiver } from './rule.js';
import type { AlertStateName, SeriesState } from './state.js';

/**
 * Rules, receivers, series states, notification groups, history and deliveries in ClickHouse
 * (migrations/0004_create_alerts.sql). Every definition write is a new version of its row; reads take the newest
 * per key. Only the main connection is used: receiver targets live in a table the read roles cannot see.
 */
export type Origin = 'file' | 'api';

export interface StoredRule {
  rule: AlertRule;
  origin: Origin;
  updatedAt: number;
}

/** A receiver as the API shows it: no URL path or query, no secret (`has_secret` says whether it signs). */
export interface ReceiverView extends Omit<Receiver, 'url' | 'secret'> {
  /** scheme://host[:port] of the URL; the path may carry a token, so it is never shown. */
  url_origin: string;
  has_secret: boolean;
  origin: Origin;
  updated_at: string;
}

export interface ReceiverTarget {
  url: string;
  secret?: string;
}

export interface StoredState extends SeriesState {
  annotations: Record<string, string>;
}

export interface HistoryRow {
  at: number;
  rule: string;
  fingerprint: string;
  labels: Record<string, string>;
  from: AlertStateName;
  to: AlertStateName;
  value: number | null;
  requests: number;
}

export interface DeliveryAttempt {
  at: number;
  notificationId: string;
  receiver: string;
  groupKey: string;
  status: 'firing' | 'resolved';
  alerts: number;
  attempt: number;
  /** delivered: 2xx; retry: will be tried again; failed: given up (4xx, or retries exhausted); refused: SSRF
   * guard or bad target; dropped: the delivery queue was full. */
  outcome: 'delivered' | 'retry' | 'failed' | 'refused' | 'dropped';
  httpStatus: number;
  latencyMs: number;
  error: string;
}

/** ClickHouse DateTime64(3) text in UTC, for JSONEachRow inserts. */
const chTime = (ms: number) => new Date(ms).toISOString().replace('T', ' ').replace('Z', '');
const msOf = (v: unknown): number | undefined => (v === null || v === undefined ? undefined : Number(v));
const num = (v: unknown) => Number(v);

export class AlertStore {
  private readonly db: string;
  constructor(private readonly ch: ClickHouse) {
    this.db = ch.database;
  }

  private async rows<T>(query: string, params: Record<string, unknown> = {}): Promise<T[]> {
    return (await readJson<T>(this.ch.client, { query, params })).data;
  }

  private async insert(table: string, values: Record<string, unknown>[]): Promise<void> {
    if (values.length === 0) return;
    await this.ch.client.insert({ table: `${this.db}.${table}`, values, format: 'JSONEachRow' });
  }

  /**
   * A fingerprint of the rules, receivers and their targets as stored: equal fingerprints, equal contents. Each
   * table's row count and the wrapping sum of a hash of every row's (name, updated_at, deleted): every change is
   * an insert (the tables are ReplacingMergeTree, a delete is a tombstone row), which adds a term to both; a merge
   * drops replaced rows and changes it too, which only costs the reader one needless re-read. One small statement
   * instead of three reads: the evaluator re-reads the three only when this changes.
   */
  async configVersion(): Promise<string> {
    const part = (table: string) =>
      `SELECT '${table}' AS t, count() AS c, sum(cityHash64(name, updated_at, deleted)) AS h FROM ${this.db}.${table}`;
    const rows = await this.rows<{ t: string; c: string; h: string }>(
      ['alert_rules', 'alert_receivers', 'alert_receiver_secrets'].map(part).join(' UNION ALL '),
    );
    return rows
      .map((r) => `${r.t}:${r.c}:${r.h}`)
      .sort()
      .join(',');
  }

  // ---- rules ---------------------------------------------------------------------------------------------
  async listRules(): Promise<StoredRule[]> {
    const list = await this.rows<{
      name: string;
      origin: Origin;
      definition: string;
      deleted: number;
      t: string;
    }>(
      `SELECT name, origin, definition, deleted, toUnixTimestamp64Milli(updated_at) AS t FROM ${this.db}.alert_rules ` +
        `ORDER BY updated_at DESC LIMIT 1 BY name`,
    );
    return list
      .filter((r) => !num(r.deleted))
      .map((r) => ({
        rule: ruleSchema.parse(JSON.parse(r.definition)),
        origin: r.origin,
        updatedAt: num(r.t),
      }))
      .sort((a, b) => a.rule.name.localeCompare(b.rule.name));
  }

  async putRules(rules: AlertRule[], origin: Origin, now = Date.now()): Promise<void> {
    await this.insert(
      'alert_rules',
      rules.map((r) => ({
        name: r.name,
        origin,
        definition: JSON.stringify(r),
        deleted: 0,
        updated_at: chTime(now),
      })),
    );
  }

  async deleteRules(names: string[], now = Date.now()): Promise<void> {
    await this.insert(
      'alert_rules',
      names.map((name) => ({ name, origin: 'api', definition: '', deleted: 1, updated_at: chTime(now) })),
    );
  }

  // ---- receivers -----------------------------------------------------------------------------------------
  async listReceivers(): Promise<ReceiverView[]> {
    const list = await this.rows<{
      name: string;
      origin: Origin;
      definition: string;
      deleted: number;
      t: string;
    }>(
      `SELECT name, origin, definition, deleted, toUnixTimestamp64Milli(updated_at) AS t FROM ${this.db}.alert_receivers ` +
        `ORDER BY updated_at DESC LIMIT 1 BY name`,
    );
    return list
      .filter((r) => !num(r.deleted))
      .map((r) => ({
        ...(JSON.parse(r.definition) as Omit<ReceiverView, 'origin' | 'updated_at'>),
        origin: r.origin,
        updated_at: new Date(num(r.t)).toISOString(),
      }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  /** URL and secret of every receiver (the evaluator's delivery only). */
  async receiverTargets(): Promise<Map<string, ReceiverTarget>> {
    const list = await this.rows<{ name: string; url: string; secret: string; deleted: number }>(
      `SELECT name, url, secret, deleted FROM ${this.db}.alert_receiver_secrets ORDER BY updated_at DESC LIMIT 1 BY name`,
    );
    return new Map(
      list
        .filter((r) => !num(r.deleted))
        .map((r) => [r.name, { url: r.url, ...(r.secret ? { secret: r.secret } : {}) }]),
    );
  }

  /** Full receiver definitions (targets included) for the evaluator. */
  async loadReceivers(): Promise<(Receiver & { origin: Origin })[]> {
    const [views, targets] = await Promise.all([this.listReceivers(), this.receiverTargets()]);
    return views.flatMap((v) => {
      const t = targets.get(v.name);
      if (!t) return [];
      const { origin, ...view } = v;
      const definition = Object.fromEntries(
        Object.entries(view).filter(([k]) => !['url_origin', 'has_secret', 'updated_at'].includes(k)),
      );
      return [
        {
          ...receiverSchema.parse({ ...definition, url: t.url, ...(t.secret ? { secret: t.secret } : {}) }),
          origin,
        },
      ];
    });
  }

  async putReceivers(receivers: Receiver[], origin: Origin, now = Date.now()): Promise<void> {
    const t = chTime(now);
    // Secrets first: a receiver is only listed once its target exists.
    await this.insert(
      'alert_receiver_secrets',
      receivers.map((r) => ({ name: r.name, url: r.url, secret: r.secret ?? '', deleted: 0, updated_at: t })),
    );
    await this.insert(
      'alert_receivers',
      receivers.map((r) => {
        const { url, secret, ...rest } = r;
        const view = { ...rest, url_origin: new URL(url).origin, has_secret: !!secret };
        return { name: r.name, origin, definition: JSON.stringify(view), deleted: 0, updated_at: t };
      }),
    );
  }

  async deleteReceivers(names: string[], now = Date.now()): Promise<void> {
    const t = chTime(now);
    await this.insert(
      'alert_receivers',
      names.map((name) => ({ name, origin: 'api', definition: '', deleted: 1, updated_at: t })),
    );
    await this.insert(
      'alert_receiver_secrets',
      names.map((name) => ({ name, url: '', secret: '', deleted: 1, updated_at: t })),
    );
  }

  // ---- series states -------------------------------------------------------------------------------------
  async loadStates(filter: { states?: AlertStateName[] } = {}): Promise<StoredState[]> {
    const list = await this.rows<{
      rule: string;
      fingerprint: string;
      labels: Record<string, string>;
      annotations: Record<string, string>;
      state: AlertStateName;
      value: number | null;
      requests: string | number;
      active_ms: string | null;
      fired_ms: string | null;
      resolved_ms: string | null;
      evaluated_ms: string;
    }>(
      `SELECT * FROM (SELECT rule, fingerprint, labels, annotations, state, value, requests, ` +
        `toUnixTimestamp64Milli(active_at) AS active_ms, toUnixTimestamp64Milli(fired_at) AS fired_ms, ` +
        `toUnixTimestamp64Milli(resolved_at) AS resolved_ms, toUnixTimestamp64Milli(evaluated_at) AS evaluated_ms ` +
        `FROM ${this.db}.alert_state ORDER BY updated_at DESC LIMIT 1 BY rule, fingerprint)` +
        (filter.states ? ` WHERE state IN {states:Array(String)}` : '') +
        ` ORDER BY rule, fingerprint`,
      filter.states ? { states: filter.states } : {},
    );
    return list.map((r) => ({
      rule: r.rule,
      fingerprint: r.fingerprint,
      labels: r.labels,
      annotations: r.annotations,
      state: r.state,
      value: r.value === null ? null : Number(r.value),
      requests: num(r.requests),
      activeAt: msOf(r.active_ms),
      firedAt: msOf(r.fired_ms),
      resolvedAt: msOf(r.resolved_ms),
      evaluatedAt: num(r.evaluated_ms),
    }));
  }

  async saveStates(states: StoredState[], now = Date.now()): Promise<void> {
    const opt = (ms: number | undefined) => (ms === undefined ? null : chTime(ms));
    await this.insert(
      'alert_state',
      states.map((s) => ({
        rule: s.rule,
        fingerprint: s.fingerprint,
        labels: s.labels,
        annotations: s.annotations,
        state: s.state,
        value: s.value,
        requests: s.requests,
        active_at: opt(s.activeAt),
        fired_at: opt(s.firedAt),
        resolved_at: opt(s.resolvedAt),
        evaluated_at: chTime(s.evaluatedAt),
        updated_at: chTime(now),
      })),
    );
  }

  // ---- notification groups -------------------------------------------------------------------------------
  async loadGroups(): Promise<GroupState[]> {
    const list = await this.rows<{
      receiver: string;
      group_key: string;
      labels: Record<string, string>;
      created_ms: string;
      last_sent_ms: string | null;
      sent_firing: string[];
      deleted: number;
    }>(
      `SELECT receiver, group_key, labels, toUnixTimestamp64Milli(created_at) AS created_ms, ` +
        `toUnixTimestamp64Milli(last_sent_at) AS last_sent_ms, sent_firing, deleted FROM ${this.db}.alert_groups ` +
        `ORDER BY updated_at DESC LIMIT 1 BY receiver, group_key`,
    );
    return list
      .filter((g) => !num(g.deleted))
      .map((g) => ({
        key: g.group_key,
        receiver: g.receiver,
        labels: g.labels,
        createdAt: num(g.created_ms),
        lastSentAt: msOf(g.last_sent_ms),
        sentFiring: g.sent_firing,
      }));
  }

  async saveGroups(groups: { group: GroupState; deleted: boolean }[], now = Date.now()): Promise<void> {
    await this.insert(
      'alert_groups',
      groups.map(({ group: g, deleted }) => ({
        receiver: g.receiver,
        group_key: g.key,
        labels: g.labels,
        created_at: chTime(g.createdAt),
        last_sent_at: g.lastSentAt === undefined ? null : chTime(g.lastSentAt),
        sent_firing: g.sentFiring,
        deleted: deleted ? 1 : 0,
        updated_at: chTime(now),
      })),
    );
  }

  // ---- history and deliveries ----------------------------------------------------------------------------
  async appendHistory(rows: HistoryRow[]): Promise<void> {
    await this.insert(
      'alert_history',
      rows.map((r) => ({
        at: chTime(r.at),
        rule: r.rule,
        fingerprint: r.fingerprint,
        labels: r.labels,
        from_state: r.from,
        to_state: r.to,
        value: r.value,
        requests: r.requests,
      })),
    );
  }

  async history(q: { from: number; to: number; rule?: string; limit: number }): Promise<HistoryRow[]> {
    const list = await this.rows<Record<string, unknown>>(
      `SELECT toUnixTimestamp64Milli(at) AS at_ms, rule, fingerprint, labels, from_state, to_state, value, requests ` +
        `FROM ${this.db}.alert_history WHERE at >= fromUnixTimestamp64Milli({from:Int64}, 'UTC') ` +
        `AND at < fromUnixTimestamp64Milli({to:Int64}, 'UTC')` +
        (q.rule !== undefined ? ' AND rule = {rule:String}' : '') +
        ` ORDER BY at DESC, rule, fingerprint LIMIT {limit:UInt32}`,
      { from: q.from, to: q.to, limit: q.limit, ...(q.rule !== undefined ? { rule: q.rule } : {}) },
    );
    return list.map((r) => ({
      at: num(r.at_ms),
      rule: String(r.rule),
      fingerprint: String(r.fingerprint),
      labels: r.labels as Record<string, string>,
      from: r.from_state as AlertStateName,
      to: r.to_state as AlertStateName,
      value: r.value === null ? null : Number(r.value),
      requests: num(r.requests),
    }));
  }

  async appendDeliveries(rows: DeliveryAttempt[]): Promise<void> {
    await this.insert(
      'alert_deliveries',
      rows.map((r) => ({
        at: chTime(r.at),
        notification_id: r.notificationId,
        receiver: r.receiver,
        group_key: r.groupKey,
        status: r.status,
        alerts: r.alerts,
        attempt: r.attempt,
        outcome: r.outcome,
        http_status: r.httpStatus,
        latency_ms: r.latencyMs,
        error: r.error,
      })),
    );
  }

  async deliveries(q: {
    from: number;
    to: number;
    receiver?: string;
    limit: number;
  }): Promise<DeliveryAttempt[]> {
    const list = await this.rows<Record<string, unknown>>(
      `SELECT toUnixTimestamp64Milli(at) AS at_ms, notification_id, receiver, group_key, status, alerts, attempt, outcome, ` +
        `http_status, latency_ms, error FROM ${this.db}.alert_deliveries ` +
        `WHERE at >= fromUnixTimestamp64Milli({from:Int64}, 'UTC') AND at < fromUnixTimestamp64Milli({to:Int64}, 'UTC')` +
        (q.receiver !== undefined ? ' AND receiver = {receiver:String}' : '') +
        ` ORDER BY at DESC, notification_id, attempt DESC LIMIT {limit:UInt32}`,
      {
        from: q.from,
        to: q.to,
        limit: q.limit,
        ...(q.receiver !== undefined ? { receiver: q.receiver } : {}),
      },
    );
    return list.map((r) => ({
      at: num(r.at_ms),
      notificationId: String(r.notification_id),
      receiver: String(r.receiver),
      groupKey: String(r.group_key),
      status: r.status as 'firing' | 'resolved',
      alerts: num(r.alerts),
      attempt: num(r.attempt),
      outcome: r.outcome as DeliveryAttempt['outcome'],
      httpStatus: num(r.http_status),
      latencyMs: num(r.latency_ms),
      error: String(r.error),
    }));
  }
}
