import {
  AccessLogDecoder,
  DecodeError,
  type DecodeLimits,
  type StreamIdentity,
  type StreamState,
} from '@gatescope/als';
import { LiveWindowRecorder, type LiveWindowPartial } from '@gatescope/live-window';
import { PathTemplater, parsePathTemplateRules } from '@gatescope/path-template';

export interface DecodeCoreOptions {
  pathTemplateRulesJson?: string;
  maxTemplatesPerRoute: number;
  limits?: Partial<DecodeLimits>;
  /** Record every http row into a live window partial (see takeLive). */
  liveWindow?: boolean;
}

/** Rows as a Native block, with its stream ranges (NativeBlockWriter.take) so the WAL merges it without a walk. */
export interface DecodedBlock {
  rows: number;
  data: Uint8Array;
  streams?: Uint32Array;
}

/** What one StreamAccessLogsMessage became: its rows per table (in its batch's blocks, in message order). */
export interface DecodedMessage {
  ok: true;
  stream: number;
  http: number;
  tcp: number;
  /** Entries whose start_time lies outside the accepted window: rows of the batch's `outside` blocks, dead-lettered. */
  outsideHttp: number;
  outsideTcp: number;
  /** The stream's identifier, when this message is the one that carried it (the delivery ledger keys by it). */
  identity?: StreamIdentity;
}
export interface DecodeFailure {
  ok: false;
  stream: number;
  /** A DecodeError reason, or `decoder_error`, `decoder_crashed`, `decoder_unavailable`, `shutdown`. */
  reason: string;
  message: string;
  /** A size limit refused it (RESOURCE_EXHAUSTED) rather than bad input (INVALID_ARGUMENT). */
  limit?: boolean;
  /** The stream's identifier, when one was seen (this message's own included). */
  identity?: StreamIdentity;
}
export type MessageOutcome = DecodedMessage | DecodeFailure;

/**
 * Consecutive messages decoded together (those a decoder thread found queued): one Native block per table holding
 * the rows of every message decoded, in order, and what each message became. A message refused keeps no row.
 * One block per batch instead of one per message is what makes everything after the decoder cheaper per row: the
 * hand-over between threads, the write-ahead log's merge, the tail's reads.
 */
export interface DecodedBatch {
  messages: MessageOutcome[];
  http: DecodedBlock;
  tcp: DecodedBlock;
  outside: { http: DecodedBlock; tcp: DecodedBlock };
}

const NONE: DecodedBlock = { rows: 0, data: new Uint8Array(0) };

/**
 * Per-stream decoding state plus the decoder: Envoy sends the identifier (node, log name) only in the first
 * message of each stream, so the state of every open stream is kept until the stream ends.
 * Runs inside a decoder worker thread, or inline when no worker is configured.
 */
export class DecodeCore {
  private readonly decoder: AccessLogDecoder;
  private readonly streams = new Map<number, StreamState>();
  private readonly live?: LiveWindowRecorder;

  constructor(options: DecodeCoreOptions) {
    const rules = options.pathTemplateRulesJson ? parsePathTemplateRules(options.pathTemplateRulesJson) : [];
    this.live = options.liveWindow ? new LiveWindowRecorder() : undefined;
    const staged = this.staged;
    this.decoder = new AccessLogDecoder({
      pathTemplater: new PathTemplater({ rules, maxTemplatesPerRoute: options.maxTemplatesPerRoute }),
      limits: options.limits,
      observer: this.live && {
        http: (startUs, durationMs, code, route, authority, cluster, identity) =>
          staged.push(
            startUs,
            durationMs,
            code,
            route,
            authority,
            cluster,
            identity.nodeId,
            identity.nodeCluster,
          ),
      },
    });
  }

  /**
   * The rows of the message being decoded, 8 fields each, recorded into the live window only once the whole message
   * decoded (a malformed message keeps none of its rows, in the window as in ClickHouse).
   */
  private readonly staged: (string | number)[] = [];

  private recordStaged(): void {
    const live = this.live;
    const r = this.staged;
    if (!live) return;
    for (let i = 0; i < r.length; i += 8)
      live.record(
        r[i] as number,
        r[i + 1] as number,
        r[i + 2] as number,
        r[i + 3] as string,
        r[i + 4] as string,
        r[i + 5] as string,
        r[i + 6] as string,
        r[i + 7] as string,
      );
    r.length = 0;
  }

  /** The live window partial recorded since the last call (undefined: nothing, or no live window). */
  takeLive(): LiveWindowPartial | undefined {
    return this.live?.take();
  }

  /** Decodes messages in order into one batch. */
  decode(messages: readonly { stream: number; data: Uint8Array }[]): DecodedBatch {
    const outcomes = messages.map(({ stream, data }) => this.decodeOne(stream, data));
    const d = this.decoder;
    const outside =
      d.pendingOutsideHttpRows + d.pendingOutsideTcpRows > 0 ? d.takeOutside() : { http: NONE, tcp: NONE };
    return {
      messages: outcomes,
      // Each block owns its exactly-sized ArrayBuffer, so the worker can transfer it without a copy.
      http: d.pendingHttpRows > 0 ? d.takeHttp() : NONE,
      tcp: d.pendingTcpRows > 0 ? d.takeTcp() : NONE,
      outside: {
        http: outside.http.rows > 0 ? outside.http : NONE,
        tcp: outside.tcp.rows > 0 ? outside.tcp : NONE,
      },
    };
  }

  /** One message's rows, appended to the decoder's blocks (none when it is refused). */
  private decodeOne(stream: number, data: Uint8Array): MessageOutcome {
    let state = this.streams.get(stream);
    if (!state) {
      state = {};
      this.streams.set(stream, state);
    }
    const known = state.identity;
    const d = this.decoder;
    const before = [d.pendingHttpRows, d.pendingTcpRows, d.pendingOutsideHttpRows, d.pendingOutsideTcpRows];
    try {
      d.decode(data, state);
      this.recordStaged();
    } catch (err) {
      this.staged.length = 0;
      // The decoder rolls its output back to the start of the failed message: nothing of it is kept.
      const identity = state.identity && { ...state.identity };
      if (err instanceof DecodeError)
        return { ok: false, stream, reason: err.reason, message: err.message, limit: err.isLimit, identity };
      return { ok: false, stream, reason: 'decoder_error', message: (err as Error).message, identity };
    }
    return {
      ok: true,
      stream,
      http: d.pendingHttpRows - before[0],
      tcp: d.pendingTcpRows - before[1],
      outsideHttp: d.pendingOutsideHttpRows - before[2],
      outsideTcp: d.pendingOutsideTcpRows - before[3],
      ...(state.identity !== known && state.identity && { identity: { ...state.identity } }),
    };
  }

  end(stream: number): void {
    this.streams.delete(stream);
  }
}
