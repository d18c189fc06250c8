import type { UploadsSection } from '../config/schema.js';
import type { Db } from '../db/driver.js';
import { getUserUsage, type UserUsage } from '../db/usage-counters.js';
import { quotaRuleFor } from './steps/quota.js';

// MSC4034 (media limits and space usage): what /config adds about the user's quota, and what
// /usage reports. Usage is the database's counter (user_usage), the one uploads are checked
// against, so a client sees exactly the numbers that will refuse it.

/** The user's storage limits; a limit that is not set (<= 0, or no rule) is left out. */
export function storageLimits(uploads: UploadsSection, userId: string): { size?: number; maxFiles?: number } {
  const rule = quotaRuleFor(uploads, userId);
  if (!rule) return {};
  return {
    ...(rule.maxBytes > 0 ? { size: rule.maxBytes } : {}),
    ...(rule.maxFiles > 0 ? { maxFiles: rule.maxFiles } : {}),
  };
}

/** Bytes and files the user has stored on this homeserver. */
export function storageUsage(deps: { db: Db }, origin: string, userId: string): Promise<UserUsage> {
  return getUserUsage(deps.db, origin, userId);
}
