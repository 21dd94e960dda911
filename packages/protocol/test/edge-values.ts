// Values at the edges of what the protocol's schemas accept, shared by the tests that hold a
// hand-written check (src/hello-check.ts, src/welcome-check.ts) to zod's verdicts.

const emoji = '\u{1F600}';

/** Strings around a length bound `n`, in ASCII, in surrogate pairs and with lone surrogates. */
export function around(n: number): string[] {
  const out: string[] = [];
  for (const k of [n - 1, n, n + 1]) {
    if (k < 0) continue;
    out.push('x'.repeat(k), emoji.repeat(k), `${emoji.repeat(Math.max(0, k - 1))}x`, '\ud83d'.repeat(k));
    out.push('\ude00'.repeat(k), `${'\ud83d'.repeat(k)}\ude00`, `x${emoji.repeat(Math.floor(k / 2))}`);
  }
  return out;
}

/** Numbers, strings around the id bounds, cursor-like strings and empty containers. */
export const edgeValues: readonly unknown[] = [
  undefined,
  null,
  true,
  false,
  0,
  -0,
  1,
  -1,
  0.5,
  1.5,
  2,
  2 ** 53 - 1,
  2 ** 53,
  1e21,
  -(2 ** 53),
  Number.MAX_VALUE,
  Number.MIN_VALUE,
  '',
  'x',
  '1',
  'e1:0',
  'e1:-1',
  'e1:',
  ':1',
  'e1:1\n',
  '\ne1:1',
  'e1:1:2',
  'é:1',
  `${'a'.repeat(32)}:${'1'.repeat(16)}`,
  `${'a'.repeat(33)}:1`,
  `a:${'1'.repeat(17)}`,
  'a_-Z9:0123',
  ...around(0),
  ...around(1),
  ...around(2),
  ...around(128),
  [],
  ['x'],
  {},
];
