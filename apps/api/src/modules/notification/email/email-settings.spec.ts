import { validateEnvironment } from '../../../config/validate-environment';

const DATABASE_URL = 'postgres://postgres:postgres@127.0.0.1:5432/seatlock';

describe('SMTP settings', () => {
  it('email is off by default, with a From that works as it is', () => {
    const config = validateEnvironment({ DATABASE_URL });

    expect(config.SMTP_URL).toBeUndefined();
    expect(config.SMTP_FROM).toBe('Seatlock <no-reply@seatlock.local>');
    // An empty value (as .env.example leaves it) also means off.
    expect(validateEnvironment({ DATABASE_URL, SMTP_URL: '' }).SMTP_URL).toBeUndefined();
  });

  it('accepts smtp:// and smtps:// URLs, with credentials and without a TLD', () => {
    for (const SMTP_URL of [
      'smtp://mailpit:1025',
      'smtp://127.0.0.1:2525',
      'smtps://user:secret@smtp.example.com:465',
      'smtp://apikey:s3cr3t@smtp.example.com:587',
    ]) {
      expect(validateEnvironment({ DATABASE_URL, SMTP_URL }).SMTP_URL).toBe(SMTP_URL);
    }
  });

  it('names a URL that is not SMTP, and a From that is not an address', () => {
    for (const SMTP_URL of ['http://mailpit:8025', 'mailpit:1025', 'smtp://']) {
      expect(() => validateEnvironment({ DATABASE_URL, SMTP_URL })).toThrow(
        /SMTP_URL=.*must be an smtp:\/\/ or smtps:\/\/ URL/,
      );
    }
    for (const SMTP_FROM of ['Seatlock', 'Seatlock <no-reply>', 'a@b\r\nBcc: x@y']) {
      expect(() => validateEnvironment({ DATABASE_URL, SMTP_FROM })).toThrow(
        /SMTP_FROM=.*must be an address/,
      );
    }
    expect(validateEnvironment({ DATABASE_URL, SMTP_FROM: 'tickets@example.com' }).SMTP_FROM).toBe(
      'tickets@example.com',
    );
  });
});
