/**
 * Alertmanager's label-set fingerprint: 64-bit FNV-1a over the label names in sorted order, each name and value
 * followed by the 0xff separator byte, printed as 16 hex digits. The same labels give the same fingerprint as
 * Alertmanager would compute, so receivers that deduplicate on it behave the same.
 */
const OFFSET = 0xcbf29ce484222325n;
const PRIME = 0x100000001b3n;
const MASK = 0xffffffffffffffffn;

export function fingerprint(labels: Record<string, string>): string {
  let h = OFFSET;
  const add = (bytes: Uint8Array) => {
    for (const b of bytes) h = ((h ^ BigInt(b)) * PRIME) & MASK;
  };
  const sep = new Uint8Array([0xff]);
  const enc = new TextEncoder();
  for (const name of Object.keys(labels).sort()) {
    add(enc.encode(name));
    add(sep);
    add(enc.encode(labels[name]));
    add(sep);
  }
  return h.toString(16).padStart(16, '0');
}

/** Alertmanager's `{a="x", b="y"}` rendering of a label set (sorted, values quoted like Go's %q). */
export function labelSetString(labels: Record<string, string>): string {
  return `{${Object.keys(labels)
    .sort()
    .map((k) => `${k}=${JSON.stringify(labels[k])}`)
    .join(', ')}}`;
}
