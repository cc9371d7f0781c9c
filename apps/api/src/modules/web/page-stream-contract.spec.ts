import type {
  SeatChange as ServerSeatChange,
  SectionAvailability as ServerSectionAvailability,
  StreamMessage,
} from '../stream/seat-stream.repository';
import type { SeatChange, SeatsMessage, SectionAvailability } from './page/stream-messages';

/**
 * The page types the seat stream's messages by hand (the OpenAPI document has the stream as a
 * string). These types must be the server's, both ways, or `npm run typecheck` fails here.
 */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;

const agreements: [
  Same<SeatChange, ServerSeatChange>,
  Same<SectionAvailability, ServerSectionAvailability>,
  // What SeatStreamService's seatsFrame() writes as an `event: seats` message's data.
  Same<SeatsMessage, Pick<StreamMessage, 'seq' | 'changes' | 'sections'>>,
] = [true, true, true];

describe("the page's seat stream types", () => {
  it("are the server's (checked by the compiler; this only records it ran)", () => {
    expect(agreements).toEqual([true, true, true]);
  });
});
