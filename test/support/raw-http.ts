import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';

export interface RawResponse {
  status: number;
  /** Lower-case names. */
  headers: Record<string, string>;
  body: string;
}

export interface RawRequest {
  port: number;
  host?: string;
  tls?: boolean;
  method?: string;
  /** Sent byte for byte as the request target: fetch and http.request would normalise it. */
  target: string;
  /** Added after `Host: <host>:<port>` and `Connection: close`; a `Host` here replaces the default one. */
  headers?: Record<string, string>;
  /** Send no Host header at all. */
  omitHost?: boolean;
  body?: string;
  timeoutMs?: number;
}

function dechunk(body: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = body.indexOf('\r\n', at);
    if (eol < 0) break;
    const size = parseInt(body.subarray(at, eol).toString(), 16);
    if (!size) break;
    parts.push(body.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
  return Buffer.concat(parts);
}

/** One HTTP/1.1 request over a fresh connection (`Connection: close`), target and headers exactly as given. */
export function rawRequest(req: RawRequest): Promise<RawResponse> {
  const host = req.host ?? '127.0.0.1';
  const headers: Record<string, string> = {
    ...(req.omitHost || req.headers?.Host !== undefined ? {} : { Host: `${host}:${req.port}` }),
    Connection: 'close',
    ...req.headers,
  };
  if (req.body !== undefined) headers['Content-Length'] = String(Buffer.byteLength(req.body));
  const head =
    `${req.method ?? 'GET'} ${req.target} HTTP/1.1\r\n` +
    Object.entries(headers)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('') +
    '\r\n';
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const onConnect = () => socket.write(head + (req.body ?? ''));
    const socket: Socket = req.tls
      ? tlsConnect({ port: req.port, host, rejectUnauthorized: false }, onConnect)
      : netConnect(req.port, host, onConnect);
    socket.setTimeout(req.timeoutMs ?? 15_000, () => socket.destroy(new Error(`timeout: ${req.target}`)));
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      // A protocol switch (WebSocket) keeps the connection open: the status line and headers are the answer.
      const soFar = Buffer.concat(chunks);
      if (soFar.subarray(0, 12).toString() === 'HTTP/1.1 101' && soFar.includes('\r\n\r\n')) socket.destroy();
    });
    socket.on('error', reject);
    socket.on('close', () => {
      const all = Buffer.concat(chunks);
      const split = all.indexOf('\r\n\r\n');
      if (split < 0) return reject(new Error(`no HTTP response to ${req.target}: ${all.toString()}`));
      const [statusLine, ...lines] = all.subarray(0, split).toString('latin1').split('\r\n');
      const parsed: Record<string, string> = {};
      for (const line of lines) {
        const i = line.indexOf(':');
        const name = line.slice(0, i).trim().toLowerCase();
        parsed[name] = parsed[name]
          ? `${parsed[name]}, ${line.slice(i + 1).trim()}`
          : line.slice(i + 1).trim();
      }
      let body: Buffer = all.subarray(split + 4);
      if (/chunked/i.test(parsed['transfer-encoding'] ?? '')) body = dechunk(body);
      resolve({ status: Number(statusLine.split(' ')[1]), headers: parsed, body: body.toString('utf8') });
    });
  });
}

/** `rawRequest` with the body parsed as `{ error: { code } }` when it is one. */
export function errorCode(res: RawResponse): string | undefined {
  try {
    return (JSON.parse(res.body) as { error?: { code?: string } }).error?.code;
  } catch {
    return undefined;
  }
}

/** The first request of a socket.io (engine.io v4) session, polling or a WebSocket upgrade, with extra headers. */
export function engineHandshake(
  port: number,
  transport: 'polling' | 'websocket',
  headers: Record<string, string> = {},
): Promise<RawResponse> {
  return rawRequest({
    port,
    target: `/socket.io/?EIO=4&transport=${transport}`,
    headers:
      transport === 'websocket'
        ? {
            Upgrade: 'websocket',
            Connection: 'Upgrade',
            'Sec-WebSocket-Version': '13',
            'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
            ...headers,
          }
        : headers,
  });
}
