import { quoteString } from '@gatescope/clickhouse';
import { describe, expect, it } from 'vitest';
import {
  checkAst,
  explainStatement,
  isDeniedFunction,
  parseAst,
  restrictionPredicate,
  syntaxViolation,
  type SqlCheckContext,
} from './sql-guard.js';
import {
  AdmissionGate,
  AdmissionRefused,
  FramedResultReader,
  framing,
  rowsAsJson,
  rowsAsObjects,
  runSettings,
  toCsv,
} from './sql-run.js';

const ctx: SqlCheckContext = {
  database: 'gatescope',
  otherDatabases: ['system', 'default', 'information_schema', 'INFORMATION_SCHEMA'],
};
/** An EXPLAIN AST as the engine prints it, from an indented outline ("2 Function file" = depth 2). */
function ast(...lines: string[]): string[] {
  return lines;
}
const SELECT_FROM = (table: string) =>
  ast(
    'SelectWithUnionQuery (children 1)',
    ' ExpressionList (children 1)',
    '  SelectQuery (children 2)',
    '   ExpressionList (children 1)',
    '    Asterisk',
    '   TablesInSelectQuery (children 1)',
    '    TablesInSelectQueryElement (children 1)',
    '     TableExpression (children 1)',
    `      ${table}`,
  );
const codes = (lines: string[], c: SqlCheckContext = ctx) => checkAst(parseAst(lines), c).map((v) => v.code);

describe('parseAst', () => {
  it('rebuilds the tree and checks every declared child count', () => {
    const root = parseAst(SELECT_FROM('TableIdentifier gatescope.http_requests'));
    expect(root?.type).toBe('SelectWithUnionQuery');
    expect(parseAst(SELECT_FROM('TableIdentifier gatescope.http_requests').slice(0, -1))).toBeUndefined();
  });
  it('refuses output where a raw identifier added lines (an alias holding a newline)', () => {
    // SELECT 1 AS `a\n  Function file` as the engine prints it: the alias spills onto a line of its own.
    const injected = ast(
      'SelectWithUnionQuery (children 1)',
      ' ExpressionList (children 1)',
      '  SelectQuery (children 1)',
      '   ExpressionList (children 1)',
      '    Literal UInt64_1 (alias a',
      '  Function file)',
    );
    expect(parseAst(injected)).toBeUndefined();
    expect(codes(injected)).toEqual(['ERR_SQL_UNSUPPORTED']);
    expect(parseAst([...SELECT_FROM('TableIdentifier gatescope.we'), 'ird'])).toBeUndefined();
  });
});

describe('checkAst', () => {
  it('passes a plain SELECT on the database, qualified or not, and generator table functions', () => {
    expect(codes(SELECT_FROM('TableIdentifier gatescope.http_requests (alias r)'))).toEqual([]);
    expect(codes(SELECT_FROM('TableIdentifier http_requests'))).toEqual([]);
    expect(codes(SELECT_FROM('TableIdentifier system.one'))).toEqual([]);
    const numbers = SELECT_FROM('Function numbers (children 1)');
    numbers.push('       ExpressionList (children 1)', '        Literal UInt64_10');
    expect(codes(numbers)).toEqual([]);
  });
  it('refuses other statements, FORMAT/OUTFILE, SETTINGS anywhere', () => {
    expect(codes(ast('InsertQuery'))).toEqual(['ERR_SQL_NOT_SELECT']);
    expect(codes(ast('ExplainQuery (children 1)', ' SelectWithUnionQuery'))).toEqual(['ERR_SQL_NOT_SELECT']);
    const withFormat = SELECT_FROM('TableIdentifier gatescope.t');
    withFormat[0] = 'SelectWithUnionQuery (children 2)';
    withFormat.push(' Identifier JSON');
    expect(codes(withFormat)).toEqual(['ERR_SQL_OUTPUT']);
    const nestedSet = ast(
      'SelectWithUnionQuery (children 1)',
      ' ExpressionList (children 1)',
      '  SelectQuery (children 2)',
      '   ExpressionList (children 1)',
      '    Asterisk',
      '   TablesInSelectQuery (children 1)',
      '    TablesInSelectQueryElement (children 1)',
      '     TableExpression (children 1)',
      '      Subquery (children 1)',
      '       SelectWithUnionQuery (children 1)',
      '        ExpressionList (children 1)',
      '         SelectQuery (children 2)',
      '          ExpressionList (children 1)',
      '           Literal UInt64_1',
      '          Set',
    );
    expect(codes(nestedSet)).toEqual(['ERR_SQL_SETTINGS']);
  });
  it('refuses other databases, as tables and as `IN db.table`', () => {
    expect(codes(SELECT_FROM('TableIdentifier system.tables'))).toEqual(['ERR_SQL_DATABASE']);
    expect(codes(SELECT_FROM('TableIdentifier INFORMATION_SCHEMA.TABLES'))).toEqual(['ERR_SQL_DATABASE']);
    expect(codes(SELECT_FROM('TableIdentifier default.t'))).toEqual(['ERR_SQL_DATABASE']);
    expect(codes(SELECT_FROM('TableIdentifier gatescope.x.y.z'))).toEqual(['ERR_SQL_UNSUPPORTED']);
    const inTable = ast(
      'SelectWithUnionQuery (children 1)',
      ' ExpressionList (children 1)',
      '  SelectQuery (children 1)',
      '   ExpressionList (children 1)',
      '    Function in (children 1)',
      '     ExpressionList (children 2)',
      '      Identifier x',
      '      Identifier system.users',
    );
    expect(codes(inTable)).toEqual(['ERR_SQL_UNSUPPORTED', 'ERR_SQL_DATABASE']);
  });
  it('refuses table functions that are not generators and functions that reach outside', () => {
    expect(codes(SELECT_FROM('Function file (children 1)').concat('       ExpressionList'))).toEqual([
      'ERR_SQL_FUNCTION',
    ]);
    for (const f of [
      'file',
      'FILE',
      'dictGet',
      'dictGetString',
      'joinGet',
      'getSetting',
      'regionToName',
      'aiGenerate',
      'hasColumnInTable',
      'addressToLine',
    ]) {
      expect(isDeniedFunction(f), f).toBe(true);
    }
    for (const f of ['format', 'count', 'quantilesDDMerge', 'airport', 'regexpExtract']) {
      expect(isDeniedFunction(f), f).toBe(false);
    }
  });
  it('keeps a restricted token to the tables its filter applies to', () => {
    const restricted = {
      ...ctx,
      readableTables: new Set(['http_requests', 'http_requests_1m']),
      unreadableTables: new Set(['http_routes_1m', 'tcp_connections']),
      restrictionText: 'authorities a.com',
    };
    expect(codes(SELECT_FROM('TableIdentifier my_cte'), restricted)).toEqual([]);
    expect(codes(SELECT_FROM('TableIdentifier gatescope.http_requests'), restricted)).toEqual([]);
    expect(codes(SELECT_FROM('TableIdentifier http_requests'), restricted)).toEqual([]);
    const refused = checkAst(parseAst(SELECT_FROM('TableIdentifier http_routes_1m')), restricted);
    expect(refused.map((v) => v.code)).toEqual(['ERR_SQL_RESTRICTED']);
    expect(refused[0].message).toMatch(/authorities a\.com.*http_routes_1m/);
  });
});

describe('syntaxViolation', () => {
  it('points into the user text by line and column and never repeats the wrapping statement', () => {
    const v = syntaxViolation(
      "Code: 62. DB::Exception: Syntax error: failed at position 16 (1): 1. Expected one of: token, Comma. : In scope SELECT formatQuerySingleLine('SELECT 1\\nSELEC 1') AS statement. (SYNTAX_ERROR)",
      'SELECT 1\nSELEC 1',
    );
    expect(v).toEqual({
      code: 'ERR_SQL_SYNTAX',
      message: 'Syntax error at line 2, column 7 (near "1"); expected token, Comma',
    });
    const multi = syntaxViolation(
      'Syntax error (Multi-statements are not allowed): failed at position 9 (end of query): ; SELECT 2. : In scope',
      'SELECT 1; SELECT 2',
    );
    expect(multi.code).toBe('ERR_SQL_MULTI_STATEMENT');
    expect(multi.message).toContain('line 1, column 9');
    expect(multi.message).not.toMatch(/scope|formatQuery/);
  });
});

describe('explainStatement', () => {
  it('takes only a balanced single-line statement', () => {
    expect(explainStatement("SELECT ')' AS x")).toBe("SELECT explain FROM (EXPLAIN AST SELECT ')' AS x)");
    expect(() => explainStatement('SELECT 1) UNION ALL (SELECT 2')).toThrow();
    expect(() => explainStatement('SELECT 1; DROP TABLE t')).toThrow();
    expect(() => explainStatement("SELECT 'x")).toThrow();
  });
});

describe('runSettings', () => {
  it('puts readonly last, after limits and framing, with the token filter when restricted', () => {
    const s = runSettings({
      limits: {
        maxExecutionTimeS: 30,
        maxMemoryBytes: 1e9,
        maxThreads: 1,
        maxResultRows: 10,
        maxResultBytes: 100,
      },
      framing: framing('0123456789abcdef0123'),
      tableFilters: {
        'gatescope.http_requests': restrictionPredicate({ authorities: ["a'b\\c"] }, quoteString),
      },
    });
    const keys = Object.keys(s);
    expect(keys[keys.length - 1]).toBe('readonly');
    expect(s.readonly).toBe(1);
    expect(s.additional_table_filters).toEqual({ 'gatescope.http_requests': "authority IN ('a\\'b\\\\c')" });
    expect(s.result_overflow_mode).toBe('throw');
  });
});

describe('FramedResultReader', () => {
  const f = framing('0123456789abcdef0123');
  const frame = (rows: string[]) =>
    [f.begin, '"n"\t"s"', '"UInt64"\t"String"', ...rows, f.end, ''].join('\n');
  it('reads several frames (one per streamed chunk), dropping foreign output before the first', () => {
    const r = new FramedResultReader(f, { rows: 100, bytes: 1e6 });
    r.push('0\n1\n2\nleft over from a stopped query\n');
    r.push(frame(['1\t"a"', '2\t"b\\tc"']));
    r.push(frame(['3\t"d"']));
    const res = r.result();
    expect(res.meta).toEqual([
      { name: 'n', type: 'UInt64' },
      { name: 's', type: 'String' },
    ]);
    expect(rowsAsObjects(res)).toEqual([
      { n: 1, s: 'a' },
      { n: 2, s: 'b\tc' },
      { n: 3, s: 'd' },
    ]);
    expect(JSON.parse(rowsAsJson(res))).toEqual(rowsAsObjects(res));
    expect(res.truncated).toBeUndefined();
    expect(res.foreignBytes).toBe(37);
    expect(toCsv(res)).toBe('"n","s"\n1,"a"\n2,"b\tc"\n3,"d"\n');
  });
  it('stops at the row and byte caps and says which', () => {
    const rows = new FramedResultReader(f, { rows: 2, bytes: 1e6 });
    expect(rows.push(frame(['1\t"a"', '2\t"b"', '3\t"c"']))).toBe(false);
    expect(rows.result()).toMatchObject({
      truncated: 'rows',
      rows: [
        ['1', '"a"'],
        ['2', '"b"'],
      ],
    });
    const bytes = new FramedResultReader(f, { rows: 100, bytes: 12 });
    bytes.push(frame(['1\t"aaaa"', '2\t"bbbb"']));
    expect(bytes.result()).toMatchObject({ truncated: 'bytes', rows: [['1', '"aaaa"']] });
  });
  it('refuses a result without its frame, cut short, or with a frame of other columns', () => {
    const none = new FramedResultReader(f, { rows: 10, bytes: 1e6 });
    none.push('1\t"a"\n');
    expect(() => none.result()).toThrow(/no result/);
    const short = new FramedResultReader(f, { rows: 10, bytes: 1e6 });
    short.push([f.begin, '"n"\t"s"', '"UInt64"\t"String"', '1\t"a"', ''].join('\n'));
    expect(() => short.result()).toThrow(/ended early/);
    const other = new FramedResultReader(f, { rows: 10, bytes: 1e6 });
    other.push(frame(['1\t"a"']));
    expect(() => other.push([f.begin, '"x"', '"String"', ''].join('\n'))).toThrow(/other columns/);
    const otherNonce = new FramedResultReader(f, { rows: 10, bytes: 1e6 });
    otherNonce.push(frame(['1\t"a"']).replaceAll('0123456789abcdef0123', 'ffffffffffffffffffff'));
    expect(() => otherNonce.result()).toThrow(/no result/);
  });
});

describe('AdmissionGate', () => {
  it('runs N, queues M in order, refuses the rest, and lets a leaving waiter go', async () => {
    const gate = new AdmissionGate(1, 2);
    const first = await gate.enter();
    const order: number[] = [];
    const second = gate.enter().then((r) => (order.push(2), r));
    const leaving = new AbortController();
    const third = gate.enter(leaving.signal);
    await expect(gate.enter()).rejects.toBeInstanceOf(AdmissionRefused);
    leaving.abort();
    await expect(third).rejects.toBeDefined();
    expect(gate.queued).toBe(1);
    first();
    (await second)();
    expect(order).toEqual([2]);
    expect(gate.running).toBe(0);
  });
});
