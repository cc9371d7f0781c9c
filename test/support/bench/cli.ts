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

/** Logs on stderr: stdout is the report. */
export function logger(name: string): (message: string) => void {
  return (message) => process.stderr.write(`[${name}] ${message}\n`);
}

/** Strict parseArgs; --help prints `usage`. Numbers stay strings: read them with numberOption. */
export function parseBenchArgs<O extends NonNullable<ParseArgsConfig['options']>>(
  options: O,
  usage: string,
  argv?: string[],
) {
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
  const unknown = items.find((item) => !allowed.includes(item as T));
  if (unknown !== undefined) {
    throw new BenchError(`--${name}: unknown ${unknown} (one of ${allowed.join(', ')})`);
  }
  return items as T[];
}
