// `gatescope dead-letters list|show|replay`: what ClickHouse refused (or what fell outside the start_time window),
// on this collector's disk (GATESCOPE_DATA_DIR/dead-letters), and putting it back once the cause is fixed. Works
// whether gatescope runs or not: replay hands the files to the write-ahead log's inbox, which the running
// collector takes within seconds (or the next start does); it never opens ClickHouse itself.
import { join } from 'node:path';
import { readNative } from '@gatescope/als';
import { ConfigError, loadConfig } from '@gatescope/config';
import { listDeadLetters, readDeadLetterRows, requeueDeadLetters, type DeadLetter } from '@gatescope/wal';

const USAGE = `Usage:
  gatescope dead-letters list [--json]         every dead letter: id, table, reason, entries, error
  gatescope dead-letters show <id> [--limit N]  its error and rows (JSON lines, 20 by default)
  gatescope dead-letters replay <id>... | --all queue them for insertion (after fixing the cause)

Reads GATESCOPE_DATA_DIR (default ./data) like the service.`;

export interface CliOutput {
  out(line: string): void;
  err(line: string): void;
}

const consoleOutput: CliOutput = { out: (l) => console.log(l), err: (l) => console.error(l) };

/** Runs one command; resolves with the exit code (0 ok, 1 not found / failed, 2 usage or configuration). */
export async function deadLettersCli(
  args: readonly string[],
  env: Record<string, string | undefined>,
  io: CliOutput = consoleOutput,
): Promise<number> {
  let dataDir: string;
  try {
    dataDir = loadConfig(env).dataDir;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    io.err(err.message);
    return 2;
  }
  const dir = join(dataDir, 'dead-letters');
  const [command, ...rest] = args;
  const letters = await listDeadLetters(dir);
  switch (command) {
    case 'list': {
      if (rest.includes('--json')) {
        for (const l of letters) io.out(JSON.stringify(l));
        return 0;
      }
      if (letters.length === 0) {
        io.out(`No dead letters in ${dir}.`);
        return 0;
      }
      for (const l of letters) io.out(describe(l));
      const entries = letters.reduce((n, l) => n + l.entries, 0);
      io.out(
        `\n${letters.length} dead letters, ${entries} entries, in ${dir}. ` +
          'Fix the cause, then `gatescope dead-letters replay --all` (or by id).',
      );
      return 0;
    }
    case 'show': {
      const id = rest.find((a) => !a.startsWith('--') && !/^\d+$/.test(a));
      const limitAt = rest.indexOf('--limit');
      const limit = limitAt >= 0 ? Number(rest[limitAt + 1]) : 20;
      const letter = letters.find((l) => l.id === id);
      if (!id || !Number.isInteger(limit) || limit < 0) {
        io.err(USAGE);
        return 2;
      }
      if (!letter) {
        io.err(`No dead letter ${id} in ${dir}: \`gatescope dead-letters list\` shows the ids.`);
        return 1;
      }
      io.out(describe(letter));
      if (letter.error) io.out(`error: ${letter.error.message}`);
      const rows = readNative(await readDeadLetterRows(dir, letter));
      for (const row of rows.slice(0, limit)) io.out(JSON.stringify(row));
      if (rows.length > limit) io.out(`… ${rows.length - limit} more (--limit ${rows.length})`);
      return 0;
    }
    case 'replay': {
      const all = rest.includes('--all');
      const ids = rest.filter((a) => !a.startsWith('--'));
      if (all === ids.length > 0 || (!all && ids.length === 0)) {
        io.err(USAGE);
        return 2;
      }
      const missing = ids.filter((id) => !letters.some((l) => l.id === id));
      if (missing.length > 0) {
        io.err(
          `No dead letter ${missing.join(', ')} in ${dir}: \`gatescope dead-letters list\` shows the ids.`,
        );
        return 1;
      }
      const chosen = all ? letters : letters.filter((l) => ids.includes(l.id));
      await requeueDeadLetters(dir, join(dataDir, 'wal'), chosen);
      io.out(
        `Queued ${chosen.length} dead letters (${chosen.reduce((n, l) => n + l.entries, 0)} entries) for replay. ` +
          'A running gatescope inserts them within seconds, otherwise the next start does; each keeps its ' +
          'insert deduplication token, so nothing is stored twice. What ClickHouse still refuses comes back ' +
          'as a dead letter.',
      );
      return 0;
    }
    default:
      io.err(command ? `Unknown dead-letters command "${command}".\n${USAGE}` : USAGE);
      return 2;
  }
}

function describe(l: DeadLetter): string {
  const error = l.error ? `${l.error.name ?? 'error'}${l.error.code ? ` (${l.error.code})` : ''}` : '';
  return [l.id, l.table, l.reason, `${l.entries} entries`, l.created_at, error].filter(Boolean).join('  ');
}
