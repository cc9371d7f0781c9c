import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MigrationInterface, QueryRunner } from 'typeorm';
import { readFunctionFiles } from './function-files';
import { typeormOptions } from './typeorm-options';

/** The last migration allowed to create functions and triggers; later ones leave them to the files. */
const CUT = 1765000000000;
const MIGRATIONS_DIR = join(__dirname, 'migrations');

/** sha256 of the SQL each migration's up() sends, as main's 1de2a48 had them. */
const UP_SQL_AT_1DE2A48: Record<string, string> = {
  InitialSchema1763800000000: '4c6cd7c98d044a5ea0c3ec8ad81e0660995b6c165806546a117668308a1670b0',
  Payments1763900000000: 'addd26182d7e4a70e246471e65d99cd85f42b98cc2de6d080e5a96360a91e24a',
  Notifications1764000000000: '4c8b9202a1b42fee6eb20463a3729c0d1d5c012f0ea9a87bc61da751ef1ef790',
  NotificationDeliveries1764100000000:
    '97b4e67065bedc1c4c92c2a95cf668d5c57698e9257255234376ce672c921957',
  OneStatementHold1764200000000: '0255237183a4732fecb15fc5777d6e1b2167fd12b8825650b2f5493ca31242c5',
  OneStatementPayments1764300000000:
    '16961a771c49de1ddea4a3d26f13a9ebb9820d4136c07abc64413bb37d33f1d7',
  OnSaleSeating1764400000000: '9cd0086c72970375a104eb322a7b0e32ba5f13a316e0dfa9d15865a9df4995a7',
  GeneralAdmission1764500000000: '0f24dabe6b07a112e2dd48d3631ecd9f6926eb4c63b777429f073e62f3ccf02c',
  FairUnitClaims1764600000000: 'c31b73479aa7710dbde7f6442c5b23be273e1ee3c6a0059983a34ed145db1682',
  ExtendAfterLock1764700000000: '2e6b3fd536b02617a5d9597292be14cb14527dcdf4a268a0735cc9e9778b871f',
  SeatStream1764800000000: 'a985d4d4ba92d23424354c29506bdb21a2584e4f58fd878bebb981afa003636f',
  EventKeys1764900000000: 'f2b386efed4e9399c3fd7abe97117aa755a6472ece6271690b7f6fda034dbe8f',
  ConfirmNeedsPending1765000000000:
    '0ee9c97d0ee3e49d4268c572ea3c63aab5ca43f8ff5dbae82e1a308307ff04dd',
};

function withoutComments(sql: string): string {
  return sql.replace(/--.*$/gm, '');
}

function migrationClasses(): (new () => MigrationInterface)[] {
  return typeormOptions({ url: 'postgres://unused' })
    .migrations as (new () => MigrationInterface)[];
}

/** What a migration's up() sends, without a database. */
async function upSql(migration: MigrationInterface): Promise<string> {
  const sent: string[] = [];
  const recorder = {
    query: (sql: string, parameters?: unknown[]) => {
      sent.push(sql + (parameters ? JSON.stringify(parameters) : ''));
      return Promise.resolve([]);
    },
  };
  await migration.up(recorder as unknown as QueryRunner);
  return sent.join('\n;\n');
}

describe('the SQL function and trigger files', () => {
  const files = readFunctionFiles();

  it('are one file per function and per trigger, each defining its own name', () => {
    const functions = files.filter((file) => file.kind === 'function');
    const triggers = files.filter((file) => file.kind === 'trigger');
    expect(triggers.map((file) => file.name).sort()).toEqual([
      'booking_timeline_event_id',
      'payments_event_id',
      'seats_record_changes',
    ]);
    // 22 functions: 21 files of their own, and the seat stream trigger's function in its file.
    const defined = files.flatMap((file) => file.functions);
    expect(new Set(defined).size).toBe(defined.length);
    expect(defined).toHaveLength(22);
    expect(functions).toHaveLength(21);
    for (const file of functions) expect(file.functions).toEqual([file.name]);
    expect(files.find((file) => file.name === 'seats_record_changes')?.functions).toEqual([
      'seatlock_record_seat_changes',
    ]);
  });

  it('use only what a file of a lower layer (or the file itself) defines', () => {
    const layerOf = new Map<string, number>();
    for (const file of files) {
      for (const name of [file.name, ...file.functions]) layerOf.set(name, file.layer);
    }
    const violations: string[] = [];
    for (const file of files) {
      const own = new Set([file.name, ...file.functions]);
      const used = withoutComments(file.sql).match(/\bseatlock_[a-z0-9_]+/g) ?? [];
      for (const name of new Set(used)) {
        if (own.has(name)) continue;
        const layer = layerOf.get(name);
        if (layer === undefined)
          violations.push(`${file.fileName} uses ${name}, which no file defines`);
        else if (layer >= file.layer) {
          violations.push(
            `${file.fileName} uses ${name} (layer ${layer}, not below ${file.layer})`,
          );
        }
      }
    }
    expect(violations).toEqual([]);
  });

  it('are refused when a file is misnamed or does not CREATE OR REPLACE its object', () => {
    const dir = mkdtempSync(join(tmpdir(), 'seatlock-functions-'));
    try {
      writeFileSync(join(dir, 'seatlock_x.sql'), 'SELECT 1');
      expect(() => readFunctionFiles(dir)).toThrow(
        /seatlock_x\.sql: not named <layer>-<name>\.<function\|trigger>\.sql/,
      );
      rmSync(join(dir, 'seatlock_x.sql'));
      writeFileSync(
        join(dir, '10-seatlock_x.function.sql'),
        'CREATE FUNCTION seatlock_x() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;',
      );
      expect(() => readFunctionFiles(dir)).toThrow(
        /10-seatlock_x\.function\.sql: does not CREATE OR REPLACE function seatlock_x/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(() => readFunctionFiles(join(tmpdir(), 'seatlock-no-such-dir'))).toThrow(
      /The SQL function files are missing .*nest-cli\.json assets/,
    );
  });
});

describe('the versioned migrations', () => {
  const timestampOf = (file: string) => Number(/^(\d+)-/.exec(file)?.[1]);

  it('are every file of the migrations folder, in order', () => {
    const names = migrationClasses().map((Migration) => new Migration().name);
    const files = readdirSync(MIGRATIONS_DIR).sort();
    expect(names.map((name) => Number(/(\d+)$/.exec(name ?? '')?.[1]))).toEqual(
      files.map(timestampOf),
    );
  });

  it('written after the cut create no function and no trigger', () => {
    const after = readdirSync(MIGRATIONS_DIR).filter((file) => timestampOf(file) > CUT);
    expect(after).toContain('1765100000000-schema-functions.ts');
    const creating = after.filter((file) =>
      /CREATE\s+(OR\s+REPLACE\s+)?(FUNCTION|TRIGGER)\b/i.test(
        readFileSync(join(MIGRATIONS_DIR, file), 'utf8'),
      ),
    );
    expect(creating).toEqual([]);
  });

  it('up to the cut send exactly the SQL they sent at main 1de2a48 (history is not rewritten)', async () => {
    const upTo = migrationClasses()
      .map((Migration) => new Migration())
      .filter((migration) => Number(/(\d+)$/.exec(migration.name ?? '')?.[1]) <= CUT);
    const hashes: Record<string, string> = {};
    for (const migration of upTo) {
      hashes[migration.name ?? ''] = createHash('sha256')
        .update(await upSql(migration))
        .digest('hex');
    }
    expect(hashes).toEqual(UP_SQL_AT_1DE2A48);
  });
});
