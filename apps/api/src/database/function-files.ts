import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { QueryRunner } from 'typeorm';

/** The SQL files ship beside this module: nest-cli.json copies `functions/` into dist. */
export const FUNCTIONS_DIR = join(__dirname, 'functions');

/**
 * `<layer>-<name>.<function|trigger>.sql`. The layer is the dependency order: a file may use only
 * what files of a lower layer define (function-files.spec.ts checks it). The name is the function's
 * or trigger's own, and the key of its checksum row.
 */
const FILE_NAME = /^(\d+)-([a-z][a-z0-9_]*)\.(function|trigger)\.sql$/;

const DEFINES = /\bCREATE\s+OR\s+REPLACE\s+(FUNCTION|TRIGGER)\s+([a-z][a-z0-9_]*)/gi;

export interface FunctionFile {
  name: string;
  kind: 'function' | 'trigger';
  layer: number;
  fileName: string;
  sql: string;
  /** sha256 of the file's text, hex: a different one means the file changed since it was applied. */
  checksum: string;
  /** Every function the file creates (a trigger's file may create its own function too). */
  functions: string[];
}

/** The files of `dir`, in the order they apply: by layer, then by name. */
export function readFunctionFiles(dir = FUNCTIONS_DIR): FunctionFile[] {
  let fileNames: string[];
  try {
    fileNames = readdirSync(dir);
  } catch (error) {
    throw new Error(
      `The SQL function files are missing (${(error as Error).message}): a build copies them ` +
        `beside the code (nest-cli.json assets).`,
      { cause: error },
    );
  }
  const files = fileNames.map((fileName): FunctionFile => {
    const match = FILE_NAME.exec(fileName);
    if (!match) {
      throw new Error(`${join(dir, fileName)}: not named <layer>-<name>.<function|trigger>.sql`);
    }
    const [, layer, name, kind] = match;
    const sql = readFileSync(join(dir, fileName), 'utf8');
    const defined = [...sql.matchAll(DEFINES)].map(([, what, defines]) => ({
      what: what.toLowerCase(),
      name: defines.toLowerCase(),
    }));
    // Applied again whenever it changes: a plain CREATE would fail the second time.
    if (!defined.some((d) => d.what === kind && d.name === name)) {
      throw new Error(`${join(dir, fileName)}: does not CREATE OR REPLACE ${kind} ${name}`);
    }
    return {
      name,
      kind: kind as FunctionFile['kind'],
      layer: Number(layer),
      fileName,
      sql,
      checksum: createHash('sha256').update(sql).digest('hex'),
      functions: defined.filter((d) => d.what === 'function').map((d) => d.name),
    };
  });
  const seen = new Set<string>();
  for (const file of files) {
    if (seen.has(file.name)) throw new Error(`${dir}: two files for ${file.name}`);
    seen.add(file.name);
  }
  return files.sort((a, b) => a.layer - b.layer || (a.name < b.name ? -1 : 1));
}

/**
 * Applies, in one transaction, every file whose checksum differs from the one recorded in
 * `schema_functions` or whose function or trigger is missing (e.g. dropped by a versioned
 * migration), and records the new checksums. Answers the names it applied. The caller holds the
 * migration lock (migrateDatabase).
 */
export async function applyFunctionFiles(
  queryRunner: QueryRunner,
  files: FunctionFile[],
): Promise<string[]> {
  await queryRunner.startTransaction();
  try {
    const recorded = new Map<string, string>(
      (
        (await queryRunner.query(`SELECT name, checksum FROM schema_functions`)) as {
          name: string;
          checksum: string;
        }[]
      ).map((row) => [row.name, row.checksum]),
    );
    const present = new Set<string>(
      (
        (await queryRunner.query(`
          SELECT proname AS name FROM pg_proc WHERE pronamespace = current_schema()::regnamespace
          UNION
          SELECT t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
           WHERE c.relnamespace = current_schema()::regnamespace AND NOT t.tgisinternal`)) as {
          name: string;
        }[]
      ).map((row) => row.name),
    );
    const due = files.filter(
      (file) => recorded.get(file.name) !== file.checksum || !present.has(file.name),
    );
    for (const file of due) {
      try {
        await queryRunner.query(file.sql);
      } catch (error) {
        throw new Error(`${file.fileName}: ${(error as Error).message}`, { cause: error });
      }
      await queryRunner.query(
        `INSERT INTO schema_functions (name, checksum) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET checksum = EXCLUDED.checksum, applied_at = now()`,
        [file.name, file.checksum],
      );
    }
    // CREATE OR REPLACE with other arguments makes a second function beside the old one, and
    // callers may then reach either: refuse it (all of this rolls back).
    const overloaded = (await queryRunner.query(
      `SELECT proname AS name FROM pg_proc
        WHERE pronamespace = current_schema()::regnamespace AND proname = ANY($1)
        GROUP BY proname HAVING count(*) > 1 ORDER BY proname`,
      [files.flatMap((file) => file.functions)],
    )) as { name: string }[];
    if (overloaded.length > 0) {
      throw new Error(
        `${overloaded.map((row) => row.name).join(', ')}: more than one function of that name. ` +
          `A file's arguments changed: drop the old signature in a versioned migration ` +
          `(docs/design.md, "Where the SQL rules live").`,
      );
    }
    await queryRunner.commitTransaction();
    return due.map((file) => file.name);
  } catch (error) {
    await queryRunner.rollbackTransaction();
    throw error;
  }
}
