import { createClickHouse } from '@gatescope/clickhouse';
import { describe, expect, it } from 'vitest';
import { ISTIO_HTTP_STREAM } from '../fixtures/als.js';
import { sendWithPythonClient } from '../support/als-client.js';
import { startGatescopeProcess } from '../support/gatescope-process.js';

describe('SIGTERM', () => {
  it('commits everything received before exiting, even with a batch still open', async () => {
    const gs = await startGatescopeProcess({
      env: {
        GATESCOPE_RETENTION_DAYS: '3650',
        // Nothing would be flushed for a minute: only the shutdown path can commit these rows.
        GATESCOPE_BATCH_MAX_DELAY_MS: '60000',
        GATESCOPE_BATCH_MAX_ROWS: '100000',
      },
    });
    const { dataDir } = gs;
    const up = { http: gs.http, als: gs.als };
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
    const code = await gs.stop();
    expect(code).toBe(0);
    expect(gs.log()).toMatch(/shutting down/);
    expect(gs.log()).not.toMatch(/"level":(50|60)/);
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
