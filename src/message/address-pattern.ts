/** Address patterns used by config (`match_from`, `allowed_senders`): "*@example.com", "alerts@*", exact. */
export function addressMatches(patterns: string[], address: string): boolean {
  if (patterns.length === 0) return true;
  return patterns.some((pattern) => {
    const regex = new RegExp(
      '^' +
        pattern
          .split('*')
          .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
          .join('.*') +
        '$',
      'i',
    );
    return regex.test(address);
  });
}
