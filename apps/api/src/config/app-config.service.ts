import { Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { EnvironmentVariables } from './environment-variables';
import { wasMadeUp } from './run-secrets';

/** Typed access to the validated environment. */
@Injectable()
export class AppConfigService implements OnModuleInit {
  constructor(private readonly config: ConfigService<EnvironmentVariables, true>) {}

  /** Says once, through the app's logger, which secrets were made up for this run. */
  onModuleInit(): void {
    const logger = new Logger('Config');
    const admin = this.get('ADMIN_TOKEN');
    if (wasMadeUp(admin))
      logger.warn(`ADMIN_TOKEN is not set; generated one for this run: ${admin}`);
    const webhook = this.get('GATEWAY_WEBHOOK_SECRET');
    // Only a gateway named by GATEWAY_URL needs telling: the simulator npm start runs is handed it.
    if (wasMadeUp(webhook)) {
      logger.warn(
        `GATEWAY_WEBHOOK_SECRET is not set; generated one for this run: ${webhook} (the gateway at GATEWAY_URL must sign its webhooks with it)`,
      );
    }
  }

  get<K extends keyof EnvironmentVariables>(key: K): EnvironmentVariables[K] {
    return this.config.get(key, { infer: true });
  }

  /** A secret: set by the environment or made up for the run at start, so always there. */
  secret(key: 'ADMIN_TOKEN' | 'GATEWAY_WEBHOOK_SECRET'): string {
    const value = this.get(key);
    if (!value) throw new Error(`${key} was neither set nor made up at start`);
    return value;
  }
}
