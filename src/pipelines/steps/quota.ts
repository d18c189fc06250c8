import { Errors } from '../../errors.js';
import type { QuotaRule, UploadsSection } from '../../config/schema.js';
import type { Db, Queryable } from '../../db/driver.js';
import type { MediaRow } from '../../db/media.js';
import { OverQuota, getUserUsage, insertMediaWithinQuota, type UserUsage } from '../../db/usage-counters.js';

// Upload quotas (uploads.quotas, MMR's rules): bytes and files per uploader, counted by the
// database (user_usage, kept by triggers on media). Checked twice: from the declared length
// before the body is read (a refusal costs no body), and at commit by the media insert itself,
// which locks the user's counter row, so concurrent uploads of one user are admitted one at a
// time and never end above the limit. Every limit <= 0 is no limit (MMR's docs; its code blocked all at maxBytes 0).

/** What an upload is checked against: the matching rule's limits and the error's fields. */
export interface UploadQuota {
  maxBytes: number;
  maxFiles: number;
  infoUri: string;
  canUpgrade: boolean;
}

const compiled = new WeakMap<QuotaRule, RegExp>();

/** MMR's glob: `*` is any run of characters, everything else literal, the whole ID. */
function globOf(rule: QuotaRule): RegExp {
  let re = compiled.get(rule);
  if (!re) {
    const body = rule.glob
      .split('*')
      .map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*');
    re = new RegExp(`^${body}$`, 's');
    compiled.set(rule, re);
  }
  return re;
}

/** The first rule matching the user, when quotas are on for this homeserver. */
export function quotaRuleFor(uploads: UploadsSection, userId: string): QuotaRule | null {
  if (!uploads.quotas.enabled) return null;
  return uploads.quotas.users.find((r) => globOf(r).test(userId)) ?? null;
}

/** The quota an upload of this user is held to, or null (no rule, or neither limit set). */
export function uploadQuotaFor(uploads: UploadsSection, userId: string, serverName: string): UploadQuota | null {
  const rule = quotaRuleFor(uploads, userId);
  if (!rule || (rule.maxBytes <= 0 && rule.maxFiles <= 0)) return null;
  const { infoUri, canUpgrade } = uploads.quotas;
  return {
    maxBytes: rule.maxBytes,
    maxFiles: rule.maxFiles,
    infoUri: infoUri || `https://${serverName}/`,
    canUpgrade,
  };
}

/** The matching rule's maxPending where quotas are on and it sets one, else uploads.maxPending. */
export function maxPendingFor(uploads: UploadsSection, userId: string): number {
  return quotaRuleFor(uploads, userId)?.maxPending ?? uploads.maxPending;
}

/** Whether one more file of `size` bytes fits beside `used`. */
function fits(quota: UploadQuota, used: UserUsage, size: number): boolean {
  return (
    (quota.maxBytes <= 0 || used.bytes + size <= quota.maxBytes) &&
    (quota.maxFiles <= 0 || used.files + 1 <= quota.maxFiles)
  );
}

/** The refusal, naming the limit that was reached. */
function refusal(quota: UploadQuota, used: UserUsage, size: number) {
  const msg =
    quota.maxBytes > 0 && used.bytes + size > quota.maxBytes
      ? `Upload quota reached: ${used.bytes} of ${quota.maxBytes} bytes used, this upload is ${size}`
      : `File quota reached: ${used.files} of ${quota.maxFiles} files stored`;
  return Errors.userLimitExceeded(msg, quota.infoUri, quota.canUpgrade);
}

// Usage as this process last saw it per user, per database: lets the check before the body
// skip its query when the upload clearly fits. Only a hint: a stale value that fits lets a body
// in that the commit check (authoritative, locked) may still refuse; a value that does not fit
// is re-read from the database before anyone is refused. Bounded by clearing when full.
const HINTS_MAX = 10_000;
const hintsByDb = new WeakMap<Db, Map<string, UserUsage>>();

function hintsOf(db: Db): Map<string, UserUsage> {
  let hints = hintsByDb.get(db);
  if (!hints) hintsByDb.set(db, (hints = new Map()));
  return hints;
}

function remember(db: Db, key: string, used: UserUsage): void {
  const hints = hintsOf(db);
  if (hints.size >= HINTS_MAX && !hints.has(key)) hints.clear();
  hints.set(key, used);
}

/** Before the body: the declared length (0 for a chunked body) against the current usage. */
export async function checkQuotaBeforeBody(
  db: Db,
  input: { origin: string; userId: string; declared: number | null },
  quota: UploadQuota,
): Promise<void> {
  const size = input.declared ?? 0;
  const key = `${input.origin}\0${input.userId}`;
  const hint = hintsOf(db).get(key);
  if (hint && fits(quota, hint, size)) return;
  const used = await getUserUsage(db, input.origin, input.userId);
  remember(db, key, used);
  if (!fits(quota, used, size)) throw refusal(quota, used, size);
}

/**
 * At commit, inside the upload's transaction: inserts the row held to the quota (checked by the
 * insert's own counter update, locked until commit). Returns false when the media ID is taken
 * (the caller draws another); throws the refusal when over the limit.
 */
export async function insertWithinQuota(
  db: Db,
  q: Queryable,
  row: MediaRow,
  quota: UploadQuota,
  opts: { allowReserved: boolean },
): Promise<boolean> {
  const key = `${row.origin}\0${row.userId}`;
  try {
    const inserted = await insertMediaWithinQuota(q, row, quota, opts);
    // As it will be once this transaction commits (if it rolls back, the hint is high: harmless).
    const hint = hintsOf(db).get(key);
    if (inserted && hint) remember(db, key, { bytes: hint.bytes + row.sizeBytes, files: hint.files + 1 });
    return inserted;
  } catch (e) {
    if (!(e instanceof OverQuota)) throw e;
    remember(db, key, e.usage);
    throw refusal(quota, e.usage, row.sizeBytes);
  }
}
