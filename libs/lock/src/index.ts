export * from './lease';
export * from './lock.errors';
export * from './lock.module';
export * from './lock.options';
export * from './lock.provider';
