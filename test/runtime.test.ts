// Which Node.js the suite runs on. `.ci/run` runs the whole suite on the Active LTS release and this test with the
// native and engine paths on every other runtime (the other LTS release in .ci/node-lts, fetched from the npm
// registry, and the machine's own Node), and names the release it put first on PATH
// in GATESCOPE_EXPECT_NODE_VERSION; these tests fail if the test processes ended up on another one. They also load
// every native addon in node_modules on this runtime: one `npm ci` serves every runtime only because they are all
// Node-API addons (no per-ABI rebuild); an addon built against one Node ABI fails here on the others. And the
// places that name the supported releases agree: .ci/node-lts, `engines`, the Docker image.
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const expected = process.env.GATESCOPE_EXPECT_NODE_VERSION;
const ciReleases = readFileSync(join(root, '.ci/node-lts'), 'utf8')
  .split('\n')
  .filter((line) => line.trim() && !line.startsWith('#'))
  .map((line) => line.split(/\s+/)[0]);

function nativeAddons(): string[] {
  const dirs = [
    'node_modules',
    ...['packages', 'services'].flatMap((d) =>
      readdirSync(join(root, d)).map((w) => join(d, w, 'node_modules')),
    ),
  ];
  return dirs.flatMap((dir) => {
    try {
      return readdirSync(join(root, dir), { recursive: true, encoding: 'utf8' })
        .filter((f) => f.endsWith('.node'))
        .map((f) => join(root, dir, f));
    } catch {
      return []; // a workspace without a node_modules of its own
    }
  });
}

describe('runtime', () => {
  it.runIf(expected)(`is the Node.js release CI put on PATH (${expected ?? 'unset'})`, () => {
    expect(process.version).toBe(`v${expected!.replace(/^v/, '')}`);
  });

  it('loads every native addon in node_modules, chdb included, without a rebuild for this Node ABI', () => {
    const addons = nativeAddons();
    expect(addons.some((f) => f.endsWith('chdb_node.node'))).toBe(true);
    const require = createRequire(import.meta.url);
    const failures: string[] = [];
    for (const file of addons) {
      try {
        expect(require(file)).toBeTypeOf('object');
      } catch (err) {
        failures.push(`${file}: ${(err as Error).message.replace(/\s+/g, ' ')}`);
      }
    }
    expect(failures, `on node ${process.version} (ABI ${process.versions.modules})`).toEqual([]);
  });

  it('names the same supported releases in .ci/node-lts, engines and the Docker image', () => {
    expect(ciReleases.length).toBeGreaterThan(0);
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { engines: { node: string } };
    expect(pkg.engines.node).toBe(ciReleases.map((v) => `^${v.split('.')[0]}.0.0`).join(' || '));
    const dockerfile = readFileSync(join(root, 'services/gatescope/Dockerfile'), 'utf8');
    const image = /^ARG NODE_IMAGE=node:(\d+\.\d+\.\d+)-/m.exec(dockerfile)?.[1];
    expect(ciReleases).toContain(image);
    const stages = dockerfile.match(/^FROM .*/gm) ?? [];
    expect(stages.length).toBeGreaterThan(0);
    for (const from of stages) expect(from).toMatch(/^FROM \$\{NODE_IMAGE\}( AS \w+)?$/);
  });
});
