import { readNative } from '@gatescope/als';
import { describe, expect, it } from 'vitest';
import { ISTIO_HTTP_STREAM, makeTrafficMessage } from '../../../test/fixtures/als.js';
// The built pool: its threads run the built decode-worker.js next to it.
import type { DecodedBatch, MessageOutcome } from '../dist/decode-core.js';
import { DecoderPool } from '../dist/decoder-pool.js';

const OPTIONS = { maxTemplatesPerRoute: 100 };

/** A pool that records every answer and every lost stream. */
function recordingPool(options: Partial<ConstructorParameters<typeof DecoderPool>[0]> = {}) {
  const answers: { stream: number; result: MessageOutcome; batch: DecodedBatch }[] = [];
  const lost: number[] = [];
  const restarts: { thread: number; error?: Error; delayMs: number }[] = [];
  const pool = new DecoderPool(
    { ...OPTIONS, workers: 1, ...options },
    {
      onDecoded: (batch) => {
        for (const result of batch.messages) answers.push({ stream: result.stream, result, batch });
      },
      onStreamsLost: (streams) => lost.push(...streams),
      onRestart: (thread, error, delayMs) => restarts.push({ thread, error, delayMs }),
    },
  );
  return { pool, answers, lost, restarts };
}

/** The rows a message becomes alone, decoded inline. */
async function decodedAlone(message: Buffer): Promise<Buffer> {
  let data: Uint8Array | undefined;
  const pool = new DecoderPool(
    { ...OPTIONS, workers: 0 },
    { onDecoded: (batch) => (data = batch.http.data) },
  );
  pool.submit(1, message, 0);
  await pool.close();
  return Buffer.from(data!);
}

describe('DecoderPool', () => {
  it('a thread terminated with messages in flight: each is answered, idle() resolves, a new thread decodes', async () => {
    const { pool, answers, lost, restarts } = recordingPool();
    const message = makeTrafficMessage({ entries: 200, seed: 5 }).bytes;
    // Stream 1 holds messages when the thread dies; stream 2 only opened (identity sent, nothing pending).
    pool.submit(2, ISTIO_HTTP_STREAM[0].bytes, 1);
    await pool.idle();
    for (let i = 0; i < 300; i++) pool.submit(1, message, 200);
    expect(pool.inflight).toBe(300);
    expect(pool.inflightRows).toBe(300 * 200);
    expect(pool.inflightBytes).toBe(300 * message.length);
    await new Promise((r) => setTimeout(r, 20));
    await pool.threads[0]!.terminate();
    await pool.idle(); // must not hang
    const onOne = answers.filter((a) => a.stream === 1);
    expect(onOne).toHaveLength(300);
    const crashed = onOne.filter((a) => !a.result.ok);
    expect(crashed.length).toBeGreaterThan(0);
    for (const a of crashed) expect(a.result).toMatchObject({ ok: false, reason: 'decoder_crashed' });
    // In order: what was decoded came before what was refused.
    const firstCrash = onOne.findIndex((a) => !a.result.ok);
    expect(onOne.slice(firstCrash).every((a) => !a.result.ok)).toBe(true);
    expect([pool.inflight, pool.inflightRows, pool.inflightBytes]).toEqual([0, 0, 0]);
    expect(lost).toEqual([2]);
    expect(restarts).toHaveLength(1);
    // The replacement thread decodes; it knows nothing of stream 2's identity (that is why 2 was lost).
    await new Promise((r) => setTimeout(r, 50));
    pool.submit(3, ISTIO_HTTP_STREAM[0].bytes, 1);
    pool.submit(2, ISTIO_HTTP_STREAM[1].bytes, 1);
    await pool.idle();
    const [three, two] = answers.slice(-2);
    // Submitted in one turn: one batch, one block, stream 3's row first.
    expect(three.batch).toBe(two.batch);
    expect([three.result.ok, two.result.ok]).toEqual([true, true]);
    const [n3, n2] = [three.result, two.result].map((r) => (r.ok ? r.http : 0));
    expect(n3).toBeGreaterThan(0);
    expect(n2).toBeGreaterThan(0);
    const nodes = readNative(Buffer.from(three.batch.http.data)).map((r) => r.node_id);
    expect(nodes).toHaveLength(n3 + n2);
    expect(nodes.slice(0, n3).every((n) => /^router~/.test(String(n)))).toBe(true);
    expect(nodes.slice(n3).every((n) => n === 'unknown')).toBe(true);
    await pool.close();
  });

  it('messages submitted together are one batch: a refused one keeps no row, the others keep theirs, in order', async () => {
    const { pool, answers } = recordingPool();
    const good = makeTrafficMessage({ entries: 30, seed: 3 }).bytes;
    const other = makeTrafficMessage({ entries: 20, seed: 4 }).bytes;
    const bad = Buffer.concat([good.subarray(0, 200), Buffer.from([0xff, 0xff, 0xff])]);
    pool.submit(1, good, 30);
    pool.submit(2, bad, 1);
    pool.submit(3, other, 20);
    await pool.idle();
    expect(answers.map((a) => [a.stream, a.result.ok])).toEqual([
      [1, true],
      [2, false],
      [3, true],
    ]);
    const { batch } = answers[0];
    expect(answers.every((a) => a.batch === batch)).toBe(true);
    expect(answers.map((a) => (a.result.ok ? a.result.http : -1))).toEqual([30, -1, 20]);
    const rows = readNative(Buffer.from(batch.http.data));
    expect(batch.http.rows).toBe(50);
    expect(rows.map((r) => r.request_id)).toEqual([
      ...readNative(await decodedAlone(good)).map((r) => r.request_id),
      ...readNative(await decodedAlone(other)).map((r) => r.request_id),
    ]);
    await pool.close();
  });

  it('a thread that runs out of memory under its resource limits is replaced, ever slower, and nothing hangs', async () => {
    // 4 MB of old generation: the thread cannot even load the decoder. Not less: on Node 24 and 26 a worker given
    // 1-2 MB cannot deserialize V8's startup snapshot, and V8 aborts the whole process ("Fatal JavaScript out of
    // memory: GC during deserialization") instead of failing the worker; 3-6 MB end in ERR_WORKER_OUT_OF_MEMORY on
    // 20, 24 and 26 alike (measured with 20.20.2, 24.22.3, 26.12.1).
    const { pool, answers, restarts } = recordingPool({ resourceLimits: { maxOldGenerationSizeMb: 4 } });
    const message = makeTrafficMessage({ entries: 10, seed: 9 }).bytes;
    for (let i = 0; i < 20; i++) pool.submit(1, message, 10);
    await pool.idle();
    expect(answers).toHaveLength(20);
    for (const a of answers) expect(a.result.ok).toBe(false);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(restarts.length).toBeGreaterThanOrEqual(2);
    expect(restarts.some((r) => /memory/i.test(String(r.error?.message)))).toBe(true);
    // Backoff: consecutive deaths wait longer before the next thread.
    expect(restarts[0].delayMs).toBe(0);
    expect(restarts.at(-1)!.delayMs).toBeGreaterThan(0);
    // While it cannot run, messages are refused at once, never queued.
    pool.submit(1, message, 10);
    await pool.idle();
    expect(answers.at(-1)!.result.ok).toBe(false);
    await pool.close();
  });
});
