export { Evaluator, trafficSource, trafficQuestions, alertSource } from './evaluator.js';
export type { EvaluatorDeps, EvaluatorStats, MetricSource } from './evaluator.js';
export { Delivery, backoffMs } from './delivery.js';
export type { Notification, DeliveryOptions } from './delivery.js';
export { postJson, parseRetryAfter } from './post.js';
export type { PostResult, PostOptions } from './post.js';

import type { Evaluator as E, EvaluatorDeps } from './evaluator.js';
import { Evaluator } from './evaluator.js';

/**
 * The evaluator as the all-in-one process and services/alerts start it: the provisioning file synced first (a
 * bad file stops the start with every problem listed), then a cycle now and every interval.
 */
export async function startAlerts(deps: EvaluatorDeps): Promise<E> {
  const evaluator = new Evaluator(deps);
  await evaluator.provision();
  evaluator.start();
  return evaluator;
}
