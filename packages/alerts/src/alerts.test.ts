import { describe, expect, it } from 'vitest';
import {
  advance,
  AlertConfigError,
  alertLink,
  buildPayload,
  checkAddress,
  dueNotification,
  fillTemplate,
  fingerprint,
  groupKey,
  ingestSeries,
  isPrivateAddress,
  parseAlertDuration,
  parseAlertsFile,
  parseRule,
  ReceiverAddressError,
  sign,
  verify,
  type AlertInstance,
  type GroupState,
  type SeriesState,
} from './index.js';

describe('Standard Webhooks signature', () => {
  it('matches the specification test vector', () => {
    // https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md (example)
    const sig = sign(
      'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
      'msg_p5jXN8AQM9LWM0D4loKWxJek',
      1614265330,
      '{"test": 2432232314}',
    );
    expect(sig).toBe('v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=');
  });
  it('verifies, and refuses a changed body, another secret or an old timestamp', () => {
    const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    const h = {
      id: 'msg_1',
      timestamp: '1700000000',
      signature: sign(secret, 'msg_1', 1700000000, '{"a":1}'),
    };
    expect(verify(secret, h, '{"a":1}', 1700000010)).toBe(true);
    expect(verify(secret, h, '{"a":2}', 1700000010)).toBe(false);
    expect(verify('whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', h, '{"a":1}', 1700000010)).toBe(false);
    expect(verify(secret, h, '{"a":1}', 1700000000 + 3600)).toBe(false);
    expect(verify(secret, { ...h, signature: `v1,bogus ${h.signature}` }, '{"a":1}', 1700000010)).toBe(true);
  });
});

const judge = { op: '>' as const, threshold: 0.05, forMs: 60_000, minRequests: 20 };
const fresh = (): SeriesState => ({
  rule: 'r',
  fingerprint: 'f',
  labels: {},
  state: 'inactive',
  value: null,
  requests: 0,
  evaluatedAt: 0,
});

describe('state machine', () => {
  it('goes inactive -> pending -> firing after `for`, -> resolved when the value recovers', () => {
    let s = fresh();
    const seen: string[] = [];
    const step = (t: number, value: number | undefined, requests = 100) => {
      const r = advance(s, value === undefined ? undefined : { value, requests }, judge, t);
      s = r.next;
      if (r.transition) seen.push(`${r.transition.from}->${r.transition.to}@${t}`);
    };
    step(0, 0.01);
    step(15_000, 0.1);
    step(30_000, 0.2);
    step(74_999, 0.2);
    step(75_000, 0.2);
    step(90_000, 0.3);
    step(105_000, 0.01);
    expect(seen).toEqual(['inactive->pending@15000', 'pending->firing@75000', 'firing->resolved@105000']);
    expect(s).toMatchObject({ state: 'resolved', activeAt: 15_000, firedAt: 75_000, resolvedAt: 105_000 });
    step(120_000, 0.5);
    expect(s).toMatchObject({
      state: 'pending',
      activeAt: 120_000,
      firedAt: undefined,
      resolvedAt: undefined,
    });
  });
  it('fires at once with for: 0s; a pending series that dips goes back to inactive', () => {
    expect(advance(fresh(), { value: 0.5, requests: 100 }, { ...judge, forMs: 0 }, 5).next.state).toBe(
      'firing',
    );
    const pending = advance(fresh(), { value: 0.5, requests: 100 }, judge, 0).next;
    expect(advance(pending, { value: 0.01, requests: 100 }, judge, 15_000).transition).toEqual({
      from: 'pending',
      to: 'inactive',
      at: 15_000,
    });
  });
  it('does not judge below min_requests: pending drops, firing is held; no traffic at all resolves', () => {
    const pending = advance(fresh(), { value: 0.5, requests: 100 }, judge, 0).next;
    expect(advance(pending, { value: 0.9, requests: 5 }, judge, 15_000).next.state).toBe('inactive');
    const firing = advance(fresh(), { value: 0.5, requests: 100 }, { ...judge, forMs: 0 }, 0).next;
    const held = advance(firing, { value: 0, requests: 5 }, judge, 15_000);
    expect(held.next.state).toBe('firing');
    expect(held.transition).toBeUndefined();
    expect(advance(firing, undefined, judge, 15_000).next.state).toBe('resolved');
    expect(advance(fresh(), { value: 1, requests: 19 }, judge, 0).next.state).toBe('inactive');
    expect(advance(fresh(), { value: null, requests: 100 }, judge, 0).next.state).toBe('inactive');
  });
  it('compares with every operator', () => {
    for (const [op, value, fires] of [
      ['>', 0.05, false],
      ['>=', 0.05, true],
      ['<', 0.04, true],
      ['<=', 0.06, false],
    ] as const) {
      const r = advance(fresh(), { value, requests: 100 }, { ...judge, op, forMs: 0 }, 0);
      expect(r.next.state, op).toBe(fires ? 'firing' : 'inactive');
    }
  });
});

const alert = (fp: string, status: 'firing' | 'resolved' = 'firing'): AlertInstance => ({
  fingerprint: fp,
  rule: 'r',
  labels: { alertname: 'r', route: fp, severity: 'page' },
  annotations: { summary: `${fp} down` },
  status,
  startsAt: 1_000,
  endsAt: status === 'resolved' ? 9_000 : undefined,
  generatorURL: 'https://x/',
  value: 1,
});
const timing = {
  groupWaitMs: 30_000,
  groupIntervalMs: 300_000,
  repeatIntervalMs: 4 * 3_600_000,
  sendResolved: true,
};

describe('grouping like Alertmanager', () => {
  const group = (): GroupState => ({
    key: 'k',
    receiver: 'oncall',
    labels: { alertname: 'r' },
    createdAt: 0,
    sentFiring: [],
  });
  it('waits group_wait, then sends every firing alert of the group in one webhook', () => {
    const alerts = Array.from({ length: 30 }, (_, i) => alert(`route-${String(i).padStart(2, '0')}`));
    expect(dueNotification(group(), alerts, timing, 29_999)).toBeUndefined();
    const due = dueNotification(group(), alerts, timing, 30_000)!;
    expect(due.alerts).toHaveLength(30);
    expect(due.after).toMatchObject({ lastSentAt: 30_000 });
    expect(due.after!.sentFiring).toHaveLength(30);
  });
  it('sends a changed group after group_interval, an unchanged one after repeat_interval', () => {
    const g = { ...group(), lastSentAt: 30_000, sentFiring: ['a'] };
    expect(dueNotification(g, [alert('a')], timing, 30_000 + 300_000)).toBeUndefined();
    expect(dueNotification(g, [alert('a')], timing, 30_000 + 4 * 3_600_000)!.alerts).toHaveLength(1);
    expect(dueNotification(g, [alert('a'), alert('b')], timing, 30_000 + 299_999)).toBeUndefined();
    expect(
      dueNotification(g, [alert('a'), alert('b')], timing, 30_000 + 300_000)!.alerts.map(
        (a) => a.fingerprint,
      ),
    ).toEqual(['a', 'b']);
  });
  it('announces a resolved alert once, with the ones still firing, and ends the group when all resolved', () => {
    const g = { ...group(), lastSentAt: 0, sentFiring: ['a', 'b'] };
    const due = dueNotification(g, [alert('a', 'resolved'), alert('b')], timing, 300_000)!;
    expect(due.alerts.map((a) => `${a.fingerprint}:${a.status}`)).toEqual(['b:firing', 'a:resolved']);
    expect(due.after!.sentFiring).toEqual(['b']);
    const end = dueNotification(due.after!, [alert('b', 'resolved')], timing, 600_000)!;
    expect(end.alerts.map((a) => a.status)).toEqual(['resolved']);
    expect(end.after).toBeUndefined();
    // An alert that resolved before it was ever announced is not sent.
    expect(
      dueNotification(
        { ...group(), lastSentAt: 0, sentFiring: ['b'] },
        [alert('c', 'resolved'), alert('b')],
        timing,
        1e9,
      )!.alerts.map((a) => a.fingerprint),
    ).toEqual(['b']);
    // send_resolved: false ends the group silently.
    const quiet = dueNotification(
      g,
      [alert('a', 'resolved'), alert('b', 'resolved')],
      { ...timing, sendResolved: false },
      300_000,
    )!;
    expect(quiet.alerts).toEqual([]);
    expect(quiet.after).toBeUndefined();
  });
  it("builds Alertmanager's v4 body with common labels and annotations", () => {
    const p = buildPayload({
      receiver: 'oncall',
      group: { key: groupKey('oncall', { alertname: 'r' }), labels: { alertname: 'r' } },
      alerts: [alert('a'), alert('b', 'resolved')],
      externalURL: 'https://gs/',
    });
    expect(p).toMatchObject({
      version: '4',
      groupKey: '{}/{receiver="oncall"}:{alertname="r"}',
      truncatedAlerts: 0,
      status: 'firing',
      receiver: 'oncall',
      groupLabels: { alertname: 'r' },
      commonLabels: { alertname: 'r', severity: 'page' },
      commonAnnotations: {},
      externalURL: 'https://gs/',
    });
    expect(p.alerts[0]).toEqual({
      status: 'firing',
      labels: { alertname: 'r', route: 'a', severity: 'page' },
      annotations: { summary: 'a down' },
      startsAt: '1970-01-01T00:00:01.000Z',
      endsAt: '0001-01-01T00:00:00Z',
      generatorURL: 'https://x/',
      fingerprint: 'a',
    });
    expect(p.alerts[1].endsAt).toBe('1970-01-01T00:00:09.000Z');
    expect(
      buildPayload({
        receiver: 'o',
        group: { key: 'k', labels: {} },
        alerts: [alert('a', 'resolved')],
        externalURL: '',
      }).status,
    ).toBe('resolved');
  });
  it('fingerprints label sets like Alertmanager (FNV-1a 64, sorted names, 0xff separators)', () => {
    expect(fingerprint({})).toBe('cbf29ce484222325');
    expect(fingerprint({ a: 'b', c: 'd' })).toBe(fingerprint({ c: 'd', a: 'b' }));
    expect(fingerprint({ a: 'bc' })).not.toBe(fingerprint({ ab: 'c' }));
    expect(fingerprint({ alertname: 'x' })).toMatch(/^[0-9a-f]{16}$/);
    // Pinned values, and the arithmetic against a BigInt FNV-1a 64 over many label sets (multi-byte UTF-8 too).
    expect(fingerprint({ alertname: 'x' })).toBe('d240efc3896bf266');
    expect(fingerprint({ alertname: 'route-5xx', route: 'checkout', severity: 'page' })).toBe(
      '60685965b0e02e7a',
    );
    expect(fingerprint({ é: 'ü—✓', z: '' })).toBe('07402580d973922b');
    const reference = (labels: Record<string, string>) => {
      let h = 0xcbf29ce484222325n;
      const add = (bytes: Iterable<number>) => {
        for (const b of bytes) h = ((h ^ BigInt(b)) * 0x100000001b3n) & 0xffffffffffffffffn;
      };
      for (const name of Object.keys(labels).sort()) {
        add(new TextEncoder().encode(name));
        add([0xff]);
        add(new TextEncoder().encode(labels[name]));
        add([0xff]);
      }
      return h.toString(16).padStart(16, '0');
    };
    for (let i = 0; i < 300; i++) {
      const labels = {
        alertname: `rule-${i}`,
        route: `r${(i * 7919) % 1000}/ä${'x'.repeat(i % 13)}`,
        n: String(i * i),
        // 2-, 3- and 4-byte UTF-8, and a lone surrogate (encoded as U+FFFD, like TextEncoder).
        u: ['ß', '✓', '🚀', '\ud800x', 'x\udfff'][i % 5].repeat(1 + (i % 3)),
      };
      expect(fingerprint(labels)).toBe(reference(labels));
    }
  });
  it('links to the route page for the alert window, with the rule filters', () => {
    const url = alertLink('https://gs.example.com', {
      labels: { route: 'shop/cart', authority: 'a.example.com' },
      filter: { gateway: ['gw-1', 'gw-2'] },
      from: 1_000,
      to: 61_000.4,
    });
    expect(url).toBe(
      'https://gs.example.com/#/route?name=shop%2Fcart&gateway=gw-1&gateway=gw-2&authority=a.example.com&from=1000&to=61001',
    );
    expect(alertLink('/', { labels: {}, filter: {}, from: 0, to: 1 })).toBe('/#/overview?from=0&to=1');
  });
  it('links an ingest alert to the Ingest page for its time range, not to a route or the overview', () => {
    const labels = { node_id: 'gw-1', node_cluster: 'istio-ingressgateway', log_name: 'als', route: 'x' };
    expect(
      alertLink('https://gs.example.com/', {
        labels,
        filter: { gateway: 'gw-1' },
        from: 1_000,
        to: 61_000.4,
        source: 'ingest',
      }),
    ).toBe('https://gs.example.com/#/ingest?from=1000&to=61001');
    // The same labels on a traffic rule keep pointing to the route's page.
    expect(
      alertLink('https://gs.example.com/', { labels, filter: {}, from: 1_000, to: 2_000, source: 'traffic' }),
    ).toMatch(/#\/route\?name=x&/);
  });
});

describe('templates', () => {
  const data = {
    labels: { route: 'checkout' },
    value: 0.07345,
    threshold: 0.05,
    requests: 1234,
    window: '5m',
    metric: 'error_rate',
    rule: 'r5xx',
  };
  it('fills labels, value and the rest', () => {
    expect(fillTemplate('{{ $labels.route }} 5xx at {{ $value }}', data)).toBe('checkout 5xx at 0.07345');
    expect(
      fillTemplate(
        '{{$value | humanizePercentage}} > {{ $threshold|humanizePercentage }} over {{ $window }}',
        data,
      ),
    ).toBe('7.345% > 5% over 5m');
    expect(fillTemplate('{{ $requests | humanize }} requests, {{ $labels.missing }}!', data)).toBe(
      '1.234k requests, !',
    );
    expect(fillTemplate('{{ $value }}', { ...data, value: null })).toBe('n/a');
  });
  it('refuses what it cannot fill when the rule is saved', () => {
    expect(() =>
      parseRule({
        name: 'x',
        metric: 'rps',
        op: '>',
        threshold: 1,
        annotations: { s: '{{ .Labels.route }}' },
      }),
    ).toThrow(/annotations.s: "\{\{ .Labels.route \}\}" is not supported/);
  });
});

describe('rules and the provisioning file', () => {
  it('parses the documented example with defaults', () => {
    const file = parseAlertsFile(`
receivers:
  - name: oncall
    url: https://hooks.example.com/gatescope
    secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
    allow_private_network: false
rules:
  - name: route-5xx
    metric: error_rate
    filter: { authority: shop.example.com }
    group_by: [route]
    op: ">"
    threshold: 0.05
    window: 5m
    for: 1m
    min_requests: 20
    labels: { severity: page }
    annotations: { summary: "{{ $labels.route }} 5xx at {{ $value }}" }
    receivers: [oncall]
  - name: p99
    metric: p99_ms
    op: ">="
    threshold: 800
    receivers: [oncall]
`);
    expect(file.receivers[0]).toMatchObject({
      name: 'oncall',
      group_by: ['alertname'],
      group_wait: '30s',
      send_resolved: true,
    });
    expect(file.rules[0]).toMatchObject({
      windowMs: 300_000,
      forMs: 60_000,
      groupBy: ['route'],
      filters: { authority: ['shop.example.com'] },
    });
    expect(file.rules[1]).toMatchObject({
      windowMs: 300_000,
      forMs: 0,
      rule: { min_requests: 1, enabled: true },
    });
    expect(parseRule({ name: 'f', metric: 'flag:UH', op: '>', threshold: 0 }).metric).toMatchObject({
      responseFlag: 'UH',
    });
    expect(parseRule({ name: 'c', metric: 'class:4xx', op: '>', threshold: 0 }).metric.unit).toBe('requests');
  });
  it('takes the ledger metrics per gateway node, judging silence with no entries at all', () => {
    const node = {
      node_id: 'router~10.0.0.7~gw-1.istio-system~istio-system.svc.cluster.local',
      node_cluster: 'istio-ingressgateway',
      log_name: 'als',
      messages: 3,
      entries_received: 400,
      entries_stored: 390,
      entries_dropped: { insert_failed: 6, dead_lettered: 4 },
      messages_rejected: {},
      entries_in_flight: 0,
      entries_in_flight_at_start: 0,
      streams_open: 0,
      first_seen: '2026-01-01T00:00:00.000Z',
      last_seen: '2026-01-01T00:01:00.000Z',
      status: 'stale' as const,
    };
    const atMs = Date.parse('2026-01-01T00:04:30.000Z');
    const silence = parseRule({
      name: 'gateway-silent',
      metric: 'ingest_silence_seconds',
      op: '>',
      threshold: 180,
      filter: { gateway: 'istio-ingressgateway' },
    });
    expect(silence.metric).toMatchObject({ source: 'ingest', unit: 'seconds', minRequestsApplies: false });
    expect(silence.seriesLabels).toEqual(['node_id', 'node_cluster', 'log_name']);
    expect(silence.filters).toEqual({ gateway: ['istio-ingressgateway'] });
    if (silence.metric.source !== 'ingest') throw new Error('not an ingest metric');
    expect(silence.metric.value({ node, atMs })).toBe(210);
    expect(silence.metric.value({ node: { ...node, last_seen: null }, atMs })).toBeNull();
    const drops = parseRule({ name: 'dropping', metric: 'ingest_drop_rate', op: '>', threshold: 0.01 });
    expect(drops.metric).toMatchObject({ source: 'ingest', unit: 'ratio', minRequestsApplies: true });
    if (drops.metric.source !== 'ingest') throw new Error('not an ingest metric');
    expect(drops.metric.value({ node, atMs })).toBeCloseTo(10 / 400, 12);
    // One series per node; a node that sent nothing in the window is kept, a gone one is left out.
    const quiet = { ...node, node_id: 'quiet', entries_received: 0, entries_dropped: {} };
    const gone = { ...node, node_id: 'decommissioned', status: 'gone' as const };
    const series = ingestSeries(silence.metric, [node, quiet, gone], atMs);
    expect([...series.keys()]).toEqual([
      JSON.stringify([node.node_id, 'istio-ingressgateway', 'als']),
      JSON.stringify(['quiet', 'istio-ingressgateway', 'als']),
    ]);
    expect(series.get(JSON.stringify(['quiet', 'istio-ingressgateway', 'als']))).toEqual({
      groupValues: ['quiet', 'istio-ingressgateway', 'als'],
      obs: { value: 210, requests: 0 },
    });
    expect([...ingestSeries(drops.metric, [quiet], atMs).values()][0].obs).toEqual({ value: 0, requests: 0 });
    // Traffic metrics keep their group_by labels.
    expect(
      parseRule({ name: 'e', metric: 'error_rate', op: '>', threshold: 0, group_by: ['route'] }).seriesLabels,
    ).toEqual(['route']);
  });
  it('refuses request filters, group_by and node labels on ledger metrics, saying why', () => {
    const problems = (rule: object) => {
      try {
        parseRule({ name: 'r', op: '>', threshold: 1, ...rule });
        return [];
      } catch (err) {
        return (err as AlertConfigError).problems;
      }
    };
    expect(problems({ metric: 'ingest_silence_seconds', filter: { route: 'checkout' } })).toEqual([
      'filter: ingest_silence_seconds is measured per gateway node, not per request: "route" does not apply; only gateway (a node_id or node_cluster) narrows which nodes it watches',
    ]);
    expect(problems({ metric: 'ingest_drop_rate', group_by: ['gateway'] })).toEqual([
      'group_by: ingest_drop_rate is always per gateway node (labels node_id, node_cluster, log_name); remove group_by',
    ]);
    expect(problems({ metric: 'ingest_drop_rate', labels: { node_id: 'x' } })).toEqual([
      'labels: "node_id" is set by the rule itself (alertname, the node labels)',
    ]);
    expect(problems({ metric: 'ingest_silence_seconds', filter: { nope: 'x' } })[0]).toMatch(
      /"nope" is not a filter/,
    );
    expect(problems({ metric: 'ingest_silence' })[0]).toMatch(/ingest_silence_seconds or ingest_drop_rate/);
    // A traffic metric still takes route filters and node_id as an ordinary label.
    expect(
      problems({ metric: 'error_rate', filter: { route: 'checkout' }, labels: { node_id: 'x' } }),
    ).toEqual([]);
  });
  it('lists every problem with its line and field', () => {
    let err: AlertConfigError | undefined;
    try {
      parseAlertsFile(
        `receivers:
  - name: oncall
    url: ftp://x
rules:
  - name: a
    metric: p42_ms
    op: "!="
    threshold: 1
  - name: b
    metric: error_rate
    op: ">"
    threshold: 1
    group_by: [path]
    window: 5 minutes
    receivers: [pager]
`,
        'alerts.yaml',
      );
    } catch (e) {
      err = e as AlertConfigError;
    }
    expect(err).toBeInstanceOf(AlertConfigError);
    const text = err!.problems.join('\n');
    expect(text).toMatch(/alerts\.yaml:3: receivers\[0\]\.url: ftp: is not http: or https:/);
    expect(text).toMatch(/alerts\.yaml:7: rules\[0\]\.op: op must be one of > >= < <=/);
    expect(text).toMatch(/alerts\.yaml:14: rules\[1\]\.window: "5 minutes" is not a duration/);
    expect(() =>
      parseAlertsFile('rules: [ {name: x, metric: rps, op: ">", threshold: 1, receivers: [nobody]} ]'),
    ).toThrow(/rule "x" names receiver "nobody", which is not defined/);
    expect(() => parseAlertsFile('rules: [oops')).toThrow(/YAML/);
    expect(() =>
      parseRule({ name: 'x', metric: 'rps', op: '>', threshold: 1, filter: { colour: 'red' } }),
    ).toThrow(/"colour" is not a filter/);
    expect(() => parseRule({ name: 'x', metric: 'rps', op: '>', threshold: 1, group_by: ['path'] })).toThrow(
      /group_by: "path" is not one of/,
    );
    expect(() => parseRule({ name: 'x', metric: 'flag:uh', op: '>', threshold: 1 })).toThrow(
      /short code in capitals/,
    );
    expect(() =>
      parseRule({ name: 'x', metric: 'rps', op: '>', threshold: 1, labels: { alertname: 'y' } }),
    ).toThrow(/set by the rule itself/);
  });
  it('reads durations the API way, plus zero', () => {
    expect(parseAlertDuration('0s')).toBe(0);
    expect(parseAlertDuration('15s')).toBe(15_000);
    expect(parseAlertDuration('1h')).toBe(3_600_000);
    expect(parseAlertDuration('1.5m')).toBeUndefined();
  });
});

describe('SSRF address rule', () => {
  it('refuses loopback, private, link-local, CGNAT and IPv4-in-IPv6 forms', () => {
    for (const a of [
      '127.0.0.1',
      '10.0.0.1',
      '172.16.5.4',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '0.0.0.0',
      '::1',
      '::',
      'fd00::1',
      'fe80::1',
      '::ffff:127.0.0.1',
      '::ffff:7f00:1',
      '::ffff:a9fe:a9fe',
      '64:ff9b::10.0.0.1',
    ])
      expect(isPrivateAddress(a), a).toBe(true);
    for (const a of ['8.8.8.8', '1.1.1.1', '172.32.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8'])
      expect(isPrivateAddress(a), a).toBe(false);
  });
  it('says what was refused and how to allow it', () => {
    expect(() => checkAddress('oncall', 'hooks.internal', '10.1.2.3', false)).toThrow(ReceiverAddressError);
    expect(() => checkAddress('oncall', 'hooks.internal', '10.1.2.3', false)).toThrow(
      /receiver "oncall": hooks.internal resolves to 10.1.2.3, a private address; .*allow_private_network: true/,
    );
    expect(() => checkAddress('oncall', '10.1.2.3', '10.1.2.3', true)).not.toThrow();
    expect(() => checkAddress('oncall', 'x', '8.8.8.8', false)).not.toThrow();
  });
});
