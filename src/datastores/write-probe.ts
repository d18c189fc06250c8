import { open, rm } from 'node:fs/promises';

// Readiness asks every datastore whether it can take writes. For a bucket a probe costs
// requests (billed, and slower than a local file), so recent evidence stands in for it: a
// write that succeeded moments ago, or a probe that did. Only successes are remembered: a
// store that failed is probed again at the next ask, so recovery shows at once.

const PROBE_BYTE = Buffer.from([0]);

/** Creates, writes one byte to and removes `path` (no fsync): what an upload's first step needs. */
export async function probeLocalFile(path: string): Promise<void> {
  const fh = await open(path, 'wx');
  try {
    await fh.write(PROBE_BYTE); // a full disk may still allow an empty file
  } finally {
    await fh.close();
    await rm(path, { force: true });
  }
}

export class CachedWriteProbe {
  private lastSuccess = 0;
  private running: Promise<void> | null = null;

  /** `freshMs`: how long a successful write or probe stands for the store's health. */
  constructor(
    private readonly probe: () => Promise<void>,
    private readonly freshMs = 30_000,
  ) {}

  /** A real write succeeded: no probe is needed for a while. */
  noteSuccess(): void {
    this.lastSuccess = Date.now();
  }

  check(): Promise<void> {
    if (Date.now() - this.lastSuccess < this.freshMs) return Promise.resolve();
    // Concurrent readiness polls share one probe.
    this.running ??= this.probe()
      .then(() => this.noteSuccess())
      .finally(() => {
        this.running = null;
      });
    return this.running;
  }
}
