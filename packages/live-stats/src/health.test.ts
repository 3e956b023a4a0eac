import { describe, expect, it } from 'vitest';
import { HealthMemory, healthOf, judgeHealth, KIALI_DEFAULT_THRESHOLDS } from './health.js';

const t = KIALI_DEFAULT_THRESHOLDS;
describe('route health (Kiali thresholds)', () => {
  it('judges 5xx and 4xx rates with a minimum request count', () => {
    expect(judgeHealth({ requests: 0, errors5xx: 0, errors4xx: 0 }).health).toBe('idle');
    expect(judgeHealth({ requests: 7, errors5xx: 3, errors4xx: 0 })).toEqual({
      health: 'unknown',
      reason: 'n = 7 < 20 requests: too few to judge',
    });
    expect(judgeHealth({ requests: 10_000, errors5xx: 5, errors4xx: 100 }).health).toBe('healthy');
    expect(judgeHealth({ requests: 10_000, errors5xx: 10, errors4xx: 0 }).health).toBe('degraded');
    expect(judgeHealth({ requests: 1000, errors5xx: 100, errors4xx: 0 }).health).toBe('failing');
    expect(judgeHealth({ requests: 1000, errors5xx: 0, errors4xx: 150 }).health).toBe('degraded');
  });

  it('a route that only answers 404 NR is failing, not healthy', () => {
    const j = judgeHealth({ requests: 120, errors5xx: 0, errors4xx: 120 });
    expect(j.health).toBe('failing');
    expect(j.reason).toBe('4xx 100.0 % ≥ 20.0 % (n = 120)');
    // 4xx can be turned off.
    expect(
      judgeHealth({ requests: 120, errors5xx: 0, errors4xx: 120 }, { ...t, degraded4xxRate: 1 }).health,
    ).toBe('healthy');
  });

  it('does not flap around a threshold: it improves only 20 % below the threshold it crossed', () => {
    const m = new HealthMemory(t);
    const at = (rate: number) => {
      m.next();
      return m.judge('r', { requests: 100_000, errors5xx: rate * 100_000, errors4xx: 0 }).health;
    };
    expect(at(0.0011)).toBe('degraded');
    expect(at(0.00095)).toBe('degraded'); // under 0.1 % but not clear of it
    expect(at(0.00105)).toBe('degraded');
    expect(at(0.00085)).toBe('degraded');
    expect(at(0.00075)).toBe('healthy'); // under 0.08 %
    expect(at(0.00095)).toBe('healthy'); // rising again, still under the threshold
    expect(at(0.12)).toBe('failing');
    expect(at(0.09)).toBe('failing');
    expect(at(0.07)).toBe('degraded');
    // Without memory (a range from the API), the thresholds as they are.
    expect(judgeHealth({ requests: 100_000, errors5xx: 95, errors4xx: 0 }).health).toBe('healthy');
  });

  it('keeps the old rate-only helper', () => {
    expect(healthOf(1000, 0.2)).toBe('failing');
    expect(healthOf(1, 0)).toBe('healthy');
    expect(healthOf(0, 0)).toBe('idle');
  });
});
