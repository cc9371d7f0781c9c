import {
  type DynamicModule,
  Inject,
  Module,
  type OnApplicationShutdown,
  type ModuleMetadata,
} from '@nestjs/common';
import { LockProvider } from './lock.provider';
import { LOCK_OPTIONS, type LockOptions } from './lock.options';

export interface LockModuleAsyncOptions extends Pick<ModuleMetadata, 'imports'> {
  inject?: (string | symbol | (abstract new (...args: never[]) => unknown))[];
  useFactory: (...args: never[]) => LockOptions | Promise<LockOptions>;
}

/** Provides one LockProvider per application and quits its Redis connection on shutdown. */
@Module({})
export class LockModule implements OnApplicationShutdown {
  constructor(@Inject(LockProvider) private readonly provider: LockProvider) {}

  static forRootAsync(options: LockModuleAsyncOptions): DynamicModule {
    return {
      module: LockModule,
      imports: options.imports ?? [],
      providers: [
        { provide: LOCK_OPTIONS, inject: options.inject ?? [], useFactory: options.useFactory },
        {
          provide: LockProvider,
          inject: [LOCK_OPTIONS],
          useFactory: (lockOptions: LockOptions) => new LockProvider(lockOptions),
        },
      ],
      exports: [LockProvider],
    };
  }

  async onApplicationShutdown(): Promise<void> {
    await this.provider.close();
  }
}
