/** The benches' command lines, parsed one way. */

type Value = number | string | boolean | undefined;

/** `sendmailRuns` → `--sendmail-runs`. */
const flagOf = (key: string) => `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

/**
 * `--name VALUE` for each key of `defaults` (camelCase keys are spelled in kebab case:
 * `sendmailRuns` is `--sendmail-runs`): a number where the default is a number, a string where it
 * is a string or undefined; a boolean default is a flag without a value. `--preset` for each key of
 * `presets` sets several options at once (`--quick`), in command-line order. Anything else, or a
 * number that is not one, is an error rather than a silent default.
 */
export function parseArgs<T extends Record<string, Value>>(argv: string[], defaults: T, presets: Record<string, Partial<T>> = {}): T {
  const o: Record<string, Value> = { ...defaults };
  const keys = new Map(Object.keys(defaults).map((k) => [flagOf(k), k]));
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const key = keys.get(a);
    const preset = a.startsWith('--') && Object.hasOwn(presets, a.slice(2)) ? presets[a.slice(2)] : undefined;
    if (preset) Object.assign(o, preset);
    else if (key === undefined) throw new Error(`unknown option ${a}`);
    else if (typeof defaults[key] === 'boolean') o[key] = true;
    else {
      const value = argv[++i];
      if (value === undefined) throw new Error(`${a} needs a value`);
      if (typeof defaults[key] !== 'number') o[key] = value;
      else if (Number.isFinite(Number(value)) && value.trim() !== '') o[key] = Number(value);
      else throw new Error(`${a} needs a number, not ${value}`);
    }
  }
  return o as T;
}
