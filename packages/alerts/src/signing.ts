import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';

/**
 * Standard Webhooks signatures (https://www.standardwebhooks.com): `webhook-signature` is `v1,` + base64
 * HMAC-SHA256 of `<webhook-id>.<webhook-timestamp>.<body>`, keyed with the secret's bytes: a `whsec_` secret is
 * base64 after the prefix; any other secret is used as UTF-8 text.
 */
export function secretKey(secret: string): Buffer {
  return secret.startsWith('whsec_') ? Buffer.from(secret.slice(6), 'base64') : Buffer.from(secret, 'utf8');
}

export function sign(secret: string, id: string, timestampS: number, body: string): string {
  const mac = createHmac('sha256', secretKey(secret)).update(`${id}.${timestampS}.${body}`).digest('base64');
  return `v1,${mac}`;
}

/** The headers of one delivery attempt. The id stays the same across retries (receivers deduplicate on it). */
export function webhookHeaders(
  id: string,
  timestampS: number,
  body: string,
  secret?: string,
): Record<string, string> {
  const headers: Record<string, string> = { 'webhook-id': id, 'webhook-timestamp': String(timestampS) };
  if (secret) headers['webhook-signature'] = sign(secret, id, timestampS, body);
  return headers;
}

export const newMessageId = () => `msg_${randomUUID().replace(/-/g, '')}`;

/**
 * Receiver side (tests, and the README's snippet does the same): true when one of the space-separated
 * signatures matches and the timestamp is within `toleranceS` of now.
 */
export function verify(
  secret: string,
  headers: { id: string; timestamp: string; signature: string },
  body: string,
  nowS = Math.floor(Date.now() / 1000),
  toleranceS = 300,
): boolean {
  const ts = Number(headers.timestamp);
  if (!Number.isInteger(ts) || Math.abs(nowS - ts) > toleranceS) return false;
  const expected = Buffer.from(sign(secret, headers.id, ts, body));
  return headers.signature
    .split(' ')
    .some((s) => s.length === expected.length && timingSafeEqual(Buffer.from(s), expected));
}
