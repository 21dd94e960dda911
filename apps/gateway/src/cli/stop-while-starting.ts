/**
 * Until a process can stop gracefully, SIGTERM and SIGINT end it at once: exit 143 or 130
 * (128 + the signal's number), with one line on stderr. Nothing is served yet, so there is
 * nothing to drain. Without a handler, Node as PID 1 in a container (the image's command)
 * ignores the signal, and a task stopped while it waits for Redis at start (up to
 * REDIS_START_TIMEOUT_MS) or loads its ports would wait for the orchestrator's SIGKILL
 * (ECS `stopTimeout`, `docker stop`'s 10 s).
 *
 * Returns the function that takes the handlers away again, for the graceful stop's.
 */
export function exitOnStopWhileStarting(
  name: string,
  io: { write: (line: string) => void; exit: (code: number) => void } = {
    write: (line) => process.stderr.write(line),
    exit: (code) => process.exit(code),
  },
): () => void {
  const handlers = (
    [
      ['SIGTERM', 143],
      ['SIGINT', 130],
    ] as const
  ).map(([signal, code]) => {
    const handler = () => {
      io.write(`${name}: ${signal} while starting: stopped before serving\n`);
      io.exit(code);
    };
    process.on(signal, handler);
    return [signal, handler] as const;
  });
  return () => {
    for (const [signal, handler] of handlers) process.off(signal, handler);
  };
}
