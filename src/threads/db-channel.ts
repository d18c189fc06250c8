import type { MessagePort } from 'node:worker_threads';
import type { Db, Queryable, QueryResult } from '../db/driver.js';
import { fromWire, toWire, type WireFailure } from './wire-error.js';

// The embedded database over a message channel. PGlite is one connection inside one thread, so
// with several HTTP threads (issue 19) the thread that opened it serves the others: each gets a
// Db whose queries, scripts and transactions run on the owner's instance. A transaction keeps
// the owner's one connection for itself until its thread says commit or rollback (as PGlite's
// own transaction() does for its caller), and a thread that goes away mid-transaction has it
// rolled back, so the database never stays held by a dead thread.

type Request =
  | { id: number; op: 'query'; sql: string; params?: unknown[]; tx?: number }
  | { id: number; op: 'exec'; sql: string }
  | { id: number; op: 'begin' }
  | { id: number; op: 'end'; tx: number; commit: boolean };

/** A request before its id is given (Omit over each member of the union). */
type Unsent = Request extends infer R ? (R extends unknown ? Omit<R, 'id'> : never) : never;

type Reply = { id: number; ok: true; value?: unknown } | { id: number; ok: false; error: WireFailure };

/** The owner's side: answers one thread's port from `db` until the port closes. */
export function serveDb(db: Db, port: MessagePort): { close(): void } {
  /** Open transactions of this port: their queryable, and how to end them. */
  const open = new Map<number, { q: Queryable; end(commit: boolean): void }>();
  /** The owner-side promise of each open transaction: settles once it committed or rolled back. */
  const ends = new Map<number, Promise<void>>();
  let nextTx = 0;
  const reply = (r: Reply) => port.postMessage(r);
  const answer = (id: number, p: Promise<unknown>) =>
    p.then(
      (value) => reply({ id, ok: true, value }),
      (e: unknown) => reply({ id, ok: false, error: toWire(e) }),
    );
  const rollbackAll = () => {
    for (const t of open.values()) t.end(false);
    open.clear();
    ends.clear();
  };

  function begin(id: number): void {
    const tx = ++nextTx;
    let began = false;
    const done = db.tx(
      (q) =>
        new Promise<void>((resolve, reject) => {
          began = true;
          open.set(tx, {
            q,
            end: (commit) => (commit ? resolve() : reject(new RolledBack())),
          });
          reply({ id, ok: true, value: { tx, serialised: q.serialised === true } });
        }),
    );
    // Once begun, the outcome is told by the 'end' request's answer (below); a transaction that
    // could not begin (the database closed, say) answers the 'begin' itself.
    done.catch((e: unknown) => {
      if (!began) reply({ id, ok: false, error: toWire(e) });
    });
    ends.set(tx, done);
  }

  port.on('message', (m: Request) => {
    switch (m.op) {
      case 'query': {
        const q = m.tx === undefined ? db : open.get(m.tx)?.q;
        if (!q) return reply({ id: m.id, ok: false, error: { message: `transaction ${m.tx} is not open` } });
        return void answer(m.id, q.query(m.sql, m.params));
      }
      case 'exec':
        return void answer(m.id, db.exec(m.sql));
      case 'begin':
        return begin(m.id);
      case 'end': {
        const t = open.get(m.tx);
        const done = ends.get(m.tx);
        if (!t || !done) return reply({ id: m.id, ok: false, error: { message: `transaction ${m.tx} is not open` } });
        open.delete(m.tx);
        ends.delete(m.tx);
        t.end(m.commit);
        // A rollback asked for is a success; a commit that fails (a deferred constraint) is not.
        return void answer(
          m.id,
          done.catch((e: unknown) => {
            if (!(e instanceof RolledBack)) throw e;
          }),
        );
      }
    }
  });
  port.on('close', rollbackAll);
  return {
    close() {
      rollbackAll();
      port.close();
    },
  };
}

/** Thrown inside the owner's transaction to roll it back when the thread asks for that. */
class RolledBack extends Error {}

/** A thread's side: a Db whose work runs on the owner's instance, over `port`. */
export function dbOverChannel(port: MessagePort, kind: Db['kind']): Db {
  let nextId = 0;
  const pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  let gone: Error | null = null;
  port.on('message', (r: Reply) => {
    const p = pending.get(r.id);
    if (!p) return;
    pending.delete(r.id);
    if (r.ok) p.resolve(r.value);
    else p.reject(fromWire(r.error));
  });
  port.on('close', () => {
    gone = new Error('the database thread is gone');
    for (const p of pending.values()) p.reject(gone);
    pending.clear();
  });
  const call = <T>(req: Unsent): Promise<T> => {
    if (gone) return Promise.reject(gone);
    const id = ++nextId;
    return new Promise<T>((resolve, reject) => {
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      port.postMessage({ ...req, id } as Request);
    });
  };
  const query = <R>(sql: string, params?: unknown[], tx?: number) =>
    call<QueryResult<R>>({ op: 'query', sql, ...(params ? { params } : {}), ...(tx ? { tx } : {}) });
  return {
    kind,
    query: (sql, params) => query(sql, params),
    exec: async (sql) => {
      await call({ op: 'exec', sql });
    },
    async tx<T>(fn: (q: Queryable) => Promise<T>): Promise<T> {
      const { tx, serialised } = await call<{ tx: number; serialised: boolean }>({ op: 'begin' });
      let value: T;
      try {
        value = await fn({ serialised, query: (sql, params) => query(sql, params, tx) });
      } catch (e) {
        await call({ op: 'end', tx, commit: false }).catch(() => undefined);
        throw e;
      }
      await call({ op: 'end', tx, commit: true });
      return value;
    },
    close: async () => {
      port.close();
    },
  };
}
