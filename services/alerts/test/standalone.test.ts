import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startServiceProcess, type GatescopeProcess } from '../../../test/support/gatescope-process.js';

let proc: GatescopeProcess | undefined;
afterAll(async () => {
  await proc?.stop();
});

describe('services/alerts on its own', () => {
  it('starts from its built entry, provisions the file, leads and reports it on /metrics', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gs-alerts-standalone-'));
    const file = join(dir, 'alerts.yaml');
    writeFileSync(
      file,
      'receivers: [{ name: hook, url: "https://hooks.example.com/x" }]\nrules: [{ name: slow, metric: p99_ms, op: ">", threshold: 800, receivers: [hook] }]\n',
    );
    proc = await startServiceProcess('alerts', {
      dataDir: dir,
      env: { GATESCOPE_ALERTS_FILE: file, GATESCOPE_ALERTS_INTERVAL: '1s', GATESCOPE_METRICS_PUBLIC: '1' },
    });
    expect((await fetch(`${proc.http}readyz`)).status).toBe(200);
    const deadline = Date.now() + 20_000;
    let text = '';
    while (Date.now() < deadline) {
      text = await (await fetch(`${proc.http}metrics`)).text();
      if (/^gatescope_alerts_evaluations_total [1-9]/m.test(text)) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(text).toMatch(/^gatescope_alerts_leader 1$/m);
    expect(text).toMatch(/^gatescope_alerts_rules 1$/m);
    expect(text).toMatch(/^gatescope_alerts_evaluations_total [1-9]/m);
    expect(await proc.stop()).toBe(0);
    proc = undefined;
  });

  it('refuses a bad provisioning file at start and says where', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gs-alerts-standalone-'));
    const file = join(dir, 'alerts.yaml');
    writeFileSync(file, 'rules:\n  - name: x\n    metric: p99\n    op: ">"\n    threshold: 1\n');
    await expect(
      startServiceProcess('alerts', {
        dataDir: dir,
        env: { GATESCOPE_ALERTS_FILE: file },
        inheritStderr: false,
      }),
    ).rejects.toThrow(/alerts\.yaml:3: rules\[0\]\.metric: \\?"p99\\?" is not a metric/);
  });
});
