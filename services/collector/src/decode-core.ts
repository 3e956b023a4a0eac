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

/** The rows one StreamAccessLogsMessage became: one ClickHouse Native block per table. */
export interface DecodedMessage {
  ok: true;
  http: DecodedBlock;
  tcp: DecodedBlock;
  /** Entries whose start_time lies outside the accepted window: rows of their own blocks, dead-lettered. */
  outOfWindow: number;
  outside: { http: DecodedBlock; tcp: DecodedBlock };
  /** The stream's identifier, when this message is the one that carried it (the delivery ledger keys by it). */
  identity?: StreamIdentity;
}
export interface DecodeFailure {
  ok: false;
  /** A DecodeError reason, or `decoder_error`, `decoder_crashed`, `decoder_unavailable`, `shutdown`. */
  reason: string;
  message: string;
  /** A size limit refused it (RESOURCE_EXHAUSTED) rather than bad input (INVALID_ARGUMENT). */
  limit?: boolean;
  /** The stream's identifier, when one was seen (this message's own included). */
  identity?: StreamIdentity;
}

const EMPTY = new Uint8Array(0);

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

  decode(stream: number, data: Uint8Array): DecodedMessage | DecodeFailure {
    let state = this.streams.get(stream);
    if (!state) {
      state = {};
      this.streams.set(stream, state);
    }
    const known = state.identity;
    let outOfWindow: number;
    try {
      outOfWindow = this.decoder.decode(data, state).outOfWindow;
      this.recordStaged();
    } catch (err) {
      this.staged.length = 0;
      // The decoder rolls its output back to the start of the failed message: nothing of it is kept.
      const identity = state.identity && { ...state.identity };
      if (err instanceof DecodeError)
        return { ok: false, reason: err.reason, message: err.message, limit: err.isLimit, identity };
      return { ok: false, reason: 'decoder_error', message: (err as Error).message, identity };
    }
    const http = this.decoder.pendingHttpRows > 0 ? this.decoder.takeHttp() : undefined;
    const tcp = this.decoder.pendingTcpRows > 0 ? this.decoder.takeTcp() : undefined;
    const outside = outOfWindow > 0 ? this.decoder.takeOutside() : undefined;
    const none = { rows: 0, data: EMPTY };
    return {
      ok: true,
      // Each block owns its exactly-sized ArrayBuffer, so the worker can transfer it without a copy.
      http: http ?? none,
      tcp: tcp ?? none,
      outOfWindow,
      outside: {
        http: outside && outside.http.rows > 0 ? outside.http : none,
        tcp: outside && outside.tcp.rows > 0 ? outside.tcp : none,
      },
      ...(state.identity !== known && state.identity && { identity: { ...state.identity } }),
    };
  }

  end(stream: number): void {
    this.streams.delete(stream);
  }
}
