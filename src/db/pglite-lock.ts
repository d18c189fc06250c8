import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../config/checks.js';

// PGlite has one writer: two processes opening the same data directory corrupt it. A lock
// file holding the owner's PID keeps a second process out (a server and an import run by
// hand, two servers on one directory). A PID that no longer runs is a crashed owner: its lock
// is taken over. Opens within one process share the lock (the same PID: also a container's
// PID 1 restarted).

const LOCK_FILE = 'media-repo.pid';
const held = new Map<string, number>();

function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // alive, another user's
  }
}

/** Takes the directory's lock or throws naming the process that holds it. */
export function lockDataDir(dir: string): { release(): void } {
  const path = join(dir, LOCK_FILE);
  const count = held.get(path) ?? 0;
  if (count === 0) {
    for (let attempt = 0; ; attempt++) {
      try {
        writeFileSync(path, `${process.pid}\n`, { flag: 'wx' });
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw e;
        const owner = Number(readFileSync(path, 'utf8').trim());
        if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && running(owner)) {
          throw new ConfigError(
            `database.embeddedPath ${dir} is in use by process ${owner} (another media-repo or an import): ` +
              'PGlite allows one process at a time; stop it first (or remove ' +
              `${path} if no such media-repo runs)`,
          );
        }
        rmSync(path, { force: true }); // a crashed owner's, or our own PID's from before a restart
      }
    }
  }
  held.set(path, count + 1);
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      const n = (held.get(path) ?? 1) - 1;
      if (n > 0) held.set(path, n);
      else {
        held.delete(path);
        rmSync(path, { force: true });
      }
    },
  };
}
