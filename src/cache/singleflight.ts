// One in-flight computation per key: concurrent callers share its promise (100 identical
// thumbnail requests cause one generation). Failures are shared too and not remembered.
export class SingleFlight<T> {
  private readonly flights = new Map<string, Promise<T>>();

  run(key: string, fn: () => Promise<T>): Promise<T> {
    const existing = this.flights.get(key);
    if (existing) return existing;
    const p = fn().finally(() => this.flights.delete(key));
    this.flights.set(key, p);
    return p;
  }

  get size(): number {
    return this.flights.size;
  }
}
