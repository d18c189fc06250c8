import type { Queryable } from './driver.js';

// Named SQL for import_checkpoints (migration 0007): where a resumable import job stopped.

export interface Checkpoint {
  phase: string;
  /** The last key copied in the phase (JSON-serialisable), null at the phase's start. */
  cursor: unknown;
  finished: boolean;
}

export async function readCheckpoint(q: Queryable, job: string): Promise<Checkpoint | null> {
  const r = await q.query<Record<string, unknown>>(
    'SELECT phase, cursor, finished FROM import_checkpoints WHERE job = $1',
    [job],
  );
  const row = r.rows[0];
  return row
    ? { phase: row.phase as string, cursor: JSON.parse(row.cursor as string), finished: Boolean(row.finished) }
    : null;
}

export async function writeCheckpoint(q: Queryable, job: string, c: Checkpoint): Promise<void> {
  await q.query(
    `INSERT INTO import_checkpoints (job, phase, cursor, finished, updated_ts) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (job) DO UPDATE SET phase = EXCLUDED.phase, cursor = EXCLUDED.cursor,
       finished = EXCLUDED.finished, updated_ts = EXCLUDED.updated_ts`,
    [job, c.phase, JSON.stringify(c.cursor), c.finished, Date.now()],
  );
}
