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

/** A logger writing records at or above `level` to `sink`. */
export function createLogger(level: LogLevel, sink: LogSink = consoleSink): Logger {
  const enabled = (l: LogLevel) => RANK[l] <= RANK[level];
  return {
    enabled,
    log(l, msg, fields = {}) {
      if (enabled(l)) sink({ level: l, time: new Date().toISOString(), msg, ...fields });
    },
  };
}
