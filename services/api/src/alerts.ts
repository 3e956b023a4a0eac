import { isIP } from 'node:net';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import {
  AlertConfigError,
  alertLink,
  AlertStore,
  checkAddress,
  crossProblems,
  parseReceiver,
  parseRule,
  ReceiverAddressError,
  type AlertRule,
  type Receiver,
} from '@gatescope/alerts';
import type { ClickHouse } from '@gatescope/clickhouse';
import { parseIntParam, parseTimeRange, singleParam, type RawParams } from '@gatescope/query';
import { ApiError, errorSchema } from './errors.js';

/**
 * Alerting over the API: rules and receivers (read scope lists, admin changes), active alerts, the history of
 * state changes and every webhook delivery attempt. The evaluator (services/alerts, or inside the all-in-one
 * process) picks changes up at its next cycle. Receiver URLs beyond scheme://host:port and secrets are never
 * returned. Alerts span every host, so a token restricted to some hosts is refused here.
 */
export interface AlertRoutesOptions {
  clickhouse: ClickHouse;
  now: () => number;
  /** GATESCOPE_ALERTS_ALLOW_PRIVATE_NETWORK: checked on IP-literal receiver URLs when saved. */
  allowPrivateNetwork: boolean;
}

const errors = { 400: errorSchema, 401: errorSchema, 403: errorSchema, 404: errorSchema, 409: errorSchema };
const stringMap = { type: 'object', additionalProperties: { type: 'string' } } as const;
const nameParam = {
  type: 'object',
  properties: { name: { type: 'string', maxLength: 128 } },
  required: ['name'],
} as const;
const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());

function configError(err: unknown): never {
  if (err instanceof AlertConfigError) throw new ApiError(400, 'ERR_ALERT_CONFIG', err.message);
  throw err;
}

export async function alertRoutes(app: FastifyInstance, opts: AlertRoutesOptions): Promise<void> {
  const store = new AlertStore(opts.clickhouse);
  app.addHook('onRequest', async (req: FastifyRequest) => {
    if (req.auth?.restriction)
      throw new ApiError(
        403,
        'ERR_ALERTS_RESTRICTED',
        'Alerts cover every host: a token restricted to some hosts or gateways cannot read or change them',
      );
  });

  const ruleView = (r: { rule: AlertRule; origin: string; updatedAt: number }) => ({
    ...r.rule,
    origin: r.origin,
    updated_at: iso(r.updatedAt),
  });

  app.get(
    '/api/v1/alerts',
    {
      config: { access: 'read' },
      schema: {
        summary:
          'Active alerts (pending and firing series), with their current value and a link to the route',
        tags: ['alerts'],
        querystring: {
          type: 'object',
          properties: { state: { type: 'string', enum: ['pending', 'firing', 'resolved'] } },
          additionalProperties: false,
        },
        response: {
          200: {
            type: 'object',
            properties: {
              alerts: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    rule: { type: 'string' },
                    fingerprint: { type: 'string' },
                    state: { type: 'string' },
                    labels: stringMap,
                    annotations: stringMap,
                    value: { type: ['number', 'null'] },
                    requests: { type: 'integer' },
                    active_at: { type: ['string', 'null'] },
                    fired_at: { type: ['string', 'null'] },
                    resolved_at: { type: ['string', 'null'] },
                    evaluated_at: { type: 'string' },
                    link: { type: 'string' },
                  },
                },
              },
            },
          },
          ...errors,
        },
      },
    },
    async (req) => {
      const wanted = (req.query as { state?: 'pending' | 'firing' | 'resolved' }).state;
      const [states, rules] = await Promise.all([
        store.loadStates({ states: wanted ? [wanted] : ['pending', 'firing'] }),
        store.listRules(),
      ]);
      const byName = new Map(rules.map((r) => [r.rule.name, r.rule]));
      return {
        alerts: states
          .filter((s) => byName.has(s.rule))
          .map((s) => {
            const rule = byName.get(s.rule)!;
            const { windowMs, metric } = parseRule(rule);
            const from = (s.activeAt ?? s.evaluatedAt) - windowMs;
            return {
              rule: s.rule,
              fingerprint: s.fingerprint,
              state: s.state,
              labels: s.labels,
              annotations: s.annotations,
              value: s.value,
              requests: s.requests,
              active_at: iso(s.activeAt),
              fired_at: iso(s.firedAt),
              resolved_at: iso(s.resolvedAt),
              evaluated_at: iso(s.evaluatedAt)!,
              link: alertLink('/', {
                labels: s.labels,
                filter: rule.filter,
                from,
                to: s.resolvedAt ?? Math.max(s.evaluatedAt, opts.now()),
                source: metric.source,
              }),
            };
          }),
      };
    },
  );

  const rangeQuery = (extra: Record<string, unknown>) => ({
    type: 'object',
    properties: {
      from: { type: 'string' },
      to: { type: 'string' },
      range: { type: 'string', description: 'Default 24h' },
      limit: { type: 'string', description: '1..5000, default 500' },
      ...extra,
    },
    additionalProperties: false,
  });
  const range = (params: RawParams) =>
    parseTimeRange(
      params.from === undefined && params.range === undefined ? { ...params, range: '24h' } : params,
      opts.now(),
    );

  app.get(
    '/api/v1/alerts/history',
    {
      config: { access: 'read' },
      schema: {
        summary: 'State changes of alert series (pending, firing, resolved, inactive), newest first',
        tags: ['alerts'],
        querystring: rangeQuery({ rule: { type: 'string' } }),
        response: {
          200: {
            type: 'object',
            properties: {
              from: { type: 'string' },
              to: { type: 'string' },
              history: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    at: { type: 'string' },
                    rule: { type: 'string' },
                    fingerprint: { type: 'string' },
                    labels: stringMap,
                    from: { type: 'string' },
                    to: { type: 'string' },
                    value: { type: ['number', 'null'] },
                    requests: { type: 'integer' },
                  },
                },
              },
            },
          },
          ...errors,
        },
      },
    },
    async (req) => {
      const params = req.query as RawParams;
      const r = range(params);
      const rows = await store.history({
        ...r,
        rule: singleParam(params, 'rule'),
        limit: parseIntParam(params, 'limit', 500, 1, 5000),
      });
      return {
        from: iso(r.from),
        to: iso(r.to),
        history: rows.map((h) => ({ ...h, at: iso(h.at) })),
      };
    },
  );

  app.get(
    '/api/v1/alerts/deliveries',
    {
      config: { access: 'read' },
      schema: {
        summary: 'Webhook delivery attempts (outcome, HTTP status, latency, error), newest first',
        tags: ['alerts'],
        querystring: rangeQuery({ receiver: { type: 'string' } }),
        response: {
          200: {
            type: 'object',
            properties: {
              from: { type: 'string' },
              to: { type: 'string' },
              deliveries: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    at: { type: 'string' },
                    notification_id: { type: 'string' },
                    receiver: { type: 'string' },
                    group_key: { type: 'string' },
                    status: { type: 'string' },
                    alerts: { type: 'integer' },
                    attempt: { type: 'integer' },
                    outcome: { type: 'string' },
                    http_status: { type: 'integer' },
                    latency_ms: { type: 'number' },
                    error: { type: 'string' },
                  },
                },
              },
            },
          },
          ...errors,
        },
      },
    },
    async (req) => {
      const params = req.query as RawParams;
      const r = range(params);
      const rows = await store.deliveries({
        ...r,
        receiver: singleParam(params, 'receiver'),
        limit: parseIntParam(params, 'limit', 500, 1, 5000),
      });
      return {
        from: iso(r.from),
        to: iso(r.to),
        deliveries: rows.map((d) => ({
          at: iso(d.at),
          notification_id: d.notificationId,
          receiver: d.receiver,
          group_key: d.groupKey,
          status: d.status,
          alerts: d.alerts,
          attempt: d.attempt,
          outcome: d.outcome,
          http_status: d.httpStatus,
          latency_ms: d.latencyMs,
          error: d.error,
        })),
      };
    },
  );

  // ---- rules ---------------------------------------------------------------------------------------------
  const ruleItem = { type: 'object', additionalProperties: true } as const;
  app.get(
    '/api/v1/alerts/rules',
    {
      config: { access: 'read' },
      schema: {
        summary: 'Alert rules (origin: file for GATESCOPE_ALERTS_FILE, api for those made here)',
        tags: ['alerts'],
        response: {
          200: { type: 'object', properties: { rules: { type: 'array', items: ruleItem } } },
          ...errors,
        },
      },
    },
    async () => ({ rules: (await store.listRules()).map(ruleView) }),
  );

  async function saveRule(body: unknown, name: string | undefined, mode: 'create' | 'replace') {
    const input = { ...(body as Record<string, unknown>) };
    if (name !== undefined) {
      if (input.name !== undefined && input.name !== name)
        throw new ApiError(
          400,
          'ERR_ALERT_CONFIG',
          `name: the body says "${String(input.name)}" but the URL "${name}"`,
        );
      input.name = name;
    }
    let rule: AlertRule;
    try {
      rule = parseRule(input).rule;
    } catch (err) {
      configError(err);
    }
    const [rules, receivers] = await Promise.all([store.listRules(), store.listReceivers()]);
    const existing = rules.find((r) => r.rule.name === rule.name);
    if (existing && mode === 'create')
      throw new ApiError(
        409,
        'ERR_ALERT_EXISTS',
        `rule "${rule.name}" exists: PUT /api/v1/alerts/rules/${rule.name} replaces it`,
      );
    if (existing?.origin === 'file')
      throw new ApiError(
        409,
        'ERR_ALERT_PROVISIONED',
        `rule "${rule.name}" comes from GATESCOPE_ALERTS_FILE: change it there (the file wins at every start)`,
      );
    const problems = crossProblems(receivers as unknown as Receiver[], [rule]);
    if (problems.length) throw new ApiError(400, 'ERR_ALERT_CONFIG', problems.join('; '));
    await store.putRules([rule], 'api', opts.now());
    return rule;
  }

  const bodySchema = { type: 'object', additionalProperties: true } as const;
  app.post(
    '/api/v1/alerts/rules',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Create a rule (the provisioning file format, as JSON)',
        tags: ['alerts'],
        body: bodySchema,
        response: { 201: ruleItem, ...errors },
      },
    },
    async (req, reply) => {
      const rule = await saveRule(req.body, undefined, 'create');
      return reply.code(201).send({ ...rule, origin: 'api' });
    },
  );
  app.put(
    '/api/v1/alerts/rules/:name',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Create or replace a rule',
        tags: ['alerts'],
        params: nameParam,
        body: bodySchema,
        response: { 200: ruleItem, ...errors },
      },
    },
    async (req) => ({
      ...(await saveRule(req.body, (req.params as { name: string }).name, 'replace')),
      origin: 'api',
    }),
  );
  app.delete(
    '/api/v1/alerts/rules/:name',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Delete a rule',
        tags: ['alerts'],
        params: nameParam,
        response: { 204: { type: 'null' }, ...errors },
      },
    },
    async (req, reply) => {
      const name = (req.params as { name: string }).name;
      const existing = (await store.listRules()).find((r) => r.rule.name === name);
      if (!existing) throw new ApiError(404, 'ERR_ALERT_NOT_FOUND', `there is no rule "${name}"`);
      if (existing.origin === 'file')
        throw new ApiError(
          409,
          'ERR_ALERT_PROVISIONED',
          `rule "${name}" comes from GATESCOPE_ALERTS_FILE: remove it there`,
        );
      await store.deleteRules([name], opts.now());
      return reply.code(204).send();
    },
  );

  // ---- receivers -----------------------------------------------------------------------------------------
  const receiverItem = {
    type: 'object',
    properties: {
      name: { type: 'string' },
      url_origin: {
        type: 'string',
        description: 'scheme://host[:port]; the path and secret are never returned',
      },
      has_secret: { type: 'boolean' },
      allow_private_network: { type: 'boolean' },
      timeout: { type: 'string' },
      group_by: { type: 'array', items: { type: 'string' } },
      group_wait: { type: 'string' },
      group_interval: { type: 'string' },
      repeat_interval: { type: 'string' },
      send_resolved: { type: 'boolean' },
      origin: { type: 'string' },
      updated_at: { type: 'string' },
    },
  } as const;
  app.get(
    '/api/v1/alerts/receivers',
    {
      config: { access: 'read' },
      schema: {
        summary: 'Webhook receivers (never their URL path or secret)',
        tags: ['alerts'],
        response: {
          200: { type: 'object', properties: { receivers: { type: 'array', items: receiverItem } } },
          ...errors,
        },
      },
    },
    async () => ({ receivers: await store.listReceivers() }),
  );

  async function saveReceiver(body: unknown, name: string | undefined, mode: 'create' | 'replace') {
    const input = { ...(body as Record<string, unknown>) };
    if (name !== undefined) {
      if (input.name !== undefined && input.name !== name)
        throw new ApiError(
          400,
          'ERR_ALERT_CONFIG',
          `name: the body says "${String(input.name)}" but the URL "${name}"`,
        );
      input.name = name;
    }
    let receiver: Receiver;
    try {
      receiver = parseReceiver(input);
    } catch (err) {
      configError(err);
    }
    // An IP literal is checked now; a host name when it is resolved, at every delivery.
    const host = new URL(receiver.url).hostname.replace(/^\[(.*)\]$/, '$1');
    if (isIP(host)) {
      try {
        checkAddress(receiver.name, host, host, receiver.allow_private_network || opts.allowPrivateNetwork);
      } catch (err) {
        if (err instanceof ReceiverAddressError) throw new ApiError(400, err.code, err.message);
        throw err;
      }
    }
    const existing = (await store.listReceivers()).find((r) => r.name === receiver.name);
    if (existing && mode === 'create')
      throw new ApiError(
        409,
        'ERR_ALERT_EXISTS',
        `receiver "${receiver.name}" exists: PUT /api/v1/alerts/receivers/${receiver.name} replaces it`,
      );
    if (existing?.origin === 'file')
      throw new ApiError(
        409,
        'ERR_ALERT_PROVISIONED',
        `receiver "${receiver.name}" comes from GATESCOPE_ALERTS_FILE: change it there`,
      );
    await store.putReceivers([receiver], 'api', opts.now());
    return (await store.listReceivers()).find((r) => r.name === receiver.name);
  }

  app.post(
    '/api/v1/alerts/receivers',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Create a webhook receiver',
        tags: ['alerts'],
        body: bodySchema,
        response: { 201: receiverItem, ...errors },
      },
    },
    async (req, reply) => reply.code(201).send(await saveReceiver(req.body, undefined, 'create')),
  );
  app.put(
    '/api/v1/alerts/receivers/:name',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Create or replace a webhook receiver',
        tags: ['alerts'],
        params: nameParam,
        body: bodySchema,
        response: { 200: receiverItem, ...errors },
      },
    },
    async (req) => saveReceiver(req.body, (req.params as { name: string }).name, 'replace'),
  );
  app.delete(
    '/api/v1/alerts/receivers/:name',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Delete a webhook receiver no rule uses',
        tags: ['alerts'],
        params: nameParam,
        response: { 204: { type: 'null' }, ...errors },
      },
    },
    async (req, reply) => {
      const name = (req.params as { name: string }).name;
      const [receivers, rules] = await Promise.all([store.listReceivers(), store.listRules()]);
      const existing = receivers.find((r) => r.name === name);
      if (!existing) throw new ApiError(404, 'ERR_ALERT_NOT_FOUND', `there is no receiver "${name}"`);
      if (existing.origin === 'file')
        throw new ApiError(
          409,
          'ERR_ALERT_PROVISIONED',
          `receiver "${name}" comes from GATESCOPE_ALERTS_FILE: remove it there`,
        );
      const users = rules.filter((r) => r.rule.receivers.includes(name)).map((r) => r.rule.name);
      if (users.length)
        throw new ApiError(
          409,
          'ERR_ALERT_IN_USE',
          `receiver "${name}" is used by rule(s) ${users.join(', ')}: change those first`,
        );
      await store.deleteReceivers([name], opts.now());
      return reply.code(204).send();
    },
  );
}
