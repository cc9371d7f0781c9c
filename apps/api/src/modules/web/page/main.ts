import { whenUnauthorized } from './api-client';
import {
  forgetCustomer,
  hold,
  pay,
  register,
  release,
  requireCustomer,
  tick,
  withButton,
} from './booking-flow';
import { $ } from './dom';
import { FIRST_EVENTS, loadEvents, openEvent } from './event-chooser';
import { state } from './page-state';
import { renderAllSeats, renderCustomer, renderSelection, seatsInWords } from './seat-map-view';
import { openStream, refreshMap } from './seat-stream';

/**
 * The seat-map page (GET /), bundled by esbuild into /assets/seat-map.js. It uses the public API
 * only: GET /events, GET /events/{id} and its /seats for the map, the Server-Sent Events stream
 * GET /events/{id}/seats/stream to keep it current, and POST /customers, POST /bookings,
 * POST /bookings/{id}/payments, DELETE /bookings/{id} to book. The customer's token lives in this
 * tab's sessionStorage: two tabs can be two customers.
 */

/** The button that sent a form: the one pressed, else the form's first. */
function submitter(event: SubmitEvent, form: string): HTMLButtonElement {
  return event.submitter instanceof HTMLButtonElement
    ? event.submitter
    : $(`${form} button`, HTMLButtonElement);
}

function start(): void {
  whenUnauthorized(forgetCustomer);
  renderCustomer();
  $('#register-form').addEventListener('submit', (event) => {
    event.preventDefault();
    void register(submitter(event, '#register-form'));
  });
  const select = $('#event-select', HTMLSelectElement);
  select.addEventListener('change', () => void openEvent(select.value));
  $('#more-events').addEventListener('click', () => {
    if (state.nextEvents) void loadEvents(state.nextEvents);
  });
  const refresh = $('#refresh', HTMLButtonElement);
  refresh.addEventListener('click', () => {
    void withButton(refresh, async () => {
      await refreshMap();
      if (state.event && state.connection === 'unavailable') {
        openStream(state.event.id, state.generation);
      }
    });
  });
  const holdSelected = $('#hold-selected', HTMLButtonElement);
  holdSelected.addEventListener('click', () => {
    if (!requireCustomer()) return;
    void withButton(holdSelected, () =>
      hold({ seatIds: [...state.selected] }, (booking) => `Holding ${seatsInWords(booking)}.`),
    );
  });
  $('#clear-selection').addEventListener('click', () => {
    state.selected.clear();
    renderAllSeats();
    renderSelection();
  });
  $('#best-form').addEventListener('submit', (event) => {
    event.preventDefault();
    if (!requireCustomer()) return;
    const section = $('#best-section', HTMLSelectElement).value;
    void withButton(submitter(event, '#best-form'), () =>
      hold(
        {
          quantity: Number($('#best-quantity', HTMLInputElement).value),
          together: $('#best-together', HTMLInputElement).checked,
          ...(section ? { section } : {}),
        },
        (booking) =>
          `Holding ${seatsInWords(booking)}${booking.nextToEachOther ? ', next to each other' : ''}.`,
      ),
    );
  });
  // The hold cards are redrawn often: one listener for all their Pay and Release buttons.
  $('#holds').addEventListener('click', (event) => {
    const button = event.target instanceof Element ? event.target.closest('button') : null;
    const card = button?.closest<HTMLElement>('.hold');
    const booking = state.holds.get(card?.dataset.bookingId ?? '');
    if (!button || !card || !booking) return;
    if (button.classList.contains('pay')) {
      const method = card.querySelector<HTMLSelectElement>('select.card')?.value ?? '';
      void withButton(button, () => pay(booking, method));
    } else if (button.classList.contains('release')) {
      void withButton(button, () => release(booking));
    }
  });
  setInterval(tick, 1000);
  void loadEvents(FIRST_EVENTS);
  const eventId = new URLSearchParams(location.search).get('event');
  if (eventId) void openEvent(eventId);
}

start();
