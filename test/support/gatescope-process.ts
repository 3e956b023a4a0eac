import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const built = (service: string) =>
  fileURLToPath(new URL(`../../services/${service}/dist/main.cjs`, import.meta.url));

/** The all-in-one entry point exactly as `npm start` runs it (built output). */
export const GATESCOPE_MAIN = built('gatescope');

/** The standalone services of scale-out: their built entry points and the line each logs once it serves. */
export const SERVICES = {
  collector: { main: built('collector'), up: 'gatescope collector is up' },
  api: { main: built('api'), up: 'gatescope api is up' },
  live: { main: built('live'), up: 'gatescope live server is up' },
  alerts: { main: built('alerts'), up: 'gatescope alerts is up' },
} as const;

export interface GatescopeProcess {
  child: ChildProcess;
  pid: number;
  dataDir: string;
  /** `http://127.0.0.1:<port>/` (trailing slash; `https` with TLS), as logged in "gatescope is up". */
  http: string;
  /** `127.0.0.1:<port>` for gRPC clients (empty for a service without the ALS port). */
  als: string;
  httpPort: number;
  alsPort: number;
  /** Everything the process printed on stdout so far (pino JSON lines). */
  log(): string;
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>;
  /** SIGTERM and wait for exit; resolves with the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL, no shutdown path at all. */
  kill(): Promise<void>;
}

export interface StartOptions {
  /** Extra environment (GATESCOPE_*, CLICKHOUSE_*); ports default to 0 and the data dir to a fresh temp dir. */
  env?: Record<string, string | undefined>;
  /** Reuse a data directory (restart after a crash). */
  dataDir?: string;
  /** Run under another node binary (a supported LTS from the npm registry). */
  nodeBinary?: string;
  startTimeoutMs?: number;
  /** Also pass stderr through to the test's stderr. Default true. */
  inheritStderr?: boolean;
  /** Another built entry point (`services/api/dist/main.cjs`, `services/live/dist/main.cjs`). */
  main?: string;
  /** The log message that says it is up (with an `http` field, and `als` when it has one). */
  upMessage?: string;
}

function spawnGatescope(
  main: string,
  args: string[],
  options: StartOptions,
): { child: ChildProcess; dataDir: string } {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'gs-proc-'));
  const child = spawn(options.nodeBinary ?? process.execPath, [main, ...args], {
    env: {
      ...process.env,
      GATESCOPE_DATA_DIR: dataDir,
      GATESCOPE_HTTP_PORT: '0',
      GATESCOPE_ALS_PORT: '0',
      GATESCOPE_LOG_LEVEL: 'info',
      ...options.env,
    },
    stdio: ['ignore', 'pipe', options.inheritStderr === false ? 'pipe' : 'inherit'],
  });
  return { child, dataDir };
}

/**
 * Starts the real all-in-one process (`node services/gatescope/dist/main.cjs`, what `npm start` runs) on
 * ports 0 with its own data directory, and resolves once it logged "gatescope is up" with the bound ports.
 */
export async function startGatescopeProcess(options: StartOptions = {}): Promise<GatescopeProcess> {
  const upMessage = options.upMessage ?? 'gatescope is up';
  const { child, dataDir } = spawnGatescope(options.main ?? GATESCOPE_MAIN, [], options);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const up = await new Promise<{ http: string; als?: string }>((resolve, reject) => {
    const t = setTimeout(
      () => reject(new Error(`gatescope did not start within the timeout:\n${out}`)),
      options.startTimeoutMs ?? 60_000,
    );
    const check = () => {
      const line = out.split('\n').find((l) => l.includes(`"msg":"${upMessage}`));
      if (line) {
        clearTimeout(t);
        child.stdout!.off('data', check);
        resolve(JSON.parse(line) as { http: string; als?: string });
      }
    };
    child.stdout!.on('data', check);
    void exited.then((code) => {
      clearTimeout(t);
      reject(new Error(`gatescope exited (${code}) before it was up:\n${out}`));
    });
  });
  const httpPort = Number(new URL(up.http).port);
  const als = up.als ?? '';
  const alsPort = als ? Number(als.slice(als.lastIndexOf(':') + 1)) : 0;
  return {
    child,
    pid: child.pid!,
    dataDir,
    http: up.http,
    als,
    httpPort,
    alsPort,
    log: () => out,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** A standalone service of scale-out (`collector`, `api`, `live`), started like the all-in-one process. */
export function startServiceProcess(
  service: keyof typeof SERVICES,
  options: Omit<StartOptions, 'main' | 'upMessage'> = {},
): Promise<GatescopeProcess> {
  return startGatescopeProcess({ ...options, main: SERVICES[service].main, upMessage: SERVICES[service].up });
}

/** Run a one-shot command (`gatescope migrate`) to completion: its exit code and stdout. */
export async function runGatescopeCommand(
  args: string[],
  options: StartOptions = {},
): Promise<{ code: number | null; out: string }> {
  const { child } = spawnGatescope(GATESCOPE_MAIN, args, options);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  return { code, out };
}
