/**
 * Checks a count limit given in code (createGateway's config, a component's options): a whole
 * number from `min` to `max`. NaN, a fraction or a negative number would otherwise turn a bound
 * off without a word (`count >= NaN` is false, in JavaScript and in Lua alike). Throws a
 * TypeError naming the option; undefined (the component's default) passes.
 */
export function checkLimitOption(
  name: string,
  value: number | undefined,
  { min = 0, max = Number.MAX_SAFE_INTEGER }: { min?: number; max?: number } = {},
): void {
  if (value === undefined) return;
  if (typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max) return;
  const off = min === 0 ? ' (0: no limit)' : '';
  throw new TypeError(`${name} must be a whole number from ${min} to ${max}${off}, got ${String(value)}`);
}
