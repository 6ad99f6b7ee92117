/** The bench's outputs: one text table, latest.json and a hand-written SVG bar chart (no chart library needed for a few bars). */

export interface Row {
  key: string;
  label: string;
  unit: string;
  /** Higher is better (throughput) or lower is better (latency, memory, start-up time). */
  better: 'higher' | 'lower';
  mailshim: number | null;
  postfix: number | null;
  ceiling: number | null;
  target?: { ratio: number; text: string };
  note?: string;
}

export function ratioOf(row: Row): number | null {
  if (row.mailshim === null || row.postfix === null || row.mailshim === 0 || row.postfix === 0) return null;
  return row.better === 'higher' ? row.mailshim / row.postfix : row.postfix / row.mailshim;
}

const fmt = (v: number | null, digits = 1) => (v === null ? '—' : v >= 100 ? v.toFixed(0) : v.toFixed(digits));

export function table(rows: Row[]): string {
  const header = ['workload', 'unit', 'mailshim', 'Postfix', 'ceiling', 'mailshim vs Postfix', 'target'];
  const lines = rows.map((r) => {
    const ratio = ratioOf(r);
    const target = r.target ? `${r.target.text} ${meets(r) === null ? '' : meets(r) ? 'MET' : 'MISSED'}` : '';
    return [r.label, r.unit, fmt(r.mailshim), fmt(r.postfix), fmt(r.ceiling), ratio === null ? '—' : `${ratio.toFixed(2)}×${r.better === 'lower' ? ' (less is better)' : ''}`, target.trim()];
  });
  return markdownTable(header, lines);
}

/** A Markdown table with padded columns. */
export function markdownTable(header: string[], lines: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const row = (cells: string[]) => '| ' + cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ') + ' |';
  return [row(header), '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|', ...lines.map(row)].join('\n');
}

/** Whether the row's target is met; null when it cannot be judged (a side is missing). */
export function meets(row: Row): boolean | null {
  if (!row.target || row.mailshim === null) return null;
  if (row.key === 'idle_rss_mb') return row.mailshim <= row.target.ratio;
  if (row.key === 'sendmail_ms') return row.ceiling === null ? null : row.mailshim <= row.target.ratio * row.ceiling;
  const ratio = ratioOf(row);
  return ratio === null ? null : ratio >= row.target.ratio;
}

const escape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** One group of three bars per row; each group is scaled to its own largest value. */
export function svg(rows: Row[], subtitle: string): string {
  const shown = rows.filter((r) => r.mailshim !== null || r.postfix !== null);
  const colors = { mailshim: '#2b7bb9', postfix: '#d9822b', ceiling: '#9aa5b1' } as const;
  const barH = 14;
  const groupH = barH * 3 + 26;
  const left = 250;
  const width = 820;
  const barMax = width - left - 90;
  const top = 64;
  const height = top + shown.length * groupH + 20;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="12" y="22" font-size="16" font-weight="bold">mailshim vs Postfix (same machine, same load generator)</text>`,
    `<text x="12" y="40" fill="#555">${escape(subtitle)}</text>`,
  ];
  let x = left;
  for (const [name, color] of Object.entries(colors)) {
    out.push(
      `<rect x="${x}" y="48" width="12" height="10" fill="${color}"/><text x="${x + 16}" y="57">${name === 'ceiling' ? 'ceiling (no MTA) / node -e 0' : name === 'postfix' ? 'Postfix' : 'mailshim'}</text>`,
    );
    x += name === 'ceiling' ? 0 : 110;
  }
  shown.forEach((r, i) => {
    const y = top + i * groupH + 8;
    const max = Math.max(r.mailshim ?? 0, r.postfix ?? 0, r.ceiling ?? 0) || 1;
    out.push(`<text x="12" y="${y + barH * 1.5 + 4}">${escape(r.label)}</text>`);
    out.push(`<text x="12" y="${y + barH * 1.5 + 18}" fill="#777" font-size="11">${escape(r.unit)}, ${r.better} is better</text>`);
    (['mailshim', 'postfix', 'ceiling'] as const).forEach((who, j) => {
      const v = r[who];
      const by = y + j * barH;
      if (v === null) {
        out.push(`<text x="${left + 4}" y="${by + barH - 3}" fill="#999" font-size="11">n/a</text>`);
        return;
      }
      const w = Math.max(1, (v / max) * barMax);
      out.push(`<rect x="${left}" y="${by}" width="${w.toFixed(1)}" height="${barH - 2}" fill="${colors[who]}"/>`);
      out.push(`<text x="${(left + w + 4).toFixed(1)}" y="${by + barH - 3}" font-size="11">${fmt(v)}</text>`);
    });
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}

export function percentile(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export function median(values: number[]): number | null {
  return percentile(
    [...values].sort((a, b) => a - b),
    50,
  );
}

/**
 * "median (min–max)" of the values that are not null, each shown with `digits` decimals or by
 * `show`; "—" when there are none. Every bench's summary cells use it.
 */
export function spread(values: Array<number | null>, show: number | ((v: number) => string) = 1): string {
  const v = values.filter((x): x is number => x !== null);
  if (v.length === 0) return '—';
  const f = typeof show === 'number' ? (x: number) => x.toFixed(show) : show;
  return `${f(median(v)!)} (${f(Math.min(...v))}–${f(Math.max(...v))})`;
}
