import { Errors } from '../errors.js';

// Admission in front of a pool: at most `slots` tasks hold their source bytes at once (running,
// or next in line); the rest wait here holding nothing but a callback, up to `maxWaiting`, and
// beyond that get 429. Memory for sources is then bounded by slots x maxSourceBytes, however
// long the line grows (piscina's own queue would hold every queued task's bytes).
export class Admission {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  /** `what` names the line in the 429 message ("The thumbnail queue is full"). */
  constructor(
    private readonly slots: number,
    private readonly maxWaiting: number,
    private readonly what = 'thumbnail',
  ) {}

  async enter(): Promise<void> {
    if (this.active < this.slots) {
      this.active++;
      return;
    }
    if (this.waiting.length >= this.maxWaiting)
      throw Errors.limitExceeded(`The ${this.what} queue is full; try again shortly`, 1000);
    // The leaving task hands its slot straight to us, so `active` does not change.
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  leave(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.active--;
  }

  get admitted(): number {
    return this.active;
  }

  get queued(): number {
    return this.waiting.length;
  }
}
