import { parseArgs, type ParseArgsConfig } from 'node:util';

/** A failure the benchmark explains itself (bad argument, timeout, wrong result): no stack needed. */
export class BenchError extends Error {}

export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new BenchError(`${what} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A logger that prefixes every line with the benchmark's name, on stderr (stdout is the report). */
export function logger(name: string): (message: string) => void {
  return (message) => process.stderr.write(`[${name}] ${message}\n`);
}

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * `node:util` parseArgs, strict, with `--help` printing `usage` and a bad argument a BenchError
 * that shows it. Numbers stay strings here: read them with `numberOption`.
 */
export function parseBenchArgs<O extends Options>(options: O, usage: string, argv?: string[]) {
  const args = argv ?? process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    throw new BenchError(`${(error as Error).message}\n\n${usage}`);
  }
}

/** A numeric option from 'min' to 'max', or `fallback` when it was not given. */
export function numberOption(
  name: string,
  raw: string | boolean | undefined | (string | boolean)[],
  fallback: number,
  min: number,
  max: number,
): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (typeof raw !== 'string' || raw.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
    throw new BenchError(`--${name} needs a number from ${min} to ${max}, got ${String(raw)}`);
  }
  return n;
}

/** A comma-separated option whose items must each be one of `allowed`. */
export function listOption<T extends string>(
  name: string,
  raw: string | undefined,
  allowed: readonly T[],
): T[] {
  const items = (raw ?? '').split(',').filter(Boolean);
  for (const item of items) {
    if (!allowed.includes(item as T)) {
      throw new BenchError(`--${name}: unknown ${item} (one of ${allowed.join(', ')})`);
    }
  }
  return items as T[];
}

interface Stoppable {
  stopAll(): Promise<void>;
  killAll(): void;
}

/**
 * Runs a benchmark's `main` (which answers the exit code) so that no child outlives it: on a
 * failure, on SIGINT or SIGTERM, after `totalMs`, and at exit, every child is stopped. On a signal
 * `cleanUp` runs too. With --json, a failure still ends stdout with one JSON object.
 */
export function runBenchmarkMain(options: {
  benchmark: string;
  main: () => Promise<number>;
  children: Stoppable;
  totalMs: number;
  cleanUp?: () => Promise<unknown>;
}): void {
  const { benchmark, main, children, totalMs } = options;
  const cleanUp = options.cleanUp ?? (async () => undefined);
  const log = logger(benchmark);
  const watchdog = setTimeout(() => {
    log(`gave up after ${totalMs / 1000} s`);
    void children.stopAll().finally(() => process.exit(1));
  }, totalMs);
  watchdog.unref();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      log(`${signal}: stopping the children and cleaning up`);
      void children
        .stopAll()
        .then(() => withTimeout(cleanUp(), 10_000, 'cleaning up'))
        .catch(() => undefined)
        .finally(() => process.exit(130));
    });
  }
  process.on('exit', () => children.killAll());
  main().then(
    (code) => {
      process.exitCode = code;
    },
    async (error: Error) => {
      log(error instanceof BenchError ? error.message : (error.stack ?? String(error)));
      await children.stopAll();
      if (process.argv.includes('--json')) {
        process.stdout.write(`${JSON.stringify({ benchmark, ok: false, error: error.message })}\n`);
      }
      process.exitCode = 1;
    },
  );
}
