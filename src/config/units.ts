/** Parsers for the human-friendly duration ("30s", "5m") and size ("25MB") strings used in the config. */

const DURATION_UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

const SIZE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1024,
  k: 1024,
  mb: 1024 ** 2,
  m: 1024 ** 2,
  gb: 1024 ** 3,
  g: 1024 ** 3,
};

/** Milliseconds for "90s", "5m", "1h30m"; undefined when the string is not a duration. */
export function parseDuration(text: string): number | undefined {
  const trimmed = text.trim().toLowerCase();
  if (!/^(\d+(\.\d+)?(ms|s|m|h|d|w))+$/.test(trimmed)) return undefined;
  let total = 0;
  for (const match of trimmed.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/g)) {
    total += Number(match[1]) * DURATION_UNITS[match[2]!]!;
  }
  return Math.round(total);
}

/** Bytes for "512KB", "25MB", "1GB" or a bare number of bytes; undefined when not a size. */
export function parseSize(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)\s*(b|kb|k|mb|m|gb|g)?$/i.exec(text.trim());
  if (!match) return undefined;
  const unit = (match[2] ?? 'b').toLowerCase();
  return Math.round(Number(match[1]) * SIZE_UNITS[unit]!);
}

/** "10/s", "120/m", "1000/h" → events per millisecond window description. */
export interface Rate {
  count: number;
  perMs: number;
}

export function parseRate(text: string): Rate | undefined {
  const match = /^(\d+)\s*\/\s*(s|m|h|d)$/i.exec(text.trim());
  if (!match) return undefined;
  const count = Number(match[1]);
  if (count < 1) return undefined;
  return { count, perMs: DURATION_UNITS[match[2]!.toLowerCase()]! };
}

export function formatDuration(ms: number): string {
  if (ms % 86_400_000 === 0) return `${ms / 86_400_000}d`;
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
