import { ApiProblem, api, call, type CatalogEvent, type EventsQuery } from './api-client';
import { hold, requireCustomer, restoreHolds, withButton } from './booking-flow';
import { $, el, say } from './dom';
import { state } from './page-state';
import { explain } from './problems';
import { drawMap, renderSelection, type HoldPlaces } from './seat-map-view';
import { closeStream, openStream, readEvent } from './seat-stream';

/** The event list and opening one event: its map, its stream, this customer's holds there. */

export const FIRST_EVENTS: EventsQuery = { limit: 100 };

function eventOption(event: CatalogEvent): HTMLOptionElement {
  const when = new Date(event.startsAt).toLocaleString();
  return el('option', { value: event.id }, `${event.name} · ${event.venue}, ${when}`);
}

function ensureOption(event: CatalogEvent): void {
  const select = $('#event-select', HTMLSelectElement);
  if (![...select.options].some((option) => option.value === event.id)) {
    select.append(eventOption(event));
  }
}

/** The `rel="next"` target of a Link header (RFC 8288), as GET /events sends it, as its query. */
function nextEvents(link: string | null): EventsQuery | null {
  const match = /<([^>]+)>\s*;\s*rel="next"/.exec(link ?? '');
  if (!match?.[1]) return null;
  const params = new URL(match[1], location.href).searchParams;
  const query: EventsQuery = {};
  for (const name of ['limit', 'offset'] as const) {
    const value = params.get(name);
    if (value !== null) query[name] = Number(value);
  }
  return query;
}

export async function loadEvents(query: EventsQuery): Promise<void> {
  const select = $('#event-select', HTMLSelectElement);
  select.setAttribute('aria-busy', 'true');
  try {
    const { data, response } = await call(api.GET('/events', { params: { query } }));
    for (const event of data) ensureOption(event);
    state.nextEvents = nextEvents(response.headers.get('link'));
    $('#more-events').hidden = !state.nextEvents;
    if (state.event) select.value = state.event.id;
  } catch (error) {
    say(explain(error), 'error');
  } finally {
    select.setAttribute('aria-busy', 'false');
  }
}

const holdPlaces: HoldPlaces = (section, quantity, button) => {
  if (!requireCustomer()) return;
  void withButton(button, () =>
    hold(
      { section, quantity },
      (booking) => `Holding ${booking.seats.length} places in ${section}.`,
    ),
  );
};

export async function openEvent(eventId: string): Promise<void> {
  const generation = ++state.generation;
  closeStream();
  state.event = null;
  state.seats.clear();
  state.sections.clear();
  state.selected.clear();
  state.holds.clear();
  $('#side').hidden = true;
  $('#message').hidden = true;
  history.replaceState(
    null,
    '',
    eventId ? `?event=${encodeURIComponent(eventId)}` : location.pathname,
  );
  if (!eventId) {
    $('#seat-map').replaceChildren(el('p', { class: 'hint' }, 'Choose an event to see its seats.'));
    return;
  }
  $('#seat-map').replaceChildren(el('p', { class: 'hint' }, 'Loading the seat map…'));
  try {
    const [event, seats] = await readEvent(eventId);
    if (generation !== state.generation) return;
    state.event = event.data;
    ensureOption(event.data);
    $('#event-select', HTMLSelectElement).value = event.data.id;
    drawMap(event.data, seats.data, holdPlaces);
    $('#side').hidden = false;
    renderSelection();
    openStream(event.data.id, generation);
  } catch (error) {
    if (generation !== state.generation) return;
    const missing = error instanceof ApiProblem && (error.status === 404 || error.status === 400);
    $('#seat-map').replaceChildren();
    say(missing ? 'That event does not exist.' : explain(error), 'error');
    return;
  }
  await restoreHolds(generation).catch((error: unknown) => say(explain(error), 'error'));
}
