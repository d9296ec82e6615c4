/**
 * JSON-lines logging: one object per line with `level`, `time` and `msg`, info and debug to
 * stdout, warnings and errors to stderr.
 *
 * @module
 */
import type { Config } from "../config.ts";

/** A log level, from most to least severe. */
export type LogLevel = Config["logLevel"];

/** Where one log record goes. */
export type LogSink = (record: Record<string, unknown>) => void;

/** A leveled logger. */
export interface Logger {
  /** Log at a level (dropped below the configured level). */
  log(level: LogLevel, msg: string, fields?: Record<string, unknown>): void;
  /** Whether a level is written. */
  enabled(level: LogLevel): boolean;
}

const RANK: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };

/** The default sink: JSON lines, info/debug to stdout, warn/error to stderr. */
export const consoleSink: LogSink = (record) => {
  const line = JSON.stringify(record);
  if (record.level === "error" || record.level === "warn") console.error(line);
  else console.log(line);
};

/** Bytes of info and debug lines held before a write, at most. */
const BATCH_BYTES = 64 * 1024;

/**
 * {@link consoleSink} for a busy logger (the access log): info and debug lines are gathered and
 * written to stdout in one write when the current batch of work is done (a zero-delay timer) or
 * 64 KiB have piled up, instead of one synchronous write per line; warnings and errors go to
 * stderr at once. Lines still held are written when the process exits.
 */
export function batchedConsoleSink(): LogSink {
  const encoder = new TextEncoder();
  let lines: string[] = [];
  let bytes = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const flush = () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    if (lines.length === 0) return;
    const data = encoder.encode(lines.join(""));
    lines = [];
    bytes = 0;
    try {
      for (let at = 0; at < data.byteLength;) at += Deno.stdout.writeSync(data.subarray(at));
    } catch {
      // stdout closed: the lines are lost, as console.log would lose them.
    }
  };
  globalThis.addEventListener("unload", flush);
  return (record) => {
    const line = JSON.stringify(record);
    if (record.level === "error" || record.level === "warn") {
      flush();
      console.error(line);
      return;
    }
    lines.push(line, "\n");
    bytes += line.length + 1;
    if (bytes >= BATCH_BYTES) flush();
    else timer ??= setTimeout(flush, 0);
  };
}

/** A logger writing records at or above `level` to `sink` (default: {@link batchedConsoleSink}). */
export function createLogger(level: LogLevel, sink: LogSink = batchedConsoleSink()): Logger {
  const enabled = (l: LogLevel) => RANK[l] <= RANK[level];
  return {
    enabled,
    log(l, msg, fields = {}) {
      if (enabled(l)) sink({ level: l, time: new Date().toISOString(), msg, ...fields });
    },
  };
}
