import { type DynamicModule, Global, Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { AppConfigService } from './app-config.service';
import { makeMissingSecrets } from './run-secrets';
import { validateEnvironment } from './validate-environment';

/** Validates, then makes up the secrets this run lacks (main.ts may have done so already). */
function configure(raw: Record<string, unknown>) {
  const config = validateEnvironment(raw);
  makeMissingSecrets(config);
  return config;
}

/**
 * Validated configuration, available everywhere (one of the two allowed globals). The environment is
 * read when the application is created, so tests can start apps with different settings in one process.
 */
@Global()
@Module({})
export class AppConfigModule {
  static forRoot(overrides: Record<string, string> = {}): DynamicModule {
    return {
      module: AppConfigModule,
      imports: [
        ConfigModule.forRoot({
          cache: true,
          validate: (raw) => configure({ ...raw, ...overrides }),
        }),
      ],
      providers: [AppConfigService],
      exports: [AppConfigService],
    };
  }
}
