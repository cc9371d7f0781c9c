'use strict';
/* global document, EventSource, history, location */

/**
 * The seat-map page. It uses the public API only: GET /events, GET /events/{id} and its /seats for
 * the map, the Server-Sent Events stream GET /events/{id}/seats/stream to keep it current, and
 * POST /customers, POST /bookings, POST /bookings/{id}/payments, DELETE /bookings/{id} to book.
 * The customer's token lives in this tab's sessionStorage: two tabs can be two customers.
 */
(() => {
  const CUSTOMER_KEY = 'seatlock.customer';
  const FIRST_EVENTS_PAGE = '/events?limit=100';
  const SEAT_LABEL = /^([A-Z]+)(\d+)$/;
  const CARDS = [
    ['pm_card_visa', 'Visa (pays)'],
    ['pm_card_declined', 'Card that is declined'],
    ['pm_card_insufficient_funds', 'Card with no funds'],
  ];
  /** Codes whose answer is not final: a retry must send the same Idempotency-Key again. */
  const STILL_RUNNING = new Set(['PAYMENT.IN_PROGRESS', 'IDEMPOTENCY.IN_FLIGHT']);
  const FIELD_NAMES = {
    name: 'your name',
    email: 'your email address',
    quantity: 'the number of seats',
    section: 'the section',
    seatIds: 'the seats',
  };

  const $ = (selector) => document.querySelector(selector);

  const state = {
    customer: readCustomer(),
    /** GET /events/{id} of the event on screen. */
    event: null,
    /** Bumped whenever another event is opened, so late answers for the previous one are dropped. */
    generation: 0,
    /** label → {status, priceCents, currency, button} for the seated seats on screen. */
    seats: new Map(),
    /** name → {section, count} where count is the element showing how many are free. */
    sections: new Map(),
    selected: new Set(),
    /** Chosen seats whose hold is being asked for: the stream may report them held first. */
    pending: new Set(),
    /** bookingId → booking, this customer's held and confirmed bookings for the event on screen. */
    holds: new Map(),
    /** bookingId → {paymentMethod → Idempotency-Key} of payments that may need a retry. */
    paymentKeys: new Map(),
    stream: null,
    connection: 'off',
    paused: null,
    lastSeq: null,
    nextEventsPage: null,
  };

  // ---- the API -------------------------------------------------------------------------------

  class Problem extends Error {
    constructor(status, body) {
      super(body && body.detail ? body.detail : `HTTP ${status}`);
      this.status = status;
      this.body = body || {};
    }
  }

  async function api(method, path, { body, auth = false, headers = {} } = {}) {
    const init = { method, headers: { accept: 'application/json', ...headers } };
    if (auth && state.customer) init.headers.authorization = `Bearer ${state.customer.token}`;
    if (body !== undefined) {
      init.headers['content-type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch {
      throw new Problem(0, null);
    }
    const text = await response.text();
    const type = response.headers.get('content-type') || '';
    const data = text && type.includes('json') ? JSON.parse(text) : null;
    if (!response.ok) {
      if (response.status === 401 && auth) forgetCustomer();
      throw new Problem(response.status, data);
    }
    return { data, headers: response.headers };
  }

  /** Plain words for a refused request, from its problem+json `code`. */
  function explain(error) {
    const problem = error instanceof Problem ? error.body : {};
    switch (problem.code) {
      case 'BOOKING.SEAT_UNAVAILABLE': {
        const seats = problem.conflictingSeats || [];
        if (seats.length > 1)
          return `Those seats were just taken by someone else: ${seats.join(', ')}.`;
        return `That seat was just taken by someone else${seats.length ? `: ${seats[0]}` : ''}.`;
      }
      case 'BOOKING.SOLD_OUT':
        return problem.available > 0
          ? `Sold out: only ${problem.available} left.`
          : 'Sold out: nothing is left here.';
      case 'BOOKING.NOT_ENOUGH_TOGETHER':
        return `There are no ${problem.quantity} free seats next to each other. Ask for fewer, or untick "together".`;
      case 'BOOKING.CUSTOMER_LIMIT':
        return `You have reached the limit of ${problem.limit} seats for this event.`;
      case 'BOOKING.ORPHAN_SEAT':
        return `That would leave a single seat (${(problem.orphanSeats || []).join(', ')}) that nobody could sit in. Take it too, or choose seats next to it.`;
      case 'BOOKING.TOO_MANY_SEATS':
        return 'That is too many seats for one hold; choose fewer.';
      case 'BOOKING.UNKNOWN_SEATS':
        return 'That seat does not exist at this event.';
      case 'BOOKING.UNKNOWN_SECTION':
        return 'That section does not exist at this event.';
      case 'BOOKING.NOT_PAYABLE':
        if (problem.currentStatus === 'confirmed') return 'This hold is already paid.';
        if (problem.currentStatus === 'released') return 'This hold was released.';
        if (problem.currentStatus === 'cancelled') return 'This booking was cancelled.';
        return 'Your hold lapsed; the seats are on sale again.';
      case 'BOOKING.NOT_FOUND':
        return 'That hold no longer exists.';
      case 'PAYMENT.DECLINED':
        return problem.declineCode === 'insufficient_funds'
          ? 'Your card was declined: not enough funds. Your seats stay held; try another card.'
          : 'Your card was declined. Your seats stay held; try another card.';
      case 'PAYMENT.SEAT_LOST':
        return 'Your hold lapsed before the payment went through, so the seats went back on sale. Your card is not charged.';
      case 'PAYMENT.REJECTED':
        return `The payment was refused: ${problem.reason}`;
      case 'PAYMENT.GATEWAY_ERROR':
      case 'PAYMENT.GATEWAY_UNAVAILABLE':
      case 'PAYMENT.INTERRUPTED':
        return 'The payment service did not answer. You will not be charged twice: press Pay again to finish.';
      case 'PAYMENT.IN_PROGRESS':
      case 'IDEMPOTENCY.IN_FLIGHT':
        return 'Your payment is still going through; wait a moment.';
      case 'CUSTOMER.EMAIL_TAKEN':
        return 'That email address is already registered; use another one.';
      case 'AUTH.UNAUTHORIZED':
        return 'Please register first: your details here are no longer valid.';
      case 'REQUEST.VALIDATION_FAILED': {
        const fields = (problem.errors || []).map((e) => FIELD_NAMES[e.field] || e.field);
        return `Please check ${[...new Set(fields)].join(' and ') || 'what you entered'}.`;
      }
      case 'REQUEST.RATE_LIMITED':
        return 'Too many requests from here; wait a minute and try again.';
      case 'SERVICE.OVERLOADED':
      case 'BOOKING.OVERLOADED':
      case 'SERVICE.DATABASE_UNAVAILABLE':
        return 'The box office is very busy; try again in a moment.';
      case 'CATALOG.EVENT_NOT_FOUND':
        return 'That event does not exist.';
      default:
        return error instanceof Problem && error.status === 0
          ? 'The box office cannot be reached; check your connection and try again.'
          : `Something went wrong (${problem.title || (error && error.message) || 'unknown error'}).`;
    }
  }

  // ---- small helpers ---------------------------------------------------------------------------

  /** An element with attributes and children; strings become text, never markup. */
  function el(tag, attributes = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) {
      if (value === undefined || value === false || value === null) continue;
      node.setAttribute(name, value === true ? '' : String(value));
    }
    node.append(...children);
    return node;
  }

  function say(text, kind = 'info') {
    const message = $('#message');
    message.textContent = text;
    message.dataset.kind = kind;
    message.hidden = false;
  }

  function money(cents, currency) {
    const format = new Intl.NumberFormat(undefined, { style: 'currency', currency });
    return format.format(cents / 10 ** format.resolvedOptions().maximumFractionDigits);
  }

  function capitalized(text) {
    return text.charAt(0).toUpperCase() + text.slice(1);
  }

  function clock(iso) {
    return new Date(iso).toLocaleTimeString();
  }

  /** A random Idempotency-Key; getRandomValues works on plain http too, randomUUID does not. */
  function newKey() {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  }

  /** Runs `action` with `button` disabled, and says what went wrong in plain words. */
  async function withButton(button, action) {
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

  // ---- the customer --------------------------------------------------------------------------

  function readCustomer() {
    try {
      return JSON.parse(sessionStorage.getItem(CUSTOMER_KEY) || 'null');
    } catch {
      return null;
    }
  }

  function forgetCustomer() {
    sessionStorage.removeItem(CUSTOMER_KEY);
    state.customer = null;
    state.holds.clear();
    renderCustomer();
    renderHolds();
    renderAllSeats();
  }

  function renderCustomer() {
    const customer = state.customer;
    $('#register-form').hidden = Boolean(customer);
    $('#signed-in').hidden = !customer;
    $('#customer-name').textContent = customer ? `${customer.name} (${customer.email})` : '';
  }

  function requireCustomer() {
    if (state.customer) return true;
    say('Register with your name and email first; then you can hold seats.', 'error');
    $('#register-name').focus();
    return false;
  }

  async function register(event) {
    event.preventDefault();
    const button = event.submitter || $('#register-form button');
    await withButton(button, async () => {
      const { data } = await api('POST', '/customers', {
        body: { name: $('#register-name').value, email: $('#register-email').value },
      });
      state.customer = { id: data.id, name: data.name, email: data.email, token: data.token };
      sessionStorage.setItem(CUSTOMER_KEY, JSON.stringify(state.customer));
      renderCustomer();
      say(`Welcome, ${data.name}. Click free seats to choose them.`, 'ok');
      if (state.event) await restoreHolds(state.generation);
    });
  }

  // ---- events --------------------------------------------------------------------------------

  function eventOption(event) {
    const when = new Date(event.startsAt).toLocaleString();
    return el('option', { value: event.id }, `${event.name} · ${event.venue}, ${when}`);
  }

  function ensureOption(event) {
    const select = $('#event-select');
    if (![...select.options].some((option) => option.value === event.id)) {
      select.append(eventOption(event));
    }
  }

  /** The `rel="next"` target of a Link header (RFC 8288), as GET /events sends it. */
  function nextPage(link) {
    const match = /<([^>]+)>\s*;\s*rel="next"/.exec(link || '');
    return match ? match[1] : null;
  }

  async function loadEvents(page) {
    const select = $('#event-select');
    select.setAttribute('aria-busy', 'true');
    try {
      const { data, headers } = await api('GET', page);
      for (const event of data) ensureOption(event);
      state.nextEventsPage = nextPage(headers.get('link'));
      $('#more-events').hidden = !state.nextEventsPage;
      if (state.event) select.value = state.event.id;
    } catch (error) {
      say(explain(error), 'error');
    } finally {
      select.setAttribute('aria-busy', 'false');
    }
  }

  async function openEvent(eventId) {
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
      $('#seat-map').replaceChildren(
        el('p', { class: 'hint' }, 'Choose an event to see its seats.'),
      );
      return;
    }
    $('#seat-map').replaceChildren(el('p', { class: 'hint' }, 'Loading the seat map…'));
    try {
      const path = `/events/${encodeURIComponent(eventId)}`;
      const [event, seats] = await Promise.all([api('GET', path), api('GET', `${path}/seats`)]);
      if (generation !== state.generation) return;
      state.event = event.data;
      ensureOption(event.data);
      $('#event-select').value = event.data.id;
      drawMap(event.data, seats.data);
      $('#side').hidden = false;
      renderSelection();
      openStream(event.data.id, generation);
    } catch (error) {
      if (generation !== state.generation) return;
      const missing = error instanceof Problem && (error.status === 404 || error.status === 400);
      $('#seat-map').replaceChildren();
      say(missing ? 'That event does not exist.' : explain(error), 'error');
      return;
    }
    await restoreHolds(generation).catch((error) => say(explain(error), 'error'));
  }

  /** This customer's held and paid bookings for the event on screen (after a reload, say). */
  async function restoreHolds(generation) {
    if (!state.customer) return;
    const { data } = await api('GET', '/bookings?limit=100', { auth: true });
    if (generation !== state.generation) return;
    for (const booking of data) {
      const live =
        booking.status === 'confirmed' || (booking.status === 'held' && !lapsed(booking));
      if (booking.eventId === state.event.id && live) state.holds.set(booking.id, booking);
    }
    renderHolds();
    renderAllSeats();
  }

  // ---- the map -------------------------------------------------------------------------------

  function drawMap(event, seats) {
    const bySection = new Map();
    for (const seat of seats) {
      if (!bySection.has(seat.section)) bySection.set(seat.section, []);
      bySection.get(seat.section).push(seat);
    }
    const starts = new Date(event.startsAt).toLocaleString();
    const blocks = [
      el('h2', { class: 'event-title' }, event.name),
      el('p', { class: 'event-meta' }, `${event.venue} · ${starts}`),
    ];
    const bestSection = $('#best-section');
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
        block.append(gaForm(section));
      } else {
        block.append(drawRows(bySection.get(section.name) || []));
        bestSection.append(el('option', { value: section.name }, section.name));
      }
      blocks.push(block);
      renderSection(section.name);
    }
    $('#seat-map').replaceChildren(...blocks);
  }

  function drawRows(seats) {
    const rows = new Map();
    for (const seat of seats) {
      const [, row, number] = SEAT_LABEL.exec(seat.label) || [];
      if (!row) continue;
      if (!rows.has(row)) rows.set(row, []);
      rows.get(row).push({ seat, number });
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

  function gaForm(section) {
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
      if (!requireCustomer()) return;
      void withButton(button, () =>
        hold(
          { section: section.name, quantity: Number(quantity.value) },
          (booking) => `Holding ${booking.seats.length} places in ${section.name}.`,
        ),
      );
    });
    return form;
  }

  function mySeats() {
    const mine = new Set();
    for (const booking of state.holds.values()) for (const label of booking.seats) mine.add(label);
    return mine;
  }

  function renderSeat(label, mine = mySeats()) {
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

  function renderAllSeats() {
    const mine = mySeats();
    for (const label of state.seats.keys()) renderSeat(label, mine);
  }

  function renderSection(name) {
    const entry = state.sections.get(name);
    if (!entry) return;
    const { section, count } = entry;
    count.textContent =
      section.kind === 'ga'
        ? `${section.available} of ${section.capacity} places left`
        : `${section.available} of ${section.capacity} free`;
  }

  /** A seat's status as the server says it; a chosen seat someone else took is unchosen. */
  function setStatus(label, status, mine) {
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

  function setAvailable(sections) {
    for (const { name, available } of sections || []) {
      const entry = state.sections.get(name);
      if (!entry) continue;
      entry.section.available = available;
      renderSection(name);
    }
  }

  function clickSeat(label) {
    const seat = state.seats.get(label);
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

  function renderSelection() {
    const labels = [...state.selected];
    const total = labels.reduce((sum, label) => sum + state.seats.get(label).priceCents, 0);
    $('#selection').textContent = labels.length
      ? `${labels.join(', ')} · ${money(total, state.event.currency)}`
      : 'Click free seats to choose them.';
    $('#hold-selected').disabled = labels.length === 0;
    $('#clear-selection').disabled = labels.length === 0;
  }

  // ---- holds, payment, release ----------------------------------------------------------------

  function lapsed(booking) {
    return booking.status === 'held' && Date.parse(booking.expiresAt) <= Date.now();
  }

  /** A booking's seats in words: labels for seats, a count for general-admission places. */
  function seatsInWords(booking) {
    const seats = booking.seats.filter((label) => state.seats.has(label));
    const places = booking.seats.length - seats.length;
    const parts = [];
    if (seats.length) parts.push(`${seats.length > 1 ? 'seats' : 'seat'} ${seats.join(', ')}`);
    if (places) parts.push(`${places} general-admission ${places > 1 ? 'places' : 'place'}`);
    return parts.join(' and ');
  }

  /** POST /bookings with `request` (seats, best available or GA) for the event on screen. */
  async function hold(request, success) {
    const eventId = state.event.id;
    const asked = request.seatIds || [];
    for (const label of asked) state.pending.add(label);
    try {
      const { data } = await api('POST', '/bookings', {
        body: { eventId, ...request },
        auth: true,
      });
      if (eventId !== state.event?.id) return;
      track(data);
      const them = data.seats.length > 1 ? 'them' : 'it';
      say(`${success(data)} Pay before ${clock(data.expiresAt)} to keep ${them}.`, 'ok');
    } catch (error) {
      const taken = error instanceof Problem ? error.body.conflictingSeats : undefined;
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
  function track(booking) {
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

  async function pay(booking, paymentMethod) {
    const keys = state.paymentKeys.get(booking.id) || {};
    state.paymentKeys.set(booking.id, keys);
    keys[paymentMethod] = keys[paymentMethod] || newKey();
    try {
      const { data } = await api('POST', `/bookings/${booking.id}/payments`, {
        body: { paymentMethod },
        auth: true,
        headers: { 'Idempotency-Key': keys[paymentMethod] },
      });
      delete keys[paymentMethod];
      track(data.booking);
      if (data.booking.status === 'confirmed') {
        say(`Paid: ${seatsInWords(data.booking)}, booked for you.`, 'ok');
      } else {
        say('Your bank is confirming the payment; the seats turn booked when it is done.');
      }
    } catch (error) {
      const answered = error instanceof Problem && error.status > 0 && error.status < 500;
      if (answered && !STILL_RUNNING.has(error.body.code)) delete keys[paymentMethod];
      const code = error instanceof Problem ? error.body.code : undefined;
      if (code === 'PAYMENT.SEAT_LOST' || code === 'BOOKING.NOT_PAYABLE') {
        await reread(booking.id);
      }
      throw error;
    } finally {
      if (!streamIsLive()) await refreshMap();
    }
  }

  async function release(booking) {
    try {
      const { data } = await api('DELETE', `/bookings/${booking.id}`, { auth: true });
      track(data);
      say(`Released: ${seatsInWords(data)}.`);
    } finally {
      if (!streamIsLive()) await refreshMap();
    }
  }

  /** GET /bookings/{id} after a payment was refused for its status, so the panel tells the truth. */
  async function reread(bookingId) {
    try {
      const { data } = await api('GET', `/bookings/${bookingId}`, { auth: true });
      track(data);
    } catch (error) {
      if (error instanceof Problem && error.status === 404) state.holds.delete(bookingId);
      renderHolds();
    }
  }

  function renderHolds() {
    const list = $('#holds');
    if (state.holds.size === 0) {
      list.replaceChildren(el('p', { class: 'hint' }, 'Nothing held yet.'));
      return;
    }
    list.replaceChildren(...[...state.holds.values()].map(holdCard));
    tick();
  }

  function holdCard(booking) {
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
    const payButton = el('button', { type: 'button', class: 'pay' }, 'Pay');
    const releaseButton = el('button', { type: 'button', class: 'release' }, 'Release');
    payButton.addEventListener('click', () => {
      void withButton(payButton, () => pay(booking, cardChoice.value));
    });
    releaseButton.addEventListener('click', () => {
      void withButton(releaseButton, () => release(booking));
    });
    card.append(
      el('p', { class: 'expires', 'data-expires-at': booking.expiresAt }),
      el('div', { class: 'actions' }, cardChoice, payButton, releaseButton),
    );
    return card;
  }

  /** Once a second: the holds' countdowns, and a hold whose time is up is dropped. */
  function tick() {
    for (const booking of [...state.holds.values()]) {
      if (!lapsed(booking)) continue;
      state.holds.delete(booking.id);
      const mine = mySeats();
      for (const label of booking.seats) setStatus(label, 'free', mine);
      say(`Your hold lapsed: ${seatsInWords(booking)} went back on sale.`, 'error');
      renderHolds();
      if (!streamIsLive()) void refreshMap();
      return;
    }
    for (const line of document.querySelectorAll('.hold .expires')) {
      const left = Math.max(0, Date.parse(line.dataset.expiresAt) - Date.now());
      const minutes = Math.floor(left / 60_000);
      const seconds = String(Math.floor((left % 60_000) / 1000)).padStart(2, '0');
      line.textContent = `Held until ${clock(line.dataset.expiresAt)} (${minutes}:${seconds} left).`;
    }
  }

  // ---- live updates --------------------------------------------------------------------------

  const LIVE_WORDS = {
    off: '',
    connecting: 'Connecting to live updates…',
    live: 'Live',
    reconnecting: 'Live updates interrupted; reconnecting…',
    unavailable: 'Live updates unavailable: press Refresh to see the latest seats.',
  };

  /**
   * `connection`: off, connecting, live, reconnecting or unavailable (the stream was refused);
   * `paused`: the reason of an `event: stale`, kept until the next snapshot, reconnects included.
   */
  function setLive(connection, paused = state.paused) {
    state.connection = connection;
    state.paused = paused;
    const shown = connection === 'live' && paused !== null ? 'stale' : connection;
    const status = $('#live-status');
    status.dataset.state = shown;
    status.textContent =
      shown === 'stale'
        ? `Live updates paused${paused ? ` (${paused})` : ''}: the map may be behind until they resume.`
        : LIVE_WORDS[shown];
    $('#refresh').hidden = connection !== 'unavailable';
  }

  /** Whether the stream keeps the map current; if not, the page reads it again after each action. */
  function streamIsLive() {
    return state.connection === 'live' && state.paused === null;
  }

  function closeStream() {
    if (state.stream) state.stream.close();
    state.stream = null;
    state.lastSeq = null;
    $('#live-status').removeAttribute('data-seq');
    setLive('off', null);
  }

  /**
   * The seat stream: a snapshot, then each committed change in order. EventSource reconnects by
   * itself and sends Last-Event-ID, so the server resumes after the last seq or sends a new snapshot.
   */
  function openStream(eventId, generation) {
    if (state.stream) state.stream.close();
    const source = new EventSource(`/events/${encodeURIComponent(eventId)}/seats/stream`);
    state.stream = source;
    setLive('connecting');
    const current = () => generation === state.generation && source === state.stream;
    const read = (handler) => (message) => {
      if (!current()) return;
      handler(JSON.parse(message.data));
      // Where the map stands in the stream: what a reader (or a test) can wait for.
      if (state.lastSeq !== null) $('#live-status').dataset.seq = String(state.lastSeq);
    };
    source.addEventListener('open', () => {
      if (current()) setLive('live');
    });
    source.addEventListener(
      'snapshot',
      read((snapshot) => {
        const mine = mySeats();
        for (const { label, status } of snapshot.seats) setStatus(label, status, mine);
        setAvailable(snapshot.sections);
        state.lastSeq = snapshot.seq;
        setLive('live', null);
      }),
    );
    source.addEventListener(
      'seats',
      read((update) => {
        // A message at or before what is applied already (a resumed stream repeating one) is skipped.
        if (state.lastSeq !== null && update.seq <= state.lastSeq) return;
        const mine = mySeats();
        for (const { label, status } of update.changes) setStatus(label, status, mine);
        setAvailable(update.sections);
        state.lastSeq = update.seq;
      }),
    );
    source.addEventListener(
      'stale',
      read((notice) => setLive(state.connection, notice.reason || '')),
    );
    source.addEventListener('error', () => {
      if (!current()) return;
      setLive(source.readyState === EventSource.CLOSED ? 'unavailable' : 'reconnecting');
    });
  }

  /** The two GETs again, when no live stream keeps the map current. */
  async function refreshMap() {
    const event = state.event;
    if (!event) return;
    const generation = state.generation;
    try {
      const path = `/events/${encodeURIComponent(event.id)}`;
      const [fresh, seats] = await Promise.all([api('GET', path), api('GET', `${path}/seats`)]);
      if (generation !== state.generation) return;
      const mine = mySeats();
      for (const seat of seats.data) setStatus(seat.label, seat.status, mine);
      setAvailable(fresh.data.sections);
    } catch (error) {
      say(explain(error), 'error');
    }
  }

  // ---- start -----------------------------------------------------------------------------------

  function start() {
    renderCustomer();
    $('#register-form').addEventListener('submit', (event) => void register(event));
    $('#event-select').addEventListener('change', (event) => void openEvent(event.target.value));
    $('#more-events').addEventListener('click', () => void loadEvents(state.nextEventsPage));
    $('#refresh').addEventListener('click', () => {
      const button = $('#refresh');
      void withButton(button, async () => {
        await refreshMap();
        if (state.event && state.connection === 'unavailable') {
          openStream(state.event.id, state.generation);
        }
      });
    });
    $('#hold-selected').addEventListener('click', () => {
      if (!requireCustomer()) return;
      const button = $('#hold-selected');
      void withButton(button, () =>
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
      const section = $('#best-section').value;
      const button = event.submitter || $('#best-form button');
      void withButton(button, () =>
        hold(
          {
            quantity: Number($('#best-quantity').value),
            together: $('#best-together').checked,
            ...(section ? { section } : {}),
          },
          (booking) =>
            `Holding ${seatsInWords(booking)}${booking.nextToEachOther ? ', next to each other' : ''}.`,
        ),
      );
    });
    setInterval(tick, 1000);
    void loadEvents(FIRST_EVENTS_PAGE);
    const eventId = new URLSearchParams(location.search).get('event');
    if (eventId) void openEvent(eventId);
  }

  start();
})();
