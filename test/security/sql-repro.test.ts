import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startGatescopeProcess, type GatescopeProcess } from '../support/gatescope-process.js';

let gs: GatescopeProcess;
const outside = mkdtempSync(join(tmpdir(), 'gs-sql-repro-'));
beforeAll(async () => {
  gs = await startGatescopeProcess({ env: { GATESCOPE_TOKENS: 'ops:admin-token-123456:admin' } });
});
afterAll(async () => {
  await gs?.stop();
});

it('text that closes the guard statement early runs nothing else', async () => {
  const target = join(outside, 'pwned.txt');
  const res = await fetch(`${gs.http}api/v1/sql`, {
    method: 'POST',
    headers: { authorization: 'Bearer admin-token-123456', 'content-type': 'application/json' },
    body: JSON.stringify({
      query: `SELECT 1\n); INSERT INTO FUNCTION file('${target}', 'LineAsString') SELECT 'x'; SELECT (1`,
    }),
  });
  expect(res.status).toBeGreaterThanOrEqual(400);
  expect(res.status).toBeLessThan(500);
  expect(existsSync(target)).toBe(false);
});
