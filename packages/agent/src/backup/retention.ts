/**
 * Which backups to delete: those beyond the newest `keepCount`, and those older than
 * `keepDays`. The newest good backup is never deleted, whatever its age: a pair whose
 * backups stopped must not end up with none. Pure.
 */
export interface RetentionPolicy {
  keepCount: number;
  /** 0: no age limit. */
  keepDays: number;
}

export interface RetainedItem {
  name: string;
  takenAt: Date;
}

export function backupsToDelete<T extends RetainedItem>(items: readonly T[], policy: RetentionPolicy, now: Date): T[] {
  const newestFirst = [...items].sort((a, b) => b.takenAt.getTime() - a.takenAt.getTime() || compareCodePoints(b.name, a.name));
  const maxAgeMs = policy.keepDays * 86_400_000;
  return newestFirst.filter((item, index) => {
    if (index === 0) return false;
    if (index >= policy.keepCount) return true;
    return policy.keepDays > 0 && now.getTime() - item.takenAt.getTime() > maxAgeMs;
  });
}

/**
 * Plain code-point order for names and tables: stable across machines, and unlike
 * `localeCompare` it does not page ICU's collation data into the agent (about 3 MB resident).
 */
export function compareCodePoints(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
