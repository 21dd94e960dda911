import type { LogEvent, LogFields, Logger } from '../logger';

/** One line a {@link recordingLogger} kept: level, event, fields. */
export type RecordedLine = [level: string, event: LogEvent, fields: LogFields];

/**
 * A logger for tests that keeps every line it is given, at every level, in order; `events(name)`
 * picks the lines of one event. Tests read what the code logged from here, not from log text.
 */
export function recordingLogger() {
  const lines: RecordedLine[] = [];
  const at =
    (level: string) =>
    (event: LogEvent, fields: LogFields = {}) =>
      void lines.push([level, event, fields]);
  const logger: Logger = { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug') };
  return { logger, lines, events: (name: LogEvent) => lines.filter(([, event]) => event === name) };
}
