import { type GatewayProcess, GLOBAL_GATEWAY } from './gateway-process';

export default async function globalTeardown(): Promise<void> {
  const gateway = (globalThis as Record<symbol, unknown>)[GLOBAL_GATEWAY] as
    GatewayProcess | undefined;
  await gateway?.stop();
}
