import { api, call } from './api-client';
import { $, say } from './dom';
import { type Connection, state } from './page-state';
import { explain } from './problems';
import { mySeats, setAvailable, setStatus } from './seat-map-view';
import { type SeatStreamMessages, seatStreamUrl } from './stream-messages';

/** Live updates: the seat stream (EventSource), and the two GETs when it is not live. */

const LIVE_WORDS: Record<Connection, string> = {
  off: '',
  connecting: 'Connecting to live updates…',
  live: 'Live',
  reconnecting: 'Live updates interrupted; reconnecting…',
  unavailable: 'Live updates unavailable: press Refresh to see the latest seats.',
};

/** `paused`: the reason of an `event: stale`, kept until the next snapshot (null: not paused). */
function setLive(connection: Connection, paused = state.paused): void {
  state.connection = connection;
  state.paused = paused;
  const stale = connection === 'live' && paused !== null;
  const status = $('#live-status');
  status.dataset.state = stale ? 'stale' : connection;
  status.textContent = stale
    ? `Live updates paused${paused ? ` (${paused})` : ''}: the map may be behind until they resume.`
    : LIVE_WORDS[connection];
  $('#refresh').hidden = connection !== 'unavailable';
}

/** Whether the stream keeps the map current; if not, the page reads it again after each action. */
export function streamIsLive(): boolean {
  return state.connection === 'live' && state.paused === null;
}

export function closeStream(): void {
  state.stream?.close();
  state.stream = null;
  state.lastSeq = null;
  $('#live-status').removeAttribute('data-seq');
  setLive('off', null);
}

/**
 * The seat stream: a snapshot, then each committed change in order. EventSource reconnects by
 * itself and sends Last-Event-ID, so the server resumes after the last seq or sends a new snapshot.
 */
export function openStream(eventId: string, generation: number): void {
  state.stream?.close();
  const source = new EventSource(seatStreamUrl(eventId));
  state.stream = source;
  setLive('connecting');
  const current = (): boolean => generation === state.generation && source === state.stream;
  /** Listens to one named message, its `data` parsed as that message's type. */
  function on<K extends keyof SeatStreamMessages>(
    name: K,
    handle: (message: SeatStreamMessages[K]) => void,
  ): void {
    source.addEventListener(name, (message: MessageEvent<string>) => {
      if (!current()) return;
      handle(JSON.parse(message.data) as SeatStreamMessages[K]);
      // Where the map stands in the stream: what a reader (or a test) can wait for.
      if (state.lastSeq !== null) $('#live-status').dataset.seq = String(state.lastSeq);
    });
  }
  source.addEventListener('open', () => {
    if (current()) setLive('live');
  });
  on('snapshot', (snapshot) => {
    const mine = mySeats();
    for (const { label, status } of snapshot.seats) setStatus(label, status, mine);
    setAvailable(snapshot.sections);
    state.lastSeq = snapshot.seq;
    setLive('live', null);
  });
  on('seats', (update) => {
    // A message at or before what is applied already (a resumed stream repeating one) is skipped.
    if (state.lastSeq !== null && update.seq <= state.lastSeq) return;
    const mine = mySeats();
    for (const { label, status } of update.changes) setStatus(label, status, mine);
    setAvailable(update.sections);
    state.lastSeq = update.seq;
  });
  on('stale', (notice) => setLive(state.connection, notice.reason ?? ''));
  source.addEventListener('error', () => {
    if (!current()) return;
    setLive(source.readyState === EventSource.CLOSED ? 'unavailable' : 'reconnecting');
  });
}

/** The event and its seats, read together (opening an event, or refreshing without a stream). */
export function readEvent(eventId: string) {
  const path = { params: { path: { eventId } } };
  return Promise.all([
    call(api.GET('/events/{eventId}', path)),
    call(api.GET('/events/{eventId}/seats', path)),
  ]);
}

/** The two GETs again, when no live stream keeps the map current. */
export async function refreshMap(): Promise<void> {
  const event = state.event;
  if (!event) return;
  const generation = state.generation;
  try {
    const [fresh, seats] = await readEvent(event.id);
    if (generation !== state.generation) return;
    const mine = mySeats();
    for (const seat of seats.data) setStatus(seat.label, seat.status, mine);
    setAvailable(fresh.data.sections);
  } catch (error) {
    say(explain(error), 'error');
  }
}
