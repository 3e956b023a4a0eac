import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClickHouse } from '@gatescope/clickhouse';
import { describe, expect, it } from 'vitest';
import { ISTIO_HTTP_STREAM } from '../fixtures/als.js';
import { sendWithPythonClient } from '../support/als-client.js';

const MAIN = fileURLToPath(new URL('../../services/gatescope/dist/main.js', import.meta.url));

describe('SIGTERM', () => {
  it('commits everything received before exiting, even with a batch still open', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'gs-e2e-sigterm-'));
    const child = spawn(process.execPath, [MAIN], {
      env: {
        ...process.env,
        GATESCOPE_DATA_DIR: dataDir,
        GATESCOPE_HTTP_PORT: '0',
        GATESCOPE_ALS_PORT: '0',
        GATESCOPE_RETENTION_DAYS: '3650',
        // Nothing would be flushed for a minute: only the shutdown path can commit these rows.
        GATESCOPE_BATCH_MAX_DELAY_MS: '60000',
        GATESCOPE_BATCH_MAX_ROWS: '100000',
        GATESCOPE_LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let log = '';
    child.stdout.on('data', (d: Buffer) => (log += d.toString()));
    const up = await new Promise<{ http: string; als: string }>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`gatescope did not start:\n${log}`)), 60_000);
      child.stdout.on('data', () => {
        const line = log.split('\n').find((l) => l.includes('gatescope is up'));
        if (line) {
          clearTimeout(t);
          resolve(JSON.parse(line));
        }
      });
    });
    const expected = ISTIO_HTTP_STREAM.reduce((n, f) => n + f.expected.http.length, 0);
    const client = await sendWithPythonClient(up.als, [ISTIO_HTTP_STREAM.map((f) => f.bytes)]);
    // Wait until gatescope has decoded every entry (its own counter), then stop it at once.
    const deadline = Date.now() + 15_000;
    for (;;) {
      const metrics = await (await fetch(`${up.http}metrics`)).text();
      const m = /^gatescope_als_entries_received_total\{type="http"\} (\d+)/m.exec(metrics);
      if (m && Number(m[1]) === expected) break;
      if (Date.now() > deadline) throw new Error(`entries not received in time:\n${metrics}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    expect(code).toBe(0);
    expect(log).toMatch(/shutting down/);
    expect(log).not.toMatch(/"level":(50|60)/);
    await client.finish();

    const ch = await createClickHouse({ database: 'gatescope', dataDir });
    const rs = await ch.client.query({
      query: 'SELECT count() AS n FROM gatescope.http_requests',
      format: 'JSONEachRow',
    });
    expect(Number(((await rs.json()) as { n: number }[])[0].n)).toBe(expected);
    await ch.close();
  });
});
