// The goals of the performance round (issue 23) against a run's results, met or not:
//
//   node bench/goals.mjs bench/results/<run>.jsonl
//   node bench/goals.mjs <run 1>.jsonl <run 2>.jsonl ...   # side by side, met in how many runs
//
// `pnpm bench` prints the one-run table after its own.
import { goals, goalsAcross } from './lib/goals.mjs';

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: node bench/goals.mjs <results.jsonl> [<results.jsonl> ...]');
  process.exit(64);
}
const table = files.length === 1 ? goals(files[0]) : goalsAcross(files);
console.log(table || 'none of the goals\u2019 scenarios (idle, fanout, rate, storm) are in this file');
