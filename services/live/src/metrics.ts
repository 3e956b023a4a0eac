import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Namespace } from 'socket.io';

/**
 * The live server's metrics, registered by `attachLive` itself, so the standalone live service and the all-in-one
 * process expose the same ones (the all-in-one used to have none of them).
 */
export function createLiveMetrics(registry: Registry, namespace: () => Namespace) {
  const registers = [registry];
  const existing = <T>(name: string) => registry.getSingleMetric(name) as T | undefined;
  return {
    statsComputations:
      existing<Counter>('gatescope_live_stats_computations_total') ??
      new Counter({
        name: 'gatescope_live_stats_computations_total',
        help: 'Live stats computations (one per tick per distinct filter set).',
        registers,
      }),
    statsDuration:
      existing<Histogram>('gatescope_live_stats_duration_seconds') ??
      new Histogram({
        name: 'gatescope_live_stats_duration_seconds',
        help: 'Time to compute one live stats update (its ClickHouse reads).',
        buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
        registers,
      }),
    tailPolls:
      existing<Counter>('gatescope_live_tail_polls_total') ??
      new Counter({
        name: 'gatescope_live_tail_polls_total',
        help: 'Live tail polls (one per tick per distinct filter set).',
        registers,
      }),
    queryErrors:
      existing<Counter>('gatescope_live_query_errors_total') ??
      new Counter({
        name: 'gatescope_live_query_errors_total',
        help: 'Live queries that failed.',
        registers,
      }),
    sockets:
      existing<Gauge>('gatescope_live_sockets') ??
      new Gauge({
        name: 'gatescope_live_sockets',
        help: 'Open /live sockets.',
        registers,
        collect() {
          this.set(namespace().sockets.size);
        },
      }),
  };
}
