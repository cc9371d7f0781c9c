import type { Client } from 'pg';
import type { FunctionFile } from '../../apps/api/src/database/function-files';
import { testDatabaseUrl } from './test-env';

/** A database of the test's own beside the suite's (its name still contains "test"). */
export function ownDatabaseUrl(suffix: string): string {
  const url = new URL(testDatabaseUrl());
  url.pathname = `${url.pathname}_${suffix}`;
  return url.toString();
}

/** Each function's body (the text between its $$) as the files write it. */
export function fileBodies(files: FunctionFile[]): Record<string, string> {
  const bodies: Record<string, string> = {};
  for (const file of files) {
    for (const [, name, body] of file.sql.matchAll(
      /CREATE OR REPLACE FUNCTION (\w+)\([\s\S]*?\bAS \$\$([\s\S]*?)\$\$/g,
    )) {
      bodies[name] = body;
    }
  }
  return bodies;
}

/** Each function's body as PostgreSQL runs it (pg_proc.prosrc: the text between its $$). */
export async function liveBodies(client: Client): Promise<Record<string, string>> {
  const { rows } = await client.query<{ name: string; body: string }>(
    `SELECT proname AS name, prosrc AS body FROM pg_proc
      WHERE pronamespace = 'public'::regnamespace ORDER BY proname`,
  );
  return Object.fromEntries(rows.map((row) => [row.name, row.body]));
}

/**
 * Every function's full definition (arguments, result, language, volatility, body) with runs of
 * white space made one space, and every trigger's definition, by name.
 */
export async function liveDefinitions(client: Client): Promise<Record<string, string>> {
  const { rows } = await client.query<{ name: string; definition: string }>(
    `SELECT proname AS name,
            regexp_replace(pg_get_functiondef(oid), '\\s+', ' ', 'g') AS definition
       FROM pg_proc WHERE pronamespace = 'public'::regnamespace
     UNION ALL
     SELECT t.tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t
       JOIN pg_class c ON c.oid = t.tgrelid
      WHERE c.relnamespace = 'public'::regnamespace AND NOT t.tgisinternal
     ORDER BY 1`,
  );
  return Object.fromEntries(rows.map((row) => [row.name, row.definition]));
}

/** schema_functions: name → checksum and when it was applied. */
export async function recordedFiles(
  client: Client,
): Promise<Record<string, { checksum: string; appliedAt: string }>> {
  const { rows } = await client.query<{ name: string; checksum: string; applied_at: string }>(
    `SELECT name, checksum, applied_at::text FROM schema_functions ORDER BY name`,
  );
  return Object.fromEntries(
    rows.map((row) => [row.name, { checksum: row.checksum, appliedAt: row.applied_at }]),
  );
}
