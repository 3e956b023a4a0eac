import { PRIVATE_TABLES } from '@gatescope/clickhouse';

/**
 * The ad-hoc SQL sandbox's rules, as pure functions. The text a user sent is never pasted into another
 * statement: ClickHouse parses it from a bound parameter (`PARSE_STATEMENT`), which refuses anything but one
 * statement and gives back its normalised single-line form. That form (ClickHouse's own rendering of one parsed
 * statement, no comments, no `;`) is what gets explained (`EXPLAIN AST`), checked here, and run with settings the
 * user cannot override (`runSettings`: `readonly = 1` last, limits, framing, the token's table filters).
 *
 * What the checks add to `readonly = 1`, which already stops writes, DDL and settings changes and the table
 * functions that read files or the network on the embedded engine:
 * - exactly one SELECT (or WITH … SELECT, UNION, INTERSECT, EXCEPT);
 * - no SETTINGS clause anywhere in the tree (a later `readonly = 0` in the same list, or in a subquery, wins);
 * - no FORMAT or INTO OUTFILE;
 * - table functions only from `GENERATOR_TABLE_FUNCTIONS`;
 * - no ordinary function that reads files, dictionaries, settings or the server (`file()` works under readonly);
 * - no database but gatescope's (TableIdentifier and the `x IN db.table` form);
 * - for a restricted token, only tables the restriction can filter;
 * - never the tables of secrets (`PRIVATE_TABLES`, which the server's read roles are refused too).
 */
export type SqlViolationCode =
  | 'ERR_SQL_SYNTAX'
  | 'ERR_SQL_MULTI_STATEMENT'
  | 'ERR_SQL_NOT_SELECT'
  | 'ERR_SQL_SETTINGS'
  | 'ERR_SQL_OUTPUT'
  | 'ERR_SQL_DATABASE'
  | 'ERR_SQL_FUNCTION'
  | 'ERR_SQL_RESTRICTED'
  | 'ERR_SQL_UNSUPPORTED';

export interface SqlViolation {
  code: SqlViolationCode;
  message: string;
}

/** Parse the user's text with ClickHouse's parser; the text is the bound parameter `q`. */
export const PARSE_STATEMENT = 'SELECT formatQuerySingleLine({q:String}) AS statement';

/**
 * A first look at the normalised statement (ClickHouse's rendering starts with its keyword in upper case): only
 * SELECT and WITH go on to the tree checks. Returns the refusal otherwise.
 */
export function notSelect(normalised: string): SqlViolation | undefined {
  if (/^(SELECT|WITH)\b/.test(normalised)) return undefined;
  const word = /^[A-Z]+(?: [A-Z]+)?/.exec(normalised)?.[0] ?? 'an empty';
  return {
    code: 'ERR_SQL_NOT_SELECT',
    message: `Only SELECT queries are allowed (this is a ${word} statement): the SQL endpoint is read-only`,
  };
}

/**
 * The AST of the parser-normalised single statement (never the user's raw text), read through a subquery so the
 * answer's format applies to the explanation, not to the explained statement. The engine refuses output options
 * (FORMAT, INTO OUTFILE) inside it. As a last guard, the text must be what the formatter writes: one line,
 * quotes closed, parentheses balanced; anything else is refused before it is sent.
 */
export function explainStatement(normalised: string): string {
  if (!isBalancedSingleLine(normalised)) throw new Error('not a normalised single-line statement');
  return `SELECT explain FROM (EXPLAIN AST ${normalised})`;
}

function isBalancedSingleLine(text: string): boolean {
  if (/[\n\r]/.test(text)) return false;
  let depth = 0;
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = undefined;
    } else if (c === "'" || c === '`' || c === '"') quote = c;
    else if (c === ';') return false;
    else if (c === '(') depth++;
    else if (c === ')' && --depth < 0) return false;
  }
  return depth === 0 && quote === undefined;
}

/**
 * Table functions that only generate rows from their arguments. Every other one the engine lists
 * (`system.table_functions`) is refused; a test walks that list.
 */
export const GENERATOR_TABLE_FUNCTIONS: ReadonlySet<string> = new Set([
  'numbers',
  'numbers_mt',
  'zeros',
  'zeros_mt',
  'generate_series',
  'generateseries',
  'generaterandom',
  'primes',
  'values',
  'sqlstandardvalues',
  'null',
]);

/** Ordinary functions that reach files, dictionaries, settings, the network or the server's state. */
export const DENIED_FUNCTIONS: ReadonlySet<string> = new Set(
  [
    'file',
    'joinGet',
    'joinGetOrNull',
    'getSetting',
    'getSettingOrDefault',
    'getServerSetting',
    'getMergeTreeSetting',
    'getMacro',
    'getClientHTTPHeader',
    'getServerPort',
    'getOSKernelVersion',
    'filesystemAvailable',
    'filesystemCapacity',
    'filesystemUnreserved',
    'catboostEvaluate',
    'showCertificate',
    'hasColumnInTable',
    'globalVariable',
    'generateSerialID',
    'logTrace',
    'demangle',
    'tid',
    'isMergeTreePartCoveredBy',
    'mergeTreePartInfo',
    'aiClassify',
    'aiEmbed',
    'aiExtract',
    'aiGenerate',
    'aiTranslate',
  ].map((n) => n.toLowerCase()),
);
/** Whole families: dictionaries (incl. the embedded region dictionaries), introspection, AI providers (aiGenerate…). */
const DENIED_PREFIXES = ['dictget', 'dicthas', 'dictisin', 'region', 'addressto'];

export function isDeniedFunction(name: string): boolean {
  const n = name.toLowerCase();
  return DENIED_FUNCTIONS.has(n) || DENIED_PREFIXES.some((p) => n.startsWith(p)) || /^ai[A-Z]/.test(name);
}

/** The `IN` family: `x IN db.table` reads a table named by a bare identifier. */
const IN_FUNCTIONS = new Set(
  [
    'in',
    'notIn',
    'globalIn',
    'globalNotIn',
    'nullIn',
    'notNullIn',
    'globalNullIn',
    'globalNotNullIn',
    'inIgnoreSet',
    'notInIgnoreSet',
    'globalInIgnoreSet',
    'globalNotInIgnoreSet',
    'nullInIgnoreSet',
    'notNullInIgnoreSet',
    'globalNullInIgnoreSet',
    'globalNotNullInIgnoreSet',
  ].map((n) => n.toLowerCase()),
);

/** One node of `EXPLAIN AST` output. */
export interface AstNode {
  type: string;
  /** What follows the type on its line: a name, a literal, `(alias x)`, `(children N)`. */
  text: string;
  children: AstNode[];
}

/**
 * Rebuild the tree from `EXPLAIN AST` lines (one space of indent per level) and check it is exactly what the
 * engine printed: every line a node type at a depth one below its parent, every `(children N)` matching. Names
 * are printed raw, so an identifier holding a newline would add lines; any such text breaks the shape and the
 * statement is refused instead of read wrongly.
 */
export function parseAst(lines: readonly string[]): AstNode | undefined {
  const rows = lines.filter((l) => l.length > 0);
  const root: AstNode = { type: '', text: '', children: [] };
  const stack: { node: AstNode; depth: number; declared: number }[] = [
    { node: root, depth: -1, declared: 1 },
  ];
  const counts: { node: AstNode; declared: number }[] = [];
  for (const line of rows) {
    const m = /^( *)([A-Z][A-Za-z]*)(?: (.*))?$/.exec(line);
    if (!m) return undefined;
    const depth = m[1].length;
    while (stack.length > 0 && stack[stack.length - 1].depth >= depth) stack.pop();
    const parent = stack[stack.length - 1];
    if (!parent || parent.depth !== depth - 1) return undefined;
    const text = m[3] ?? '';
    const declared = Number(/\(children (\d+)\)$/.exec(text)?.[1] ?? 0);
    const node: AstNode = { type: m[2], text, children: [] };
    parent.node.children.push(node);
    stack.push({ node, depth, declared });
    counts.push({ node, declared });
  }
  if (root.children.length !== 1) return undefined;
  for (const c of counts) if (c.node.children.length !== c.declared) return undefined;
  return root.children[0];
}

/** The name a node carries (`Function file (children 1)` -> `file`, `TableIdentifier a.b (alias t)` -> `a.b`). */
function nameOf(node: AstNode): string {
  return node.text.replace(/ \((?:alias [^)]*|children \d+)\)/g, '').trim();
}

export interface SqlCheckContext {
  database: string;
  /** Every other database the engine has (system, information_schema, default, …). */
  otherDatabases: readonly string[];
  /**
   * Set for a restricted token: the tables of `database` its filter cannot apply to (no authority/gateway
   * columns, or a view reading other tables), and those it may read, for the message.
   */
  unreadableTables?: ReadonlySet<string>;
  readableTables?: ReadonlySet<string>;
  /** How the restriction reads, for messages (`authorities shop.example.com`). */
  restrictionText?: string;
}

const PLAIN_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Every rule in the module comment, over the tree. An empty list means the statement may run. */
export function checkAst(root: AstNode | undefined, ctx: SqlCheckContext): SqlViolation[] {
  const out: SqlViolation[] = [];
  const add = (v: SqlViolation) => {
    if (!out.some((o) => o.message === v.message)) out.push(v);
  };
  if (!root) {
    add({
      code: 'ERR_SQL_UNSUPPORTED',
      message:
        'The statement could not be checked: an identifier or alias holds a line break or other control character. Rename it',
    });
    return out;
  }
  if (root.type !== 'SelectWithUnionQuery' && root.type !== 'SelectIntersectExceptQuery') {
    add({
      code: 'ERR_SQL_NOT_SELECT',
      message: `Only SELECT queries are allowed (this is a ${root.type.replace(/Query$/, '')} statement): the SQL endpoint is read-only`,
    });
    return out;
  }
  root.children.forEach((c, i) => {
    if (i > 0 || c.type !== 'ExpressionList') {
      add({
        code: 'ERR_SQL_OUTPUT',
        message:
          'INTO OUTFILE and FORMAT clauses are not allowed: the API chooses the format (format=json or format=csv)',
      });
    }
  });
  const others = new Set(ctx.otherDatabases);
  const otherLower = new Set(ctx.otherDatabases.map((d) => d.toLowerCase()));
  const foreignDb = (name: string): string | undefined => {
    const dot = name.indexOf('.');
    if (dot <= 0) return undefined;
    const db = name.slice(0, dot);
    if (db === ctx.database) return undefined;
    return others.has(db) || otherLower.has(db.toLowerCase()) ? db : undefined;
  };
  const tableRefused = (name: string) =>
    add({
      code: 'ERR_SQL_DATABASE',
      message: `Table ${name} is not accessible: only tables of the ${ctx.database} database can be queried (system, information_schema and other databases are off limits)`,
    });
  const checkTable = (name: string) => {
    const parts = name.split('.');
    if (parts.length > 2 || !parts.every((p) => PLAIN_NAME.test(p))) {
      add({
        code: 'ERR_SQL_UNSUPPORTED',
        message: `Table name ${name} is not supported: use ${ctx.database}.<table> with a plain name`,
      });
      return;
    }
    // `SELECT 1` reads the one-row system.one (the engine adds it to the tree).
    if (name === 'system.one') return;
    if (parts.length === 2 && parts[0] !== ctx.database) return tableRefused(name);
    const table = parts[parts.length - 1];
    if ((PRIVATE_TABLES as readonly string[]).includes(table)) {
      add({
        code: 'ERR_SQL_DATABASE',
        message: `Table ${table} is not accessible: it holds alert receivers' URLs and signing secrets`,
      });
      return;
    }
    // An unqualified name that is no table of the database is a CTE (or unknown to the engine too).
    if (ctx.unreadableTables?.has(table)) {
      add({
        code: 'ERR_SQL_RESTRICTED',
        message: `This token sees only ${ctx.restrictionText ?? 'some hosts'}: table ${table} has no authority/gateway columns to filter on. Readable tables: ${[...(ctx.readableTables ?? [])].sort().join(', ')}`,
      });
    }
  };

  const walk = (node: AstNode, parent: AstNode | undefined) => {
    const name = nameOf(node);
    switch (node.type) {
      case 'Set':
        add({
          code: 'ERR_SQL_SETTINGS',
          message:
            'SETTINGS clauses are not allowed anywhere in the query: gatescope fixes the limits (read-only, time, memory, rows, bytes)',
        });
        break;
      case 'TableIdentifier':
        checkTable(name);
        break;
      case 'Identifier': {
        const db = foreignDb(name);
        if (db) tableRefused(name);
        break;
      }
      case 'Function': {
        const lower = name.toLowerCase();
        if (parent?.type === 'TableExpression') {
          if (!GENERATOR_TABLE_FUNCTIONS.has(lower)) {
            add({
              code: 'ERR_SQL_FUNCTION',
              message: `Table function ${name}() is not allowed: only the generators ${[...GENERATOR_TABLE_FUNCTIONS].join(', ')} are (tables come from the ${ctx.database} database)`,
            });
          }
        } else if (isDeniedFunction(name)) {
          add({
            code: 'ERR_SQL_FUNCTION',
            message: `Function ${name}() is not allowed: it reads files, dictionaries, settings or the server's state`,
          });
        } else if (IN_FUNCTIONS.has(lower)) {
          const args = node.children[0]?.children ?? [];
          if (args[1]?.type === 'Identifier') {
            add({
              code: 'ERR_SQL_UNSUPPORTED',
              message: `"IN ${nameOf(args[1])}" reads a table by name: write IN (SELECT … FROM …) instead`,
            });
          }
        }
        break;
      }
    }
    for (const c of node.children) walk(c, node);
  };
  walk(root, undefined);
  return out;
}

/**
 * Turn ClickHouse's syntax error for the user's text into a message pointing into that text. Only the
 * position, the parser's own reason and what it expected are kept: nothing of the statement that carried it.
 */
export function syntaxViolation(engineMessage: string, userText: string): SqlViolation {
  const pos = Number(/failed at position (\d+)/.exec(engineMessage)?.[1] ?? NaN);
  const multi = /Multi-statements are not allowed/.test(engineMessage);
  const expected = /Expected (?:one of: )?(.*?)(?:: In scope|\. \(SYNTAX_ERROR\)|$)/s.exec(
    engineMessage,
  )?.[1];
  const reason = /Syntax error(?: \(([^)]*)\))?:/.exec(engineMessage)?.[1];
  let where = '';
  if (Number.isFinite(pos) && pos >= 1) {
    // ClickHouse counts bytes from 1; the user counts characters, lines and columns.
    const bytes = Buffer.from(userText, 'utf8');
    const before = bytes.subarray(0, pos - 1).toString('utf8');
    const lines = before.split('\n');
    const near = bytes
      .subarray(pos - 1, pos - 1 + 40)
      .toString('utf8')
      .split('\n')[0];
    where = ` at line ${lines.length}, column ${lines[lines.length - 1].length + 1}${near ? ` (near "${near}")` : ' (end of query)'}`;
  }
  if (multi) {
    return {
      code: 'ERR_SQL_MULTI_STATEMENT',
      message: `Only one statement is allowed: another one starts${where}. Remove everything after the first statement`,
    };
  }
  const list = expected
    ?.replace(/[.\s]+$/, '')
    .split(', ')
    .map((s) => s.trim())
    .filter(Boolean);
  const hint = list?.length
    ? `; expected ${list.slice(0, 8).join(', ')}${list.length > 8 ? ', …' : ''}`
    : reason
      ? `: ${reason}`
      : '';
  return { code: 'ERR_SQL_SYNTAX', message: `Syntax error${where}${hint}` };
}

/** A restriction as SQL for `additional_table_filters` (values are configuration, quoted, never request text). */
export function restrictionPredicate(
  r: { authorities?: readonly string[]; gateways?: readonly string[] },
  quote: (s: string) => string,
): string {
  const parts: string[] = [];
  const list = (vs: readonly string[]) => vs.map(quote).join(', ');
  if (r.authorities) parts.push(`authority IN (${list(r.authorities)})`);
  if (r.gateways) parts.push(`(node_id IN (${list(r.gateways)}) OR node_cluster IN (${list(r.gateways)}))`);
  return parts.length ? parts.join(' AND ') : '1';
}

/** The columns a table needs for a restriction to filter it. */
export const RESTRICTION_COLUMNS = ['authority', 'node_id', 'node_cluster'] as const;
