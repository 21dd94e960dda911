// The goals of the performance round (issue 23) against a run's results, met or not:
//
//   node bench/goals.mjs bench/results/<run>.jsonl
//
// `pnpm bench` prints the same table after its own.
import { goals } from './lib/goals.mjs';

const file = process.argv[2];
if (!file) {
  console.error('usage: node bench/goals.mjs <results.jsonl>');
  process.exit(64);
}
const table = goals(file);
console.log(table || 'none of the goals\u2019 scenarios (idle, fanout, rate, storm) are in this file');
