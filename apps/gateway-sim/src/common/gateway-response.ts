import type { FastifyReply } from 'fastify';

/** An answer as the idempotency layer stores and replays it. */
export interface GatewayResponse {
  status: number;
  body: unknown;
  /** True when this is a stored answer sent again for a repeated Idempotency-Key. */
  replayed?: boolean;
}

/** Sets the status (and the replay header) on the reply; answers the body for Nest to send. */
export function respond(reply: FastifyReply, response: GatewayResponse): unknown {
  reply.status(response.status);
  if (response.replayed) reply.header('Idempotent-Replayed', 'true');
  return response.body;
}
