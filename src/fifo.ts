/**
 * A first-in first-out queue with O(1) push and shift (Array#shift is O(n)).
 * Used for a connection's outstanding reads and a pool's waiters.
 */
export class Fifo<T> {
  private items: (T | undefined)[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  peek(): T | undefined {
    return this.items[this.head];
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head === this.items.length) {
      this.items.length = 0;
      this.head = 0;
      return item;
    }
    // Compact once the dead prefix dominates, so memory stays proportional to length.
    if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  /** Removes the first occurrence of `item`; true when found. */
  remove(item: T): boolean {
    const index = this.items.indexOf(item, this.head);
    if (index < 0) return false;
    this.items.splice(index, 1);
    return true;
  }

  /** Removes and returns the oldest item matching `predicate` (O(n): for rare paths). */
  removeFirst(predicate: (item: T) => boolean): T | undefined {
    for (let i = this.head; i < this.items.length; i++) {
      const item = this.items[i] as T;
      if (predicate(item)) {
        this.items.splice(i, 1);
        return item;
      }
    }
    return undefined;
  }

  /** Removes and returns everything, oldest first. */
  drain(): T[] {
    const out = this.items.slice(this.head) as T[];
    this.items = [];
    this.head = 0;
    return out;
  }

  [Symbol.iterator](): Iterator<T> {
    return (this.items.slice(this.head) as T[])[Symbol.iterator]();
  }
}
