/**
 * A bounded string -> string cache with two generations: lookups hit the young map first, then the old
 * one (promoting the entry). When the young map reaches half the capacity the old map is dropped and the
 * young one becomes old. Holds at most `capacity` entries, a hit in the young map costs one `Map.get`,
 * and frequently used entries survive rotations (an approximate LRU without per-hit bookkeeping).
 */
export class BoundedCache {
  private young = new Map<string, string>();
  private old = new Map<string, string>();
  private readonly generationSize: number;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 0) {
      throw new RangeError(`cache capacity must be a non-negative integer, got ${capacity}`);
    }
    this.generationSize = Math.floor(capacity / 2);
  }

  get(key: string): string | undefined {
    const hit = this.young.get(key);
    if (hit !== undefined) return hit;
    const promoted = this.old.get(key);
    if (promoted !== undefined) this.set(key, promoted);
    return promoted;
  }

  set(key: string, value: string): void {
    if (this.generationSize === 0) return;
    if (this.young.size >= this.generationSize) {
      this.old = this.young;
      this.young = new Map();
    }
    this.young.set(key, value);
  }

  /** Entries held (young plus old; a promoted key may be counted in both). */
  get size(): number {
    return this.young.size + this.old.size;
  }
}
