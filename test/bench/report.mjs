// Every line a benchmark prints starts with the Node.js release it was measured on: V8, libuv, worker threads and
// Node-API change between releases, so figures from two runtimes are not one series (README's figures say which).
// `npm run bench` runs on the `node` first on PATH; `PATH="$(bash .ci/fetch-node 26):$PATH" npm run bench` picks a
// supported LTS release.
import { availableParallelism } from 'node:os';

export const RUNTIME = `node ${process.version}`;

/** console.log with the runtime beside every line. */
export function report(...parts) {
  const text = parts.map(String).join(' ');
  console.log(
    text
      .split('\n')
      .map((line) => (line ? `[${RUNTIME}] ${line}` : line))
      .join('\n'),
  );
}

/** One line naming the whole runtime: Node.js and V8 releases, platform, CPUs the benchmark could use. */
export function describeRuntime() {
  return `${RUNTIME}, V8 ${process.versions.v8}, ${process.platform}-${process.arch}, ${availableParallelism()} CPUs`;
}
