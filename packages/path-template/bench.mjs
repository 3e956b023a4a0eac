// Micro-benchmark of @gatescope/path-template (not a test). Build first:
//   npx tsc -p packages/path-template/tsconfig.build.json && node packages/path-template/bench.mjs
// Prints paths/s for realistic gateway traffic at several cache-hit mixes.
import console from 'node:console';
import process from 'node:process';
import { PathTemplater, templatePath } from './dist/index.js';

const PRODUCTS = [
  'OLJCESPC7Z',
  '66VCHSJNUP',
  '1YMWWN1N4O',
  'L9ECAV7KIM',
  '2ZYFJ3GM2N',
  '0PUK6V6EV0',
  'LS4PSXUNUM',
  '9SIQT8TOJO',
  '6E92ZMYYFZ',
];
const FIXED = [
  ['productpage', '/productpage?u=normal'],
  ['productpage', '/static/bootstrap/css/bootstrap.min.css'],
  ['frontend', '/cart'],
  ['frontend', '/cart/checkout'],
  ['frontend', '/setCurrency'],
  ['grpc', '/hipstershop.CartService/GetCart'],
  ['grpc', '/hipstershop.ProductCatalogService/GetProduct'],
  ['grpc', '/grpc.health.v1.Health/Check'],
  ['', '/healthz'],
  ['frontend', '/static/js/main.3f2a9c1b.js'],
];

let seed = 42;
const rand = (n) => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n;
const hex = (len) => Array.from({ length: len }, () => '0123456789abcdef'[rand(16)]).join('');

/** A request whose path is (almost certainly) new: fresh ids, uuids, hashes, query strings. */
function uniqueRequest(i) {
  switch (i % 6) {
    case 0:
      return ['reviews', `/api/v1/products/${rand(1e9)}/reviews?i=${i}`];
    case 1:
      return ['users', `/api/v2/users/${hex(8)}-${hex(4)}-4${hex(3)}-a${hex(3)}-${hex(12)}/orders/${i}`];
    case 2:
      return ['items', `/items/${hex(24)}`];
    case 3:
      return ['frontend', `/product/${PRODUCTS[rand(9)]}?session=${hex(16)}&n=${i}`];
    case 4:
      return [
        'reports',
        `/reports/2026-${String(1 + rand(12)).padStart(2, '0')}-${String(1 + rand(28)).padStart(2, '0')}/download/${i}`,
      ];
    default:
      return ['static', `/static/media/logo.${hex(32)}.svg`];
  }
}

/** Hot requests: a finite set of paths that the cache will hold. */
const HOT = [...FIXED];
for (const p of PRODUCTS) HOT.push(['frontend', `/product/${p}`]);
for (let i = 0; i < 50; i++) HOT.push(['reviews', `/api/v1/products/${i}/reviews`]);

function workload(hitRatio, size) {
  const out = [];
  for (let i = 0; i < size; i++)
    out.push(rand(1000) < hitRatio * 1000 ? HOT[rand(HOT.length)] : uniqueRequest(i));
  return out;
}

function run(name, hitRatio) {
  const requests = workload(hitRatio, 200_000);
  const warm = new PathTemplater();
  for (const [route, path] of requests.slice(0, 20_000)) warm.template(route, path); // JIT warm-up
  const templater = new PathTemplater();
  for (const [route, path] of HOT) templater.template(route, path);
  const start = process.hrtime.bigint();
  for (const [route, path] of requests) templater.template(route, path);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  console.log(
    `${name.padEnd(38)} ${Math.round(requests.length / seconds)
      .toLocaleString('en-US')
      .padStart(12)} paths/s`,
  );
}

function runLong() {
  const path = '/' + Array.from({ length: 1200 }, (_, i) => `item/${i}`).join('/');
  for (let i = 0; i < 200; i++) templatePath(path + i);
  const n = 2000;
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) templatePath(path + i);
  const micros = Number(process.hrtime.bigint() - start) / 1e3 / n;
  console.log(
    `${`long path (${path.length} chars), uncached`.padEnd(38)} ${micros.toFixed(1).padStart(12)} us/path`,
  );
}

console.log(`node ${process.version}, default options (cacheSize 10000, maxTemplatesPerRoute 200)`);
run('100% cache hits', 1);
run('90% hits / 10% unique paths', 0.9);
run('50% hits / 50% unique paths', 0.5);
run('0% hits (every path new)', 0);
runLong();
