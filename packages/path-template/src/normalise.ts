/**
 * The built-in path normaliser: turns a request path into a low-cardinality template.
 *
 * Behaviour, in order:
 * - The query string and fragment are dropped (`/a?x=1#f` -> `/a`).
 * - `*` (the `OPTIONS *` request target) stays `*`; the empty path becomes `/`.
 * - An absolute-form target (`http://host:8080/a`) is reduced to its path (`/a`).
 *   Any other target without a leading `/` gets one prepended.
 * - Nothing is collapsed: empty segments (`//`) and a trailing slash are kept exactly as sent,
 *   so `/a/1` and `/a/1/` give `/a/{id}` and `/a/{id}/`.
 * - Each segment is classified as a whole (percent-encoded segments are decoded for this check):
 *   digits -> `{id}`, UUID -> `{uuid}`, `YYYY-MM-DD[Thh:mm…]` -> `{date}`, e-mail -> `{email}`,
 *   IPv4/IPv6 -> `{ip}`, hex of 8+ chars mixing digits and letters (hashes, Mongo ObjectIds) -> `{hash}`,
 *   JWTs and long random base64/base62 strings -> `{token}`, short random mixed ids
 *   (Online Boutique `OLJCESPC7Z`, `dQw4w9WgXcQ`) -> `{id}`.
 * - Otherwise the segment is split into alphanumeric words at any other character (`.`, `-`, `_`, `%XX`, …)
 *   and only the words that look like ids are replaced, keeping the rest: `main.3f2a9c1b.js` ->
 *   `main.{hash}.js`, `invoice-1234567.pdf` -> `invoice-{id}.pdf`, `user12345` -> `user{id}` (digit runs of
 *   5+ inside a word). Short numbers inside words stay (`utf-8`, `sha256`, `jquery-3.6.0.min.js`).
 * - Kept segments are emitted byte-for-byte as received (still percent-encoded); nothing is decoded
 *   into the template.
 *
 * Every check is a single linear scan over char codes (no regular expressions), so an 8 KB path costs
 * a few microseconds and no input can trigger backtracking.
 */

export const PLACEHOLDER = {
  id: '{id}',
  uuid: '{uuid}',
  hash: '{hash}',
  date: '{date}',
  email: '{email}',
  ip: '{ip}',
  token: '{token}',
} as const;

/** A run of this many digits inside a word is an id (`user12345`, `order-1234567`). */
const MIN_EMBEDDED_DIGIT_RUN = 5;
/** A whole segment of base64/base62 chars at least this long can be a `{token}`. */
const MIN_TOKEN_LENGTH = 16;
/** A mixed-case or upper-case alphanumeric word at least this long can be an `{id}`. */
const MIN_RANDOM_ID_LENGTH = 6;

// Character classes, by char code.
const isDigit = (c: number): boolean => c >= 48 && c <= 57;
const isUpper = (c: number): boolean => c >= 65 && c <= 90;
const isLower = (c: number): boolean => c >= 97 && c <= 122;
const isAlnum = (c: number): boolean => isDigit(c) || isUpper(c) || isLower(c);
const isHexLetter = (c: number): boolean => (c >= 97 && c <= 102) || (c >= 65 && c <= 70);
const isHex = (c: number): boolean => isDigit(c) || isHexLetter(c);

/** Returns the template of `path` using only the built-in heuristics (no rules, no cardinality cap). */
export function templatePath(path: string): string {
  return templateStrippedPath(stripQuery(path));
}

/** `path` without its query string and fragment; returns `path` itself (no allocation) when it has none. */
export function stripQuery(path: string): string {
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 63 /* ? */ || c === 35 /* # */) return path.slice(0, i);
  }
  return path;
}

/** Templates a path that has already been through {@link stripQuery}. */
export function templateStrippedPath(path: string): string {
  if (path.length === 0) return '/';
  if (path === '*') return '*';
  if (path.charCodeAt(0) !== 47 /* / */) {
    const scheme = path.indexOf('://');
    if (scheme > 0) {
      const slash = path.indexOf('/', scheme + 3);
      path = slash < 0 ? '/' : path.slice(slash);
    } else {
      path = '/' + path;
    }
  }

  let out: string | null = null; // built lazily: stays null while every segment is kept
  let segStart = 1;
  for (let i = 1; i <= path.length; i++) {
    if (i < path.length && path.charCodeAt(i) !== 47) continue;
    const replaced = segStart < i ? templateSegment(path, segStart, i) : null;
    if (replaced !== null) {
      out = (out ?? path.slice(0, segStart)) + replaced;
    } else if (out !== null) {
      out += path.slice(segStart, i);
    }
    if (out !== null && i < path.length) out += '/';
    segStart = i + 1;
  }
  return out ?? path;
}

/** Template for `path[start, end)` (one non-empty segment), or null to keep it as is. */
function templateSegment(path: string, start: number, end: number): string | null {
  let hasPercent = false;
  for (let i = start; i < end; i++) {
    if (path.charCodeAt(i) === 37 /* % */) {
      hasPercent = true;
      break;
    }
  }
  const raw = path.slice(start, end);
  let decoded = raw;
  if (hasPercent) {
    try {
      decoded = decodeURIComponent(raw);
    } catch {
      // Malformed escape (`%zz`, lone surrogate): classify the raw text.
    }
  }
  const whole = classifyWholeSegment(decoded);
  if (whole !== null) return whole;
  return templateWords(raw);
}

/** Placeholder when the whole segment is one identifier, else null. */
export function classifyWholeSegment(s: string): string | null {
  const n = s.length;
  if (n === 0) return null;

  let digits = 0;
  let upper = 0;
  let lower = 0;
  let hexLetters = 0;
  let dashes = 0;
  let dots = 0;
  let colons = 0;
  let ats = 0;
  let base64Other = 0; // - _ + = (base64 / base64url alphabet besides alnum)
  let other = 0;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (isDigit(c)) digits++;
    else if (isUpper(c)) {
      upper++;
      if (isHexLetter(c)) hexLetters++;
    } else if (isLower(c)) {
      lower++;
      if (isHexLetter(c)) hexLetters++;
    } else if (c === 45 /* - */) {
      dashes++;
      base64Other++;
    } else if (c === 95 /* _ */ || c === 43 /* + */ || c === 61 /* = */) base64Other++;
    else if (c === 46 /* . */) dots++;
    else if (c === 58 /* : */) colons++;
    else if (c === 64 /* @ */) ats++;
    else other++;
  }
  const letters = upper + lower;

  if (digits === n) return PLACEHOLDER.id;
  if (n === 36 && dashes === 4 && digits + hexLetters === 32 && isUuid(s)) return PLACEHOLDER.uuid;
  if (n >= 10 && isDigit(s.charCodeAt(0)) && isDate(s)) return PLACEHOLDER.date;
  if (ats === 1 && other === 0 && isEmail(s)) return PLACEHOLDER.email;
  if (dots === 3 && digits + dots === n && isIpv4(s)) return PLACEHOLDER.ip;
  if (colons >= 2 && other === 0 && ats === 0 && isIpv6(s)) return PLACEHOLDER.ip;
  if (n >= 8 && digits > 0 && digits + hexLetters === n) return PLACEHOLDER.hash;
  if (dots === 2 && n >= 20 && s.startsWith('eyJ') && isJwt(s)) return PLACEHOLDER.token;
  if (other + dots + colons + ats === 0 && n >= MIN_TOKEN_LENGTH && letters > 0) {
    // Long base64 / base64url / base62 string: a token when it looks random.
    if (looksRandom(s, 0, n, digits, upper, lower, base64Other)) return PLACEHOLDER.token;
  }
  return null;
}

/**
 * Rewrites the id-like alphanumeric words of a segment (`main.3f2a9c1b.js` -> `main.{hash}.js`),
 * or returns null when every word is kept.
 */
function templateWords(seg: string): string | null {
  let out: string | null = null;
  let copied = 0; // seg[0, copied) is already in out
  const n = seg.length;
  let i = 0;
  while (i < n) {
    const c = seg.charCodeAt(i);
    if (!isAlnum(c)) {
      // `%XX` escapes are delimiters as a whole, so their hex digits never join a word.
      i += c === 37 && i + 2 < n && isHex(seg.charCodeAt(i + 1)) && isHex(seg.charCodeAt(i + 2)) ? 3 : 1;
      continue;
    }
    const start = i;
    let digits = 0;
    let upper = 0;
    let lower = 0;
    let hexLetters = 0;
    let longestDigitRun = 0;
    let run = 0;
    for (; i < n; i++) {
      const w = seg.charCodeAt(i);
      if (isDigit(w)) {
        digits++;
        run++;
        if (run > longestDigitRun) longestDigitRun = run;
        continue;
      }
      run = 0;
      if (isUpper(w)) upper++;
      else if (isLower(w)) lower++;
      else break;
      if (isHexLetter(w)) hexLetters++;
    }
    const len = i - start;
    let replacement: string | null = null;
    if (digits === len) {
      if (len >= MIN_EMBEDDED_DIGIT_RUN) replacement = PLACEHOLDER.id;
    } else if (digits > 0 && len >= 8 && digits + hexLetters === len) {
      replacement = PLACEHOLDER.hash;
    } else if (
      digits > 0 &&
      !isVersion(seg, start, i) &&
      looksRandom(seg, start, i, digits, upper, lower, 0)
    ) {
      replacement = PLACEHOLDER.id;
    } else if (longestDigitRun >= MIN_EMBEDDED_DIGIT_RUN) {
      replacement = replaceDigitRuns(seg.slice(start, i));
    }
    if (replacement !== null) {
      out = (out ?? '') + seg.slice(copied, start) + replacement;
      copied = i;
    }
  }
  if (out === null) return null;
  return copied < n ? out + seg.slice(copied) : out;
}

/** `user12345x` -> `user{id}x`: digit runs of {@link MIN_EMBEDDED_DIGIT_RUN}+ inside a word. */
function replaceDigitRuns(word: string): string {
  let out = '';
  let i = 0;
  while (i < word.length) {
    if (!isDigit(word.charCodeAt(i))) {
      out += word[i];
      i++;
      continue;
    }
    const start = i;
    while (i < word.length && isDigit(word.charCodeAt(i))) i++;
    out += i - start >= MIN_EMBEDDED_DIGIT_RUN ? PLACEHOLDER.id : word.slice(start, i);
  }
  return out;
}

/**
 * Whether `s[start, end)` (alnum plus, for whole-segment tokens, `-_+=`) looks like a random identifier
 * rather than a word. Words are lower-case (`productpage`), camelCase / PascalCase with long lower-case
 * runs (`GetCart`, `Http2Server`), or a word with a small number (`oauth2`, `sha256`, `h2c`).
 * Random ids are upper-case with digits (`OLJCESPC7Z`), flip between classes often (`dQw4w9WgXcQ`,
 * `a1b2c3`), or are long and mix upper, lower and digits.
 */
function looksRandom(
  s: string,
  start: number,
  end: number,
  digits: number,
  upper: number,
  lower: number,
  symbols: number,
): boolean {
  const n = end - start;
  if (n < MIN_RANDOM_ID_LENGTH) return false;
  // Class runs: upper, lower, digit, symbol. Random text has short runs; words have long lower-case runs.
  let runs = 0;
  let digitLetterFlips = 0;
  let prev = -1;
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    const cls = isDigit(c) ? 0 : isUpper(c) ? 1 : isLower(c) ? 2 : 3;
    if (cls !== prev) {
      runs++;
      if (prev !== -1 && (cls === 0 || prev === 0) && cls !== 3 && prev !== 3) digitLetterFlips++;
      prev = cls;
    }
  }
  const meanRun = n / runs;
  if (symbols > 0 && lower > 0 && upper === 0 && digits === 0) return false; // a slug: `my-long-article-title`
  if (lower === 0) {
    // Upper-case + digits: an id when digits sit inside the letters or lead (`OLJCESPC7Z`, `66VCHSJNUP`,
    // `X7K9QZ`); a word with a trailing number stays (`COVID19`, `ISO8601`, `ABC123`), as do `README`s.
    return digits > 0 && upper > 0 && (digitLetterFlips >= 2 || isDigit(s.charCodeAt(start)));
  }
  if (upper === 0) {
    // Lower-case + digits: random when digits and letters alternate (`a1b2c3`, `k8s9x0q`).
    return digits > 0 && digitLetterFlips >= 3 && meanRun < 3;
  }
  // Mixed case.
  if (digits === 0) return n >= MIN_TOKEN_LENGTH && meanRun < 1.8; // base52 noise; camelCase has long runs
  return meanRun < 2 || (n >= MIN_TOKEN_LENGTH && meanRun < 3);
}

/** `v1`, `v2`, `v10`, `v1beta1`, `v2alpha`, `V3`: API version segments stay. */
function isVersion(s: string, start: number, end: number): boolean {
  const c0 = s.charCodeAt(start);
  if ((c0 !== 118 && c0 !== 86) /* v V */ || end - start < 2 || !isDigit(s.charCodeAt(start + 1)))
    return false;
  let i = start + 1;
  while (i < end && isDigit(s.charCodeAt(i))) i++;
  while (i < end && isLower(s.charCodeAt(i))) i++;
  while (i < end && isDigit(s.charCodeAt(i))) i++;
  return i === end;
}

function isUuid(s: string): boolean {
  for (let i = 0; i < 36; i++) {
    const c = s.charCodeAt(i);
    if (i === 8 || i === 13 || i === 18 || i === 23) {
      if (c !== 45) return false;
    } else if (!isHex(c)) return false;
  }
  return true;
}

/** `YYYY-MM-DD`, optionally followed by `T` or `_` / space and a time (`2026-11-26T10:00:00.123Z`). */
function isDate(s: string): boolean {
  for (let i = 0; i < 10; i++) {
    const c = s.charCodeAt(i);
    if (i === 4 || i === 7 ? c !== 45 : !isDigit(c)) return false;
  }
  const month = (s.charCodeAt(5) - 48) * 10 + (s.charCodeAt(6) - 48);
  const day = (s.charCodeAt(8) - 48) * 10 + (s.charCodeAt(9) - 48);
  if (month < 1 || month > 12 || day < 1 || day > 31) return false;
  if (s.length === 10) return true;
  const sep = s.charCodeAt(10);
  if (sep !== 84 && sep !== 116 && sep !== 95 && sep !== 32) return false; // T t _ space
  for (let i = 11; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (!isDigit(c) && c !== 58 && c !== 46 && c !== 43 && c !== 45 && c !== 90 && c !== 122) return false;
  }
  return s.length > 11;
}

/**
 * `local@domain.tld` with a letters-only TLD of 2+ chars (so `pkg@1.2.3` is not an e-mail) and a domain
 * that is not a retina-image suffix (`logo@2x.png`).
 */
function isEmail(s: string): boolean {
  const at = s.indexOf('@');
  if (at <= 0) return false;
  let i = at + 1;
  while (i < s.length && isDigit(s.charCodeAt(i))) i++;
  if (
    i > at + 1 &&
    (s.charCodeAt(i) === 120 /* x */ || s.charCodeAt(i) === 88) &&
    s.charCodeAt(i + 1) === 46
  ) {
    return false;
  }
  const lastDot = s.lastIndexOf('.');
  if (lastDot < at + 2 || s.length - lastDot - 1 < 2) return false;
  for (let i = lastDot + 1; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (!isUpper(c) && !isLower(c)) return false;
  }
  return true;
}

function isIpv4(s: string): boolean {
  let octetDigits = 0;
  let value = 0;
  for (let i = 0; i <= s.length; i++) {
    const c = i < s.length ? s.charCodeAt(i) : 46;
    if (c === 46) {
      if (octetDigits === 0 || octetDigits > 3 || value > 255) return false;
      octetDigits = 0;
      value = 0;
    } else {
      octetDigits++;
      value = value * 10 + (c - 48);
    }
  }
  return true;
}

/** Hex groups separated by `:` (with `::` and an optional trailing dotted IPv4), at least one hex digit. */
function isIpv6(s: string): boolean {
  let groupLen = 0;
  let hexSeen = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 58) groupLen = 0;
    else if (isHex(c)) {
      if (++groupLen > 4 && s.indexOf('.', i) < 0) return false;
      hexSeen++;
    } else if (c !== 46) return false;
  }
  return hexSeen > 0 && s.length >= 3;
}

/** `header.payload.signature`, all base64url, header starting with `eyJ` (`{"`). */
function isJwt(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (!isAlnum(c) && c !== 45 && c !== 95 && c !== 46 && c !== 61) return false;
  }
  const first = s.indexOf('.');
  const second = s.indexOf('.', first + 1);
  return first >= 10 && second > first + 1;
}
