import { ApiProblem, api, asCustomer, type Booking, call, type HoldRequest } from './api-client';
import { clearCustomer, currentCustomer, saveCustomer } from './customer-session';
import { $, say } from './dom';
import { clock, newKey } from './format';
import { state } from './page-state';
import { explain } from './problems';
import {
  mySeats,
  renderAllSeats,
  renderCountdowns,
  renderCustomer,
  renderHolds,
  renderSelection,
  seatsInWords,
  setStatus,
} from './seat-map-view';
import { refreshMap, streamIsLive } from './seat-stream';

/** Registering, holding, paying and releasing, and the holds' lapse. */

/** Codes whose answer is not final: a retry must send the same Idempotency-Key again. */
const STILL_RUNNING = new Set(['PAYMENT.IN_PROGRESS', 'IDEMPOTENCY.IN_FLIGHT']);

/** Runs `action` with `button` disabled, and says what went wrong in plain words. */
export async function withButton(
  button: HTMLButtonElement,
  action: () => Promise<void>,
): Promise<void> {
  button.disabled = true;
  try {
    await action();
  } catch (error) {
    say(explain(error), 'error');
  } finally {
    button.disabled = false;
    renderSelection();
  }
}

/** The API no longer knows the token: back to the register form, no holds shown. */
export function forgetCustomer(): void {
  clearCustomer();
  state.holds.clear();
  renderCustomer();
  renderHolds();
  renderAllSeats();
}

export function requireCustomer(): boolean {
  if (currentCustomer()) return true;
  say('Register with your name and email first; then you can hold seats.', 'error');
  $('#register-name').focus();
  return false;
}

export async function register(button: HTMLButtonElement): Promise<void> {
  await withButton(button, async () => {
    const { data } = await call(
      api.POST('/customers', {
        body: {
          name: $('#register-name', HTMLInputElement).value,
          email: $('#register-email', HTMLInputElement).value,
        },
      }),
    );
    saveCustomer({ id: data.id, name: data.name, email: data.email, token: data.token });
    renderCustomer();
    say(`Welcome, ${data.name}. Click free seats to choose them.`, 'ok');
    if (state.event) await restoreHolds(state.generation);
  });
}

function lapsed(booking: Booking): boolean {
  return booking.status === 'held' && Date.parse(booking.expiresAt) <= Date.now();
}

/** This customer's held and paid bookings for the event on screen (after a reload, say). */
export async function restoreHolds(generation: number): Promise<void> {
  if (!currentCustomer()) return;
  const { data } = await call(
    api.GET('/bookings', { params: { query: { limit: 100 } }, headers: asCustomer() }),
  );
  if (generation !== state.generation || !state.event) return;
  for (const booking of data) {
    const live = booking.status === 'confirmed' || (booking.status === 'held' && !lapsed(booking));
    if (booking.eventId === state.event.id && live) state.holds.set(booking.id, booking);
  }
  renderHolds();
  renderAllSeats();
}

/** POST /bookings with `request` (seats, best available or GA) for the event on screen. */
export async function hold(
  request: HoldRequest,
  success: (booking: Booking) => string,
): Promise<void> {
  if (!state.event) return;
  const eventId = state.event.id;
  const asked = request.seatIds ?? [];
  for (const label of asked) state.pending.add(label);
  try {
    const { data } = await call(
      api.POST('/bookings', { body: { eventId, ...request }, headers: asCustomer() }),
    );
    if (eventId !== state.event?.id) return;
    track(data);
    const them = data.seats.length > 1 ? 'them' : 'it';
    say(`${success(data)} Pay before ${clock(data.expiresAt)} to keep ${them}.`, 'ok');
  } catch (error) {
    const taken = error instanceof ApiProblem ? error.body.conflictingSeats : undefined;
    if (taken) {
      const mine = mySeats();
      for (const label of taken) {
        state.selected.delete(label);
        setStatus(label, 'held', mine);
      }
    }
    throw error;
  } finally {
    for (const label of asked) state.pending.delete(label);
    if (!streamIsLive()) await refreshMap();
  }
}

/** Takes in a booking as the API answered it: held and paid ones are shown, others dropped. */
function track(booking: Booking): void {
  const kept = booking.status === 'held' || booking.status === 'confirmed';
  if (kept) state.holds.set(booking.id, booking);
  else state.holds.delete(booking.id);
  const mine = mySeats();
  for (const label of booking.seats) {
    state.selected.delete(label);
    if (booking.status === 'held') setStatus(label, 'held', mine);
    else if (booking.status === 'confirmed') setStatus(label, 'booked', mine);
    else setStatus(label, 'free', mine);
  }
  renderHolds();
  renderSelection();
}

export async function pay(booking: Booking, paymentMethod: string): Promise<void> {
  const keys = state.paymentKeys.get(booking.id) ?? new Map<string, string>();
  state.paymentKeys.set(booking.id, keys);
  const key = keys.get(paymentMethod) ?? newKey();
  keys.set(paymentMethod, key);
  try {
    const { data } = await call(
      api.POST('/bookings/{id}/payments', {
        params: { path: { id: booking.id }, header: { 'Idempotency-Key': key } },
        body: { paymentMethod },
        headers: asCustomer(),
      }),
    );
    keys.delete(paymentMethod);
    track(data.booking);
    if (data.booking.status === 'confirmed') {
      say(`Paid: ${seatsInWords(data.booking)}, booked for you.`, 'ok');
    } else {
      say('Your bank is confirming the payment; the seats turn booked when it is done.');
    }
  } catch (error) {
    // A 5xx or no answer may have charged: the retry must reuse the key to finish that payment.
    const answered = error instanceof ApiProblem && error.status > 0 && error.status < 500;
    const code = error instanceof ApiProblem ? error.body.code : undefined;
    if (answered && !(code && STILL_RUNNING.has(code))) keys.delete(paymentMethod);
    if (code === 'PAYMENT.SEAT_LOST' || code === 'BOOKING.NOT_PAYABLE') await reread(booking.id);
    throw error;
  } finally {
    if (!streamIsLive()) await refreshMap();
  }
}

export async function release(booking: Booking): Promise<void> {
  try {
    const { data } = await call(
      api.DELETE('/bookings/{id}', { params: { path: { id: booking.id } }, headers: asCustomer() }),
    );
    track(data);
    say(`Released: ${seatsInWords(data)}.`);
  } finally {
    if (!streamIsLive()) await refreshMap();
  }
}

/** GET /bookings/{id} after a payment was refused for its status, so the panel tells the truth. */
async function reread(bookingId: string): Promise<void> {
  try {
    const { data } = await call(
      api.GET('/bookings/{id}', { params: { path: { id: bookingId } }, headers: asCustomer() }),
    );
    track(data);
  } catch (error) {
    if (error instanceof ApiProblem && error.status === 404) state.holds.delete(bookingId);
    renderHolds();
  }
}

/** Once a second: a hold whose time is up is dropped, and the countdowns move on. */
export function tick(): void {
  const gone = [...state.holds.values()].filter(lapsed);
  for (const booking of gone) {
    state.holds.delete(booking.id);
    const mine = mySeats();
    for (const label of booking.seats) setStatus(label, 'free', mine);
    say(`Your hold lapsed: ${seatsInWords(booking)} went back on sale.`, 'error');
  }
  if (gone.length) {
    renderHolds();
    if (!streamIsLive()) void refreshMap();
  }
  renderCountdowns();
}
