import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertReachableByPostgresUser } from './local-database';

const asRoot = process.getuid?.() === 0;

describe('assertReachableByPostgresUser', () => {
  it("as root, a folder inside root's home (mode 700) is refused in one sentence that says what to do; a regular user is not checked", () => {
    // A clone inside root's home: itself open to all (755), but /root (700) is not.
    const inHome = mkdtempSync(join(asRoot ? '/root' : tmpdir(), 'seatlock-spec-'));
    chmodSync(inHome, 0o755);
    try {
      const check = () => assertReachableByPostgresUser([join(inHome, '.data')]);
      if (asRoot) {
        expect(check).toThrow(
          /npm start runs as root .* cannot enter \/root \(mode 700\): run it as a regular user or from a folder outside root's home, or set DATABASE_URL/,
        );
      } else {
        expect(check).not.toThrow();
      }
    } finally {
      rmSync(inHome, { recursive: true, force: true });
    }
  });

  it('a folder every user may enter (the temp dir) passes, as does any folder for a regular user', () => {
    const open = mkdtempSync(join(tmpdir(), 'seatlock-spec-'));
    chmodSync(open, 0o755);
    try {
      expect(() => assertReachableByPostgresUser([join(open, '.data')])).not.toThrow();
    } finally {
      rmSync(open, { recursive: true, force: true });
    }
  });
});
