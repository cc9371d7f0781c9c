import type { Booking, CatalogEvent, Seat, Section, SeatStatus } from './api-client';
import { currentCustomer } from './customer-session';
import { $, el, say } from './dom';
import { capitalized, clock, money } from './format';
import type { SectionAvailability } from './stream-messages';
import { state } from './page-state';

/** Rendering: the map, the seats' and sections' state, the choice, the customer and the holds. */

const SEAT_LABEL = /^([A-Z]+)(\d+)$/;

/** The test cards the gateway simulator knows, as the hold cards offer them. */
export const CARDS: readonly (readonly [paymentMethod: string, label: string])[] = [
  ['pm_card_visa', 'Visa (pays)'],
  ['pm_card_declined', 'Card that is declined'],
  ['pm_card_insufficient_funds', 'Card with no funds'],
];

/** Asks to hold `quantity` places of a general-admission section (its form's button given). */
export type HoldPlaces = (section: string, quantity: number, button: HTMLButtonElement) => void;

export function renderCustomer(): void {
  const customer = currentCustomer();
  $('#register-form').hidden = Boolean(customer);
  $('#signed-in').hidden = !customer;
  $('#customer-name').textContent = customer ? `${customer.name} (${customer.email})` : '';
}

export function drawMap(event: CatalogEvent, seats: Seat[], holdPlaces: HoldPlaces): void {
  const bySection = new Map<string, Seat[]>();
  for (const seat of seats) {
    const list = bySection.get(seat.section) ?? [];
    list.push(seat);
    bySection.set(seat.section, list);
  }
  const starts = new Date(event.startsAt).toLocaleString();
  const blocks: HTMLElement[] = [
    el('h2', { class: 'event-title' }, event.name),
    el('p', { class: 'event-meta' }, `${event.venue} · ${starts}`),
  ];
  const bestSection = $('#best-section', HTMLSelectElement);
  bestSection.replaceChildren(el('option', { value: '' }, 'any section'));
  for (const section of event.sections) {
    const count = el('span', { class: 'available' });
    const block = el(
      'section',
      { class: `section section-${section.kind}`, 'aria-label': section.name },
      el(
        'h3',
        {},
        section.name,
        el('span', { class: 'price' }, money(section.priceCents, event.currency)),
        count,
      ),
    );
    state.sections.set(section.name, { section, count });
    if (section.kind === 'ga') {
      block.append(gaForm(section, holdPlaces));
    } else {
      block.append(drawRows(bySection.get(section.name) ?? []));
      bestSection.append(el('option', { value: section.name }, section.name));
    }
    blocks.push(block);
    renderSection(section.name);
  }
  $('#seat-map').replaceChildren(...blocks);
}

function drawRows(seats: Seat[]): HTMLElement {
  const rows = new Map<string, { seat: Seat; number: string }[]>();
  for (const seat of seats) {
    const [, row, number] = SEAT_LABEL.exec(seat.label) ?? [];
    if (!row || !number) continue;
    const line = rows.get(row) ?? [];
    line.push({ seat, number });
    rows.set(row, line);
  }
  const grid = el('div', { class: 'rows' });
  for (const [row, line] of rows) {
    const group = el(
      'div',
      { class: 'row', role: 'group', 'aria-label': `Row ${row}` },
      el('span', { class: 'row-name', 'aria-hidden': 'true' }, row),
    );
    for (const { seat, number } of line) {
      const button = el(
        'button',
        {
          type: 'button',
          class: 'seat',
          'data-label': seat.label,
          title: `${seat.label} · ${money(seat.priceCents, seat.currency)}`,
        },
        number,
      );
      button.addEventListener('click', () => clickSeat(seat.label));
      state.seats.set(seat.label, {
        status: seat.status,
        priceCents: seat.priceCents,
        currency: seat.currency,
        button,
      });
      renderSeat(seat.label);
      group.append(button);
    }
    grid.append(group);
  }
  return grid;
}

function gaForm(section: Section, holdPlaces: HoldPlaces): HTMLFormElement {
  const quantity = el('input', {
    type: 'number',
    min: 1,
    max: 10,
    value: 2,
    required: true,
    'aria-label': `Places in ${section.name}`,
  });
  const button = el('button', { type: 'submit' }, 'Hold places');
  const form = el('form', { class: 'ga-form' }, quantity, button);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    holdPlaces(section.name, Number(quantity.value), button);
  });
  return form;
}

/** The labels of this customer's held and paid seats on screen. */
export function mySeats(): Set<string> {
  const mine = new Set<string>();
  for (const booking of state.holds.values()) for (const label of booking.seats) mine.add(label);
  return mine;
}

export function renderSeat(label: string, mine = mySeats()): void {
  const seat = state.seats.get(label);
  if (!seat) return;
  const selected = state.selected.has(label);
  const own = mine.has(label) && seat.status !== 'free';
  const words = own ? `${seat.status} by you` : selected ? `${seat.status}, chosen` : seat.status;
  seat.button.dataset.status = seat.status;
  seat.button.dataset.mine = String(own);
  seat.button.dataset.selected = String(selected);
  seat.button.setAttribute('aria-label', `${label}, ${words}`);
  seat.button.setAttribute('aria-pressed', String(selected));
}

export function renderAllSeats(): void {
  const mine = mySeats();
  for (const label of state.seats.keys()) renderSeat(label, mine);
}

function renderSection(name: string): void {
  const entry = state.sections.get(name);
  if (!entry) return;
  const { section, count } = entry;
  count.textContent =
    section.kind === 'ga'
      ? `${section.available} of ${section.capacity} places left`
      : `${section.available} of ${section.capacity} free`;
}

/** A seat's status as the server says it; a chosen seat someone else took is unchosen. */
export function setStatus(label: string, status: SeatStatus, mine: Set<string>): void {
  const seat = state.seats.get(label);
  if (!seat) return;
  seat.status = status;
  if (status !== 'free' && state.selected.has(label) && !state.pending.has(label)) {
    state.selected.delete(label);
    say(`Seat ${label} was just taken by someone else.`, 'error');
    renderSelection();
  }
  renderSeat(label, mine);
}

export function setAvailable(sections: readonly SectionAvailability[] | undefined): void {
  for (const { name, available } of sections ?? []) {
    const entry = state.sections.get(name);
    if (!entry) continue;
    entry.section.available = available;
    renderSection(name);
  }
}

function clickSeat(label: string): void {
  const seat = state.seats.get(label);
  if (!seat) return;
  if (mySeats().has(label) && seat.status !== 'free') {
    say(`Seat ${label} is yours (${seat.status === 'booked' ? 'paid' : 'held'}).`);
    return;
  }
  if (seat.status === 'held') {
    say(`Seat ${label} is taken: someone else is holding it.`, 'error');
    return;
  }
  if (seat.status === 'booked') {
    say(`Seat ${label} is taken: it has been sold.`, 'error');
    return;
  }
  if (!state.selected.delete(label)) state.selected.add(label);
  renderSeat(label);
  renderSelection();
}

export function renderSelection(): void {
  const labels = [...state.selected];
  const total = labels.reduce((sum, label) => sum + (state.seats.get(label)?.priceCents ?? 0), 0);
  $('#selection').textContent =
    labels.length && state.event
      ? `${labels.join(', ')} · ${money(total, state.event.currency)}`
      : 'Click free seats to choose them.';
  $('#hold-selected', HTMLButtonElement).disabled = labels.length === 0;
  $('#clear-selection', HTMLButtonElement).disabled = labels.length === 0;
}

/** A booking's seats in words: labels for seats, a count for general-admission places. */
export function seatsInWords(booking: Booking): string {
  const seats = booking.seats.filter((label) => state.seats.has(label));
  const places = booking.seats.length - seats.length;
  const parts: string[] = [];
  if (seats.length) parts.push(`${seats.length > 1 ? 'seats' : 'seat'} ${seats.join(', ')}`);
  if (places) parts.push(`${places} general-admission ${places > 1 ? 'places' : 'place'}`);
  return parts.join(' and ');
}

/** The holds panel; its Pay and Release buttons are handled on `#holds` (booking-flow). */
export function renderHolds(): void {
  const list = $('#holds');
  if (state.holds.size === 0) {
    list.replaceChildren(el('p', { class: 'hint' }, 'Nothing held yet.'));
    return;
  }
  list.replaceChildren(...[...state.holds.values()].map(holdCard));
  renderCountdowns();
}

function holdCard(booking: Booking): HTMLElement {
  const card = el(
    'article',
    { class: 'hold', 'data-booking-id': booking.id, 'data-status': booking.status },
    el(
      'p',
      {},
      `${capitalized(seatsInWords(booking))} · ${money(booking.amountCents, booking.currency)}`,
    ),
  );
  if (booking.status === 'confirmed') {
    card.append(el('p', {}, 'Paid: booked for you.'));
    return card;
  }
  if (booking.nextToEachOther !== undefined) {
    const together = booking.nextToEachOther ? 'next to each other' : 'not all together';
    card.append(el('p', {}, `The best seats available, ${together}.`));
  }
  const cardChoice = el('select', { 'aria-label': 'Card', class: 'card' });
  for (const [value, label] of CARDS) cardChoice.append(el('option', { value }, label));
  card.append(
    el('p', { class: 'expires', 'data-expires-at': booking.expiresAt }),
    el(
      'div',
      { class: 'actions' },
      cardChoice,
      el('button', { type: 'button', class: 'pay' }, 'Pay'),
      el('button', { type: 'button', class: 'release' }, 'Release'),
    ),
  );
  return card;
}

/** Each held booking's "Held until … (m:ss left)". */
export function renderCountdowns(): void {
  for (const line of document.querySelectorAll<HTMLElement>('.hold .expires')) {
    const expiresAt = line.dataset.expiresAt ?? '';
    const left = Math.max(0, Date.parse(expiresAt) - Date.now());
    const minutes = Math.floor(left / 60_000);
    const seconds = String(Math.floor((left % 60_000) / 1000)).padStart(2, '0');
    line.textContent = `Held until ${clock(expiresAt)} (${minutes}:${seconds} left).`;
  }
}
