/**
 * A port the configuration names is taken by another process. Node's own error says
 * `listen EADDRINUSE: address already in use 0.0.0.0:8081`, which does not tell an
 * operator which of PORT, HEALTH_PORT or WORKER_HTTP_PORT to change; this one does.
 */
export class PortInUseError extends Error {
  override readonly name = 'PortInUseError';
  readonly code = 'port_in_use';

  constructor(
    /** The environment variable that chose the port, e.g. `HEALTH_PORT`. */
    readonly variable: string,
    /** The port that was taken. */
    readonly port: number,
    options?: { cause?: unknown },
  ) {
    super(
      `${variable} ${port} is already in use (another process listens on it): stop that process or set ${variable} to a free port`,
      options,
    );
  }
}

/** True for Node's "address already in use", also when a worker thread passed on only its code. */
export function isAddressInUse(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === 'EADDRINUSE';
}

/**
 * Turns EADDRINUSE from binding `port` into a {@link PortInUseError} naming `variable`;
 * passes any other error through unchanged.
 */
export function explainListenError(error: unknown, variable: string, port: number): unknown {
  return isAddressInUse(error) ? new PortInUseError(variable, port, { cause: error }) : error;
}

/**
 * For the CLI: a {@link PortInUseError} ends the process with exit 78 (EX_CONFIG, like a
 * bad variable) and one line on stderr naming the variable and the port; any other
 * error is rethrown.
 */
export function exitIfPortInUse(command: string): (error: unknown) => never {
  return (error) => {
    if (!(error instanceof PortInUseError)) throw error;
    process.stderr.write(`${command}: ${error.message}\n`);
    process.exit(78);
  };
}
