/**
 * Maps config paths ("upstream[1].port") to line numbers in the TOML source, so validation errors
 * can name the line. TOML parsers return plain objects without positions, hence this small scanner:
 * it understands table headers, arrays of tables and `key =` lines, which is all the config uses.
 */
export function locateLines(source: string): Map<string, number> {
  const lines = new Map<string, number>();
  const arrayCounts = new Map<string, number>();
  let table = '';
  let inMultiline: string | undefined;
  source.split(/\r?\n/).forEach((raw, index) => {
    const lineNo = index + 1;
    const line = raw.trim();
    if (inMultiline) {
      if (line.includes(inMultiline)) inMultiline = undefined;
      return;
    }
    if (line === '' || line.startsWith('#')) return;
    const arrayHeader = /^\[\[\s*([A-Za-z0-9_.-]+)\s*\]\]/.exec(line);
    if (arrayHeader) {
      const name = arrayHeader[1]!;
      const count = arrayCounts.get(name) ?? 0;
      arrayCounts.set(name, count + 1);
      table = `${name}[${count}]`;
      lines.set(table, lineNo);
      return;
    }
    const header = /^\[\s*([A-Za-z0-9_.-]+)\s*\]/.exec(line);
    if (header) {
      table = header[1]!;
      if (!lines.has(table)) lines.set(table, lineNo);
      return;
    }
    const key = /^("?)([A-Za-z0-9_.-]+)\1\s*=\s*(.*)$/.exec(line);
    if (key) {
      const path = table ? `${table}.${key[2]}` : key[2]!;
      if (!lines.has(path)) lines.set(path, lineNo);
      const value = key[3]!;
      for (const quote of ['"""', "'''"]) {
        if (value.startsWith(quote) && value.indexOf(quote, 3) === -1) inMultiline = quote;
      }
    }
  });
  return lines;
}
