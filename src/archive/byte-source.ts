// Pull-style reads over a stream's chunks: the tar reader asks for "512 bytes" or "up to N
// bytes of this body" and gets exactly that, without ever holding more than the one chunk the
// stream last gave. An error from the stream (a corrupt or truncated gzip) is kept and thrown
// to every later read, so the reader and an entry's consumer both see it.

export class ByteSource {
  private readonly it: AsyncIterator<Buffer>;
  private held: Buffer | null = null;
  private eof = false;
  private failure: Error | null = null;

  constructor(
    chunks: AsyncIterable<Buffer>,
    private readonly wrapError: (e: Error) => Error,
  ) {
    this.it = chunks[Symbol.asyncIterator]();
  }

  /** Up to `max` bytes (at least one), or null at the end of the stream. */
  async some(max: number): Promise<Buffer | null> {
    if (this.failure) throw this.failure;
    while (!this.held || this.held.length === 0) {
      if (this.eof) return null;
      let r: IteratorResult<Buffer>;
      try {
        r = await this.it.next();
      } catch (e) {
        this.failure = this.wrapError(e as Error);
        throw this.failure;
      }
      if (r.done) this.eof = true;
      else this.held = r.value;
    }
    const held = this.held;
    if (held.length <= max) {
      this.held = null;
      return held;
    }
    this.held = held.subarray(max);
    return held.subarray(0, max);
  }

  /** Exactly `n` bytes; null when the stream ends before the first; `short` when it ends midway. */
  async exact(n: number, short: (got: number) => Error): Promise<Buffer | null> {
    const first = await this.some(n);
    if (!first) return null;
    if (first.length === n) return first;
    const parts = [first];
    let got = first.length;
    while (got < n) {
      const c = await this.some(n - got);
      if (!c) throw short(got);
      parts.push(c);
      got += c.length;
    }
    return Buffer.concat(parts, n);
  }

  /** Reads and drops `n` bytes; `short` when the stream ends first. */
  async skip(n: number, short: (got: number) => Error): Promise<void> {
    let left = n;
    while (left > 0) {
      const c = await this.some(Math.min(left, 1 << 20));
      if (!c) throw short(n - left);
      left -= c.length;
    }
  }

  async close(): Promise<void> {
    await this.it.return?.();
  }
}
