import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UploadSinkPool } from '../src/pools/upload-sink.js';

// The upload sink packs chunks into 256 KiB slots before posting them to its worker. Whatever
// the chunk sizes, and whether or not the producer respects backpressure (overflow), the file
// and its hash must be exactly the bytes written, in order.

const sizes = [1, 7, 65_536, 300_000, 262_144, 262_143, 262_145, 3, 1_048_576, 5, 4_000_000, 64 * 1024];

t.test('packed slots keep every byte in order, with and without backpressure', async (t) => {
  const pool = new UploadSinkPool();
  t.teardown(() => pool.close());
  const dir = mkdtempSync(join(tmpdir(), 'sink-test-'));
  for (const respectBackpressure of [true, false]) {
    const path = join(dir, `f-${respectBackpressure}`);
    const s = await pool.open(path);
    const hash = createHash('sha256');
    for (let round = 0; round < 3; round++) {
      for (const n of sizes) {
        const chunk = randomBytes(n);
        hash.update(chunk);
        const ok = s.write(chunk);
        // The caller's chunk is only valid during write(): scribble over it like a socket would.
        chunk.fill(0);
        if (!ok && respectBackpressure) await new Promise<void>((r) => s.onDrain(r));
      }
    }
    const r = await pool.finish(s);
    const digest = hash.digest('hex');
    t.equal(
      r.sha256,
      digest,
      `hash of the written bytes (backpressure ${respectBackpressure ? 'respected' : 'ignored'})`,
    );
    t.equal(r.size, sizes.reduce((a, b) => a + b, 0) * 3);
    t.equal(
      createHash('sha256').update(readFileSync(path)).digest('hex'),
      digest,
      'the file holds exactly those bytes',
    );
  }
});
