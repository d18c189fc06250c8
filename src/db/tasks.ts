import type { Queryable } from './driver.js';
import { num } from './driver.js';

// Named SQL for background_tasks (see migrations/0004_background_tasks.up.sql).

export interface TaskRow {
  id: number;
  name: string;
  params: Record<string, unknown>;
  startTs: number;
  endTs: number | null;
  error: string | null;
  progress: Record<string, unknown> | null;
  claimedBy: string | null;
  heartbeatTs: number | null;
}

const COLUMNS = 'id, name, params, start_ts, end_ts, error, progress, claimed_by, heartbeat_ts';

function toRow(r: Record<string, unknown>): TaskRow {
  return {
    id: num(r.id),
    name: r.name as string,
    params: JSON.parse(r.params as string) as Record<string, unknown>,
    startTs: num(r.start_ts),
    endTs: r.end_ts === null || r.end_ts === undefined ? null : num(r.end_ts),
    error: (r.error as string | null) ?? null,
    progress: r.progress ? (JSON.parse(r.progress as string) as Record<string, unknown>) : null,
    claimedBy: (r.claimed_by as string | null) ?? null,
    heartbeatTs: r.heartbeat_ts === null || r.heartbeat_ts === undefined ? null : num(r.heartbeat_ts),
  };
}

export async function insertTask(
  q: Queryable,
  name: string,
  params: Record<string, unknown>,
  now: number,
): Promise<number> {
  const r = await q.query<{ id: unknown }>(
    'INSERT INTO background_tasks (name, params, start_ts) VALUES ($1, $2, $3) RETURNING id',
    [name, JSON.stringify(params), now],
  );
  return num(r.rows[0]!.id);
}

export async function getTask(q: Queryable, id: number): Promise<TaskRow | null> {
  const r = await q.query(`SELECT ${COLUMNS} FROM background_tasks WHERE id = $1`, [id]);
  return r.rows[0] ? toRow(r.rows[0]) : null;
}

export async function listTasks(q: Queryable, unfinishedOnly: boolean): Promise<TaskRow[]> {
  const r = await q.query(
    `SELECT ${COLUMNS} FROM background_tasks ${unfinishedOnly ? 'WHERE end_ts IS NULL' : ''} ORDER BY id`,
  );
  return r.rows.map(toRow);
}

/**
 * Claims one unfinished, due task (start_ts not in the future: a recurring task's jittered
 * start) that nobody holds or whose holder stopped heartbeating before
 * `staleBefore`. SKIP LOCKED makes two instances polling at once pick different rows (or
 * none) instead of both taking the same one; the claim itself is the committed UPDATE.
 */
export async function claimTask(
  q: Queryable,
  me: string,
  names: readonly string[],
  now: number,
  staleBefore: number,
): Promise<TaskRow | null> {
  const r = await q.query(
    `SELECT ${COLUMNS} FROM background_tasks
     WHERE end_ts IS NULL AND name = ANY($1) AND (claimed_by IS NULL OR heartbeat_ts < $2) AND start_ts <= $3
     ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED`,
    [names, staleBefore, now],
  );
  if (!r.rows[0]) return null;
  const row = toRow(r.rows[0]);
  await q.query('UPDATE background_tasks SET claimed_by = $2, heartbeat_ts = $3 WHERE id = $1', [row.id, me, now]);
  return { ...row, claimedBy: me, heartbeatTs: now };
}

/** Refreshes our claim; false when another instance took the task over (we were presumed dead). */
export async function heartbeatTask(q: Queryable, id: number, me: string, now: number): Promise<boolean> {
  const r = await q.query(
    'UPDATE background_tasks SET heartbeat_ts = $3 WHERE id = $1 AND claimed_by = $2 AND end_ts IS NULL',
    [id, me, now],
  );
  return r.rowCount === 1;
}

/** Saves progress, only while we still hold the claim; false otherwise. */
export async function saveTaskProgress(
  q: Queryable,
  id: number,
  me: string,
  progress: Record<string, unknown>,
): Promise<boolean> {
  const r = await q.query(
    'UPDATE background_tasks SET progress = $3 WHERE id = $1 AND claimed_by = $2 AND end_ts IS NULL',
    [id, me, JSON.stringify(progress)],
  );
  return r.rowCount === 1;
}

export async function finishTask(
  q: Queryable,
  id: number,
  me: string,
  now: number,
  error: string | null,
): Promise<void> {
  await q.query(
    'UPDATE background_tasks SET end_ts = $3, error = $4, claimed_by = NULL WHERE id = $1 AND claimed_by = $2',
    [id, me, now, error],
  );
}

/** Gives a task back on a clean shutdown, so the next instance to look resumes it at once. */
export async function releaseTask(q: Queryable, id: number, me: string): Promise<void> {
  await q.query(
    'UPDATE background_tasks SET claimed_by = NULL, heartbeat_ts = NULL WHERE id = $1 AND claimed_by = $2',
    [id, me],
  );
}

/** Whether a task of this name is still unfinished (claimed, or waiting to be). */
export async function hasUnfinishedTask(q: Queryable, name: string): Promise<boolean> {
  const r = await q.query('SELECT 1 FROM background_tasks WHERE name = $1 AND end_ts IS NULL LIMIT 1', [name]);
  return r.rows.length > 0;
}

/**
 * Inserts a recurring task unless one of the name is unfinished or started after `notSince`;
 * returns its ID, or null. Every instance of a fleet calls this on its own timer: the advisory
 * lock (held until the surrounding transaction ends) makes their check-then-insert one at a
 * time, so each period gets one task, run by whichever instance claims it.
 */
export async function insertRecurringTask(
  q: Queryable,
  name: string,
  params: Record<string, unknown>,
  now: number,
  notSince: number,
): Promise<number | null> {
  await q.query(`SELECT pg_advisory_xact_lock(hashtext('recurring task ' || $1))`, [name]);
  const r = await q.query(
    'SELECT 1 FROM background_tasks WHERE name = $1 AND (end_ts IS NULL OR start_ts >= $2) LIMIT 1',
    [name, notSince],
  );
  if (r.rows.length > 0) return null;
  return insertTask(q, name, params, now);
}
