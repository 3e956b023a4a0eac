import type { ClickHouse } from '@gatescope/clickhouse';

/**
 * Insert `rows` synthetic requests straight into `http_requests` (the rollups fill from it), spread evenly over
 * [from, to): route `route-<i % routes>`, every 10th answered 503, every 50th with Envoy flag UH, durations
 * 1..997 ms. The engine generates them (`numbers()`), so big sets cost no client time.
 */
export async function insertSyntheticTraffic(
  ch: ClickHouse,
  o: { rows: number; routes: number; from: number; to: number; authority?: string },
): Promise<void> {
  await ch.client.command({
    query:
      `INSERT INTO ${ch.database}.http_requests (start_time, duration_ms, response_code, response_flags, route_name, ` +
      `upstream_cluster, authority, method, request_id) ` +
      `SELECT fromUnixTimestamp64Milli(toInt64({from:Int64} + intDiv(number * ({to:Int64} - {from:Int64}), {rows:UInt64})), 'UTC'), ` +
      `toFloat64((number * 7919) % 997 + 1), if(number % 10 = 0, 503, 200), if(number % 50 = 0, ['UH'], []), ` +
      `concat('route-', toString(number % {routes:UInt64})), concat('outbound|80||svc-', toString(number % {routes:UInt64})), ` +
      `{authority:String}, 'GET', concat('req-', toString(number)) FROM numbers({rows:UInt64})`,
    query_params: { ...o, authority: o.authority ?? 'shop.example.com' },
  });
}
