/*
 * Seatlock's hold -> pay -> confirm / release / expiry protocol, for SPIN.
 * What is modelled, what is abstracted and why: docs/model.md. Run: npm run model.
 *
 * Actors, one process each: NC customers (hold, then pay), one DELETE (release or cancel), the
 * payment reconciler, the gateway-webhook handler, and the environment (time passing, Redis
 * losing its keys, the sweeper, the gateway finishing asynchronous cards).
 *
 * Granularity. Each PostgreSQL statement (a SQL function, or one conditional UPDATE) is one
 * d_step: the functions lock every row they decide on before deciding, and READ COMMITTED
 * re-checks an UPDATE's WHERE on the newest committed row, so a statement acts as if it ran alone
 * at its commit; a deadlock aborts one of two statements, which is the same as it not having run
 * yet. Each gateway call and each Redis script is one d_step too (each is atomic where it runs).
 * Between two such steps every other actor may move, so a slow actor is a stale writer: its next
 * step may come after its hold lapsed, after Redis lost its keys, after the seat was taken again.
 *
 * Seat locks are efficiency only, and the model leaves their exclusion out: every Redis acquire
 * is granted (as if the previous holder's key had expired), which only adds behaviours; what they
 * produce that matters is kept: the fencing tokens (counters, TIME, loss, ratchet). The payment
 * lock (payment:booking:<id>) is kept, because it is what normally keeps a request, a webhook,
 * a DELETE and the reconciler off one booking's payments at once; its failures are a bounded
 * fault: a lease lapses (a paused holder, Redis flushed or unreachable) while its holder goes on.
 *
 * Macros:
 *   NC=2|3                 customers, one booking each (default 2)
 *   NS=1|2                 seats (default 1; 2: booking 1 wants seat 0, booking 2 seats 0 and 1)
 *   DOUBLE_PAY             customer 1 also sends a second payment (another Idempotency-Key)
 *   BUG_DISCARD_CLAIMED    regression F1 (docs/model.md): a request that finds the payment lock
 *                          busy deletes its new payment even when another actor has claimed it
 *                          and is authorizing it at the gateway
 *   BUG_CONFIRM_ANY_STATUS regression F2: the confirm without an expected step (the reconciler
 *                          asking about an asynchronous card) does not require status 'pending'
 *   CHECK_LEDGER           also check P5, the ledger's "a confirmed booking is paid"
 *   NO_ASYNC               no asynchronous card (no webhook, no asking the gateway); with
 *                          it, customer 1 is the one who may pay asynchronously
 *   NO_REDIS               Redis never answers: PostgreSQL mints every token
 *   PAYERS=k               only customers 1..k pay; the others only hold (default NC)
 *   BUG_HOLD_TRUSTS_TOKEN  injected bug: a hold takes a seat that is not free when its Redis
 *                          token is newer than the stored fence ("the newest token wins")
 *   BUG_CONFIRM_WITHOUT_FENCE  injected bug: the confirm without its conditions (booking held
 *                          with the payment's fence and not lapsed; seats held by it with that
 *                          fence): the booking confirmed and its seats booked whatever happened
 *   MAXCRASH, MAXLOSS, MAXLAPSE  budgets: crashes, Redis losses, payment leases lapsing under
 *                          their holder (default 1 each)
 */

#ifndef NC
#define NC 2
#endif
#ifndef NS
#define NS 1
#endif
#ifdef DOUBLE_PAY
#define NP (NC + 1)
#else
#define NP NC
#endif
#ifndef MAXCRASH
#define MAXCRASH 1
#endif
#ifndef MAXLOSS
#define MAXLOSS 1
#endif
#ifndef MAXLAPSE
#define MAXLAPSE 1
#endif
#ifndef PAYERS
#define PAYERS NC
#endif

/* Which seats booking b wants; with one seat every booking wants it. */
#if NS == 1
#define WANTS(b, s) 1
#define NSEATS(b) 1
#else
#define BMASK(b) ((b) == 2 -> 3 : ((b) == 1 -> 1 : 2))
#define WANTS(b, s) ((BMASK(b) >> (s)) & 1)
#define NSEATS(b) (WANTS(b, 0) + WANTS(b, 1))
#endif

/* Payment p belongs to booking PBK(p): one per booking, the extra one (DOUBLE_PAY) to booking 1. */
#define PBK(p) ((p) % NC + 1)

/* Actor ids (bit numbers in pay_dirty). Customers are 1..NC. */
#define ID_SECOND (NC + 1)
#define ID_RECONCILER (NC + 2)
#define ID_WEBHOOK (NC + 3)
#define ID_DELETER (NC + 4)

mtype = {
  S_FREE, S_HELD, S_BOOKED,                                            /* seats.status */
  B_NONE, B_HELD, B_CONFIRMED, B_RELEASED, B_EXPIRED, B_CANCELLED,     /* bookings.status */
  P_NOROW, P_PENDING, P_AUTHORIZED, P_CAPTURED, P_VOIDED, P_REFUNDED, P_FAILED, /* payments */
  A_NONE, A_AUTHORIZE, A_CONFIRM, A_CAPTURE, A_VOID, A_REFUND,         /* payments.next_action */
  G_NONE, G_PROCESSING, G_DECLINED, G_REQCAP, G_SUCCEEDED, G_CANCELED, G_REFUNDED, /* intents */
  C_OK, C_ASYNC, C_DECLINE,                                            /* test cards */
  R_HELD, R_UNAVAILABLE, R_STALE,                                      /* seatlock_hold outcome */
  X_AUTHORIZED, X_CAPTURED, X_PROCESSING, X_FAILED,                    /* gateway answers, mapped */
  CUSTOMER_1, CUSTOMER_2, CUSTOMER_3, SECOND_PAYMENT, RECONCILER, WEBHOOK, DELETE  /* who, in trails */
};

/* ---- PostgreSQL ---- */
mtype seat_st[NS] = S_FREE;
byte seat_bk[NS];            /* booking_id, 0 = NULL */
byte seat_fence[NS];
byte seat_hiwater[NS];       /* ghost: the largest fence ever written to the seat */
mtype bk_st[NC + 1] = B_NONE;
byte bk_fence[NC + 1];
bool bk_lapsed[NC + 1];      /* now() >= expires_at (= its seats' held_until) */
mtype pay_st[NP] = P_NOROW;
mtype pay_next[NP] = A_NONE;
bool pay_intent[NP];         /* gateway_intent_id recorded */
byte pay_fence[NP];
mtype pay_card[NP] = C_OK;   /* payment_method */
/*
 * updated_at, the version a step compares: instead of a counter (which would make every write a
 * new state forever), bit `me` says "actor me's last read of the row is out of date".
 */
byte pay_dirty[NP] = 255;
bool wh_seen[NP];            /* gateway_events: the payment's webhook event was applied */
byte pgtime = 1;             /* clock_timestamp() in token units */

/* ---- Redis ---- */
byte r_ctr[NS];              /* fence:seat:… counter, 0 = no key */
byte r_paylock[NC + 1];      /* payment:booking:… owner (actor id), 0 = no key */
byte rtime = 1;              /* Redis TIME in token units */

/* ---- the gateway ---- */
mtype gw[NP] = G_NONE;       /* the payment's intent (one per gateway idempotency key) */
byte wh_q[NP];               /* the intent's payment_intent.succeeded is due (deliveries left) */

/* ---- bookkeeping ---- */
byte crashes;                /* crashes so far (budget MAXCRASH) */
byte losses;                 /* Redis data losses so far (budget MAXLOSS) */
byte lapses;                 /* payment leases lost under a live holder (budget MAXLAPSE) */
byte alive;                  /* customer, second-payment and DELETE processes still running */
bool pay_claimed[NP];        /* attempts > 0: an actor other than its request took it on */
bool hold_over[NC + 1];      /* the customer's hold attempt is over, held or not */
bool dup_used;               /* the one duplicated webhook delivery */

/* Scratch for d_steps only (not part of the state). */
hidden byte _i, _k, _n, _bx, _nw, _ok;
hidden mtype _vst;

/*
 * A crash (or a lost answer: a timeout, an aborted call) instead of the next step. The printf
 * lines (here and below) only show when a trail is replayed (spin -t); they sit inside existing
 * atomic steps, so they add no states.
 */
#define CRASH \
  :: atomic { crashes < MAXCRASH -> crashes++; printf("%e: CRASH (in-memory work lost)\n", who) }; \
     goto crashed
#define CRASHPOINT \
  if \
  CRASH \
  :: true -> skip \
  fi

#define ME_BIT (1 << me)

/* ------------------------------------------------------------------ invariants (P1, P2) */

/*
 * P1 and P2 hold in every state: checked at the end of every statement that writes seats or
 * bookings. Each result goes through a scratch variable named after the property, so a violation
 * names it ("assertion violated P1_never_two_confirmed_bookings_for_one_seat").
 */
#define CONFIRMED_FOR(b, s) (bk_st[b] == B_CONFIRMED && WANTS(b, s))
#define BOOKED_BY(b, s) (!WANTS(b, s) || (seat_st[s] == S_BOOKED && seat_bk[s] == b))
#if NC == 2
#define NCONFIRMED(s) (CONFIRMED_FOR(1, s) + CONFIRMED_FOR(2, s))
#else
#define NCONFIRMED(s) (CONFIRMED_FOR(1, s) + CONFIRMED_FOR(2, s) + CONFIRMED_FOR(3, s))
#endif
/* P1: never two confirmed bookings for one seat */
#define P1_SEAT(s) (NCONFIRMED(s) <= 1)
/* P2: a booked seat belongs to a confirmed booking that has it ... */
#define P2_SEAT(s) (seat_st[s] != S_BOOKED || \
  (seat_bk[s] != 0 && bk_st[seat_bk[s]] == B_CONFIRMED && WANTS(seat_bk[s], s)))
/* ... and a confirmed booking's seats are booked by it */
#if NS == 1
#define P2_BOOKING(b) (bk_st[b] != B_CONFIRMED || BOOKED_BY(b, 0))
#define P1_ALL P1_SEAT(0)
#define P2_SEATS P2_SEAT(0)
#else
#define P2_BOOKING(b) (bk_st[b] != B_CONFIRMED || (BOOKED_BY(b, 0) && BOOKED_BY(b, 1)))
#define P1_ALL (P1_SEAT(0) && P1_SEAT(1))
#define P2_SEATS (P2_SEAT(0) && P2_SEAT(1))
#endif
#if NC == 2
#define P2_ALL (P2_SEATS && P2_BOOKING(1) && P2_BOOKING(2))
#else
#define P2_ALL (P2_SEATS && P2_BOOKING(1) && P2_BOOKING(2) && P2_BOOKING(3))
#endif

hidden byte P1_never_two_confirmed_bookings_for_one_seat;
hidden byte P2_booked_seat_iff_its_confirmed_booking;
hidden byte P3_captured_means_confirmed_or_refunded;
hidden byte P4_no_open_authorization;
hidden byte P5_confirmed_booking_paid_once;

inline db_invariants() {
  P1_never_two_confirmed_bookings_for_one_seat = P1_ALL;
  assert(P1_never_two_confirmed_bookings_for_one_seat);
  P2_booked_seat_iff_its_confirmed_booking = P2_ALL;
  assert(P2_booked_seat_iff_its_confirmed_booking)
}

/* ------------------------------------------------------------------ PostgreSQL statements */

/* seatlock_expire_booking(x): a lapsed hold turns expired and frees the seats its fence holds. */
inline expire_booking(x) {
  if
  :: bk_st[x] == B_HELD && bk_lapsed[x] ->
     bk_st[x] = B_EXPIRED;
     for (_k : 0 .. NS - 1) {
       if
       :: WANTS(x, _k) && seat_st[_k] == S_HELD && seat_fence[_k] == bk_fence[x] ->
          seat_st[_k] = S_FREE; seat_bk[_k] = 0
       :: else -> skip
       fi
     }
  :: else -> skip
  fi
}

/*
 * seatlock_hold(b, token): expire the lapsed holds on the seats; then every seat free and the
 * token newer than every stored fence, or nothing is written. tok 0 = no Redis token: PostgreSQL
 * mints greatest(max(fence) + 1, its clock).
 */
inline pg_hold(b, tok, outcome) {
  d_step {
    for (_i : 0 .. NS - 1) {
      if
      :: WANTS(b, _i) && seat_st[_i] == S_HELD && bk_lapsed[seat_bk[_i]] ->
         _bx = seat_bk[_i]; expire_booking(_bx)
      :: else -> skip
      fi
    }
    /* "A lapsed seat whose booking is no longer held is simply free" */
    for (_i : 0 .. NS - 1) {
      if
      :: WANTS(b, _i) && seat_st[_i] == S_HELD && bk_lapsed[seat_bk[_i]] ->
         seat_st[_i] = S_FREE; seat_bk[_i] = 0
      :: else -> skip
      fi
    }
    _n = 0; _ok = 1;
    for (_i : 0 .. NS - 1) {
      if
      :: WANTS(b, _i) ->
         if
         :: seat_fence[_i] > _n -> _n = seat_fence[_i]
         :: else -> skip
         fi;
#ifdef BUG_HOLD_TRUSTS_TOKEN
         if
         :: seat_st[_i] != S_FREE && (tok == 0 || tok <= seat_fence[_i]) -> _ok = 0
         :: else -> skip
         fi
#else
         if
         :: seat_st[_i] != S_FREE -> _ok = 0
         :: else -> skip
         fi
#endif
      :: else -> skip
      fi
    }
    if
    :: !_ok -> outcome = R_UNAVAILABLE
    :: else ->
       if
       :: tok == 0 -> _nw = (_n + 1 > pgtime -> _n + 1 : pgtime); pgtime = _nw + 1
       :: else -> _nw = tok
       fi;
       if
       :: _nw <= _n -> outcome = R_STALE
       :: else ->
          for (_i : 0 .. NS - 1) {
            if
            :: WANTS(b, _i) ->
               /* P6: a seat's fences only grow, so (seat, fence) names one hold */
               assert(_nw > seat_hiwater[_i]);
               seat_hiwater[_i] = _nw;
               seat_st[_i] = S_HELD; seat_bk[_i] = b; seat_fence[_i] = _nw
            :: else -> skip
            fi
          }
          bk_st[b] = B_HELD; bk_fence[b] = _nw; bk_lapsed[b] = false;
          outcome = R_HELD
       fi
    fi;
    printf("%e: seatlock_hold(token %d) -> %e (newest fence was %d, booking fence %d)\n",
           who, tok, outcome, _n, bk_fence[b]);
    db_invariants()
  }
}

/* The Progress a workflow step carries: the payment row as this actor last read it. */
inline snapshot(p) {
  s_gone = (pay_st[p] == P_NOROW);
  s_next = pay_next[p]; s_intent = pay_intent[p];
  pay_dirty[p] = pay_dirty[p] & (255 - ME_BIT)
}

/* Done with payment p: the read is dropped (a canonical state, so equal states match). */
inline forget(p) {
  pay_dirty[p] = pay_dirty[p] | ME_BIT;
  s_gone = false; s_next = A_NONE; s_intent = false; ans = X_FAILED
}

/* payments.step: one UPDATE conditional on the version read; on a miss the row is read again. */
inline step(p, nst, nnext, intent) {
  d_step {
    if
    :: pay_st[p] != P_NOROW && (pay_dirty[p] & ME_BIT) == 0 ->
       pay_st[p] = nst; pay_next[p] = nnext; pay_intent[p] = pay_intent[p] || intent;
       pay_dirty[p] = 255;
       printf("%e: payment %d -> %e, next %e\n", who, p, nst, nnext)
    :: else -> printf("%e: payment %d changed meanwhile: step not taken, row read again\n", who, p)
    fi;
    snapshot(p)
  }
}

/*
 * seatlock_payment_confirm(p, expected, status): only while next_action is still `expected`;
 * the booking held with the payment's fence and not lapsed -> confirmed and every seat held by it
 * with that fence -> booked; otherwise a lapsed hold is expired and the money goes back.
 * given = P_NOROW: no status passed (the row's stays); otherwise the authorization's.
 */
inline confirm(p, expected, given) {
  d_step {
    if
    :: pay_st[p] == P_NOROW -> printf("%e: confirm payment %d: no such row\n", who, p)
#ifdef BUG_CONFIRM_ANY_STATUS
    :: pay_st[p] != P_NOROW && pay_next[p] != expected ->
       printf("%e: confirm payment %d (expected %e): moved_on\n", who, p, expected)
#else
    :: pay_st[p] != P_NOROW &&
       (pay_next[p] != expected || (expected == A_NONE && pay_st[p] != P_PENDING)) ->
       printf("%e: confirm payment %d (expected %e): moved_on\n", who, p, expected)
#endif
    :: else ->
       _vst = (given != P_NOROW -> given : pay_st[p]);
       _bx = PBK(p);
       if
#ifdef BUG_CONFIRM_WITHOUT_FENCE
       :: bk_st[_bx] != B_CONFIRMED && bk_st[_bx] != B_CANCELLED ->
#else
       :: bk_st[_bx] == B_HELD && bk_fence[_bx] == pay_fence[p] && !bk_lapsed[_bx] ->
#endif
          _n = 0;
          for (_i : 0 .. NS - 1) {
            if
#ifdef BUG_CONFIRM_WITHOUT_FENCE
            :: WANTS(_bx, _i) -> _n++
#else
            :: WANTS(_bx, _i) && seat_st[_i] == S_HELD && seat_bk[_i] == _bx &&
               seat_fence[_i] == pay_fence[p] -> _n++
#endif
            :: else -> skip
            fi
          }
          /* the statement's RAISE ("held but only n of m seats carry its fence"): unreachable */
          assert(_n == NSEATS(_bx));
          for (_i : 0 .. NS - 1) {
            if
            :: WANTS(_bx, _i) -> seat_st[_i] = S_BOOKED; seat_bk[_i] = _bx
            :: else -> skip
            fi
          }
          bk_st[_bx] = B_CONFIRMED;
          pay_next[p] = (_vst == P_CAPTURED -> A_NONE : A_CAPTURE);
          printf("%e: confirm payment %d (expected %e): booking %d confirmed, seat booked\n",
                 who, p, expected, _bx)
       :: else ->
          expire_booking(_bx);
          pay_next[p] = (_vst == P_CAPTURED -> A_REFUND : A_VOID);   /* seat_lost */
          printf("%e: confirm payment %d (expected %e): seat lost (booking %d is %e)\n",
                 who, p, expected, _bx, bk_st[_bx])
       fi;
       pay_st[p] = _vst;
       pay_intent[p] = pay_intent[p] || given != P_NOROW;
       pay_dirty[p] = 255;
       db_invariants()
    fi;
    snapshot(p)
  }
}

/* ------------------------------------------------------------------ the gateway */

/* POST /v1/payment_intents under the payment's gateway key: a retry gets the first answer. */
inline gw_authorize(p, ans) {
  d_step {
    if
    :: gw[p] == G_NONE ->
       if
       :: pay_card[p] == C_OK -> gw[p] = G_REQCAP
       :: pay_card[p] == C_ASYNC -> gw[p] = G_PROCESSING
       :: else -> gw[p] = G_DECLINED
       fi
    :: else -> skip
    fi;
    ans = (pay_card[p] == C_OK -> X_AUTHORIZED :
           (pay_card[p] == C_ASYNC -> X_PROCESSING : X_FAILED));
    printf("%e: gateway authorize payment %d -> %e (intent %e)\n", who, p, ans, gw[p])
  }
}

/* capture: only requires_capture moves; a captured intent (refunded is still 'succeeded')
 * answers captured; anything else is refused with its status. */
inline gw_capture(p, ans) {
  d_step {
    if
    :: gw[p] == G_REQCAP -> gw[p] = G_SUCCEEDED; ans = X_CAPTURED
    :: gw[p] == G_SUCCEEDED || gw[p] == G_REFUNDED -> ans = X_CAPTURED
    :: else -> ans = X_FAILED
    fi;
    printf("%e: gateway capture payment %d -> %e (intent %e)\n", who, p, ans, gw[p])
  }
}

/* cancel (void): refused for a captured intent, repeatable for a cancelled one. */
inline gw_void(p, ans) {
  d_step {
    if
    :: gw[p] == G_SUCCEEDED || gw[p] == G_REFUNDED -> ans = X_CAPTURED
    :: else -> gw[p] = G_CANCELED; ans = X_FAILED
    fi;
    printf("%e: gateway void payment %d -> intent %e\n", who, p, gw[p])
  }
}

/* refund: of a captured intent (repeatable); refused, not captured, otherwise. */
inline gw_refund(p, ans) {
  d_step {
    if
    :: gw[p] == G_SUCCEEDED -> gw[p] = G_REFUNDED; ans = X_CAPTURED
    :: gw[p] == G_REFUNDED -> ans = X_CAPTURED
    :: else -> ans = X_FAILED
    fi;
    printf("%e: gateway refund payment %d -> intent %e\n", who, p, gw[p])
  }
}

inline gw_retrieve(p, ans) {
  d_step {
    ans = (gw[p] == G_REQCAP -> X_AUTHORIZED :
           ((gw[p] == G_SUCCEEDED || gw[p] == G_REFUNDED) -> X_CAPTURED :
            (gw[p] == G_PROCESSING -> X_PROCESSING : X_FAILED)));
    printf("%e: gateway retrieve payment %d -> %e\n", who, p, ans)
  }
}

/* ------------------------------------------------------------------ the payment workflow */

/* recordIntent: what the gateway said of the authorization decides the next step. */
inline record_intent(p, expected, ans) {
  if
  :: ans == X_AUTHORIZED || ans == X_CAPTURED ->
     confirm(p, expected, (ans == X_CAPTURED -> P_CAPTURED : P_AUTHORIZED))
  :: ans == X_PROCESSING -> step(p, P_PENDING, A_NONE, true)    /* the webhook continues */
  :: else -> step(p, P_FAILED, A_NONE, true)                    /* declined */
  fi
}

/*
 * PaymentWorkflowService.advance: every step still owed, in order, from the row last read. The
 * lease's signal is checked where the code checks it, at the top of each round (throwIfAborted):
 * a lease that lapses after that check leaves a stale writer for the rest of the round. AFTER is
 * what the caller does once it stops (release the lock, forget the row), in the same step.
 */
#define AFTER unlock_payment(PBK(p)); forget(p); p = 0
#define STOP(p) (s_gone || s_next == A_NONE || (locked && r_paylock[PBK(p)] != me))
inline advance(p) {
  do
  :: atomic {
       STOP(p) ->
       if
       :: locked && r_paylock[PBK(p)] != me && !s_gone && s_next != A_NONE ->
          printf("%e: lease lost: LockLostError, stops\n", who)
       :: else -> skip
       fi;
       AFTER
     };
     break
  :: !STOP(p) && crashes < MAXCRASH -> crashes++; goto crashed
  :: atomic { !STOP(p) && s_next == A_AUTHORIZE -> gw_authorize(p, ans) };
     if
     CRASH
     :: record_intent(p, A_AUTHORIZE, ans)
     fi
  :: atomic { !STOP(p) && s_next == A_CONFIRM -> confirm(p, A_CONFIRM, P_NOROW) }
  :: atomic { !STOP(p) && s_next == A_CAPTURE ->
       assert(s_intent);                                         /* intentOf() never throws */
       gw_capture(p, ans)
     };
     if
     CRASH
     :: ans == X_CAPTURED -> step(p, P_CAPTURED, A_NONE, false)
     :: ans != X_CAPTURED -> step(p, P_FAILED, A_NONE, false)   /* capture_failed */
     fi
  :: atomic { !STOP(p) && s_next == A_VOID && !s_intent -> step(p, P_VOIDED, A_NONE, false) }
  :: atomic { !STOP(p) && s_next == A_VOID && s_intent -> gw_void(p, ans) };
     if
     CRASH
     :: ans == X_CAPTURED -> step(p, P_CAPTURED, A_REFUND, false)
     :: ans != X_CAPTURED -> step(p, P_VOIDED, A_NONE, false)
     fi
  :: atomic { !STOP(p) && s_next == A_REFUND ->
       assert(s_intent);
       gw_refund(p, ans)
     };
     if
     CRASH
     :: ans == X_CAPTURED -> step(p, P_REFUNDED, A_NONE, false)
     :: ans != X_CAPTURED -> step(p, P_AUTHORIZED, A_VOID, false) /* never captured: void */
     fi
  od
}

/* LockProvider.usingOrAlone on payment:booking:b: taken, or busy (another attempt runs). */
inline lock_payment(b) {
  if
  :: r_paylock[b] == 0 -> r_paylock[b] = me; locked = true
  :: else -> skip
  fi
}

/* Frees the key if it is still this holder's; a crashed holder's key is taken to expire at
 * once (waiting out its TTL only makes others skip a pass or answer 409). */
inline unlock_payment(b) {
  if
  :: r_paylock[b] == me -> r_paylock[b] = 0
  :: else -> skip
  fi;
  locked = false
}

/*
 * PaymentRepository.claim: the read of a payment another actor settles; one that still owes its
 * authorization is marked taken on (attempts + 1) in the same statement, so its request, finding
 * the lock busy, no longer deletes it as never sent (the fix of F1).
 */
inline claim(p) {
  if
  :: pay_st[p] != P_NOROW && pay_next[p] == A_AUTHORIZE -> pay_claimed[p] = true
  :: else -> skip
  fi;
  snapshot(p)
}

/* settleNow, or a reconciler pass: under the booking's payment lock, from the row as it is now;
 * a busy lock means someone else is at it (null: nothing done now). */
inline settle(p) {
  atomic {
    lock_payment(PBK(p));
    if
    :: locked -> claim(p)
    :: else -> s_gone = true
    fi
  };
  advance(p)
}

/* ------------------------------------------------------------------ Redis scripts */

/* ACQUIRE_MANY_SCRIPT: token = max(counter + 1 of every key, TIME), written to every counter. */
inline redis_acquire(b, tok) {
  d_step {
    tok = rtime; rtime++;
    for (_i : 0 .. NS - 1) {
      if
      :: WANTS(b, _i) && r_ctr[_i] + 1 > tok -> tok = r_ctr[_i] + 1
      :: else -> skip
      fi
    }
    for (_i : 0 .. NS - 1) {
      if
      :: WANTS(b, _i) -> r_ctr[_i] = tok
      :: else -> skip
      fi
    }
    printf("%e: Redis mints token %d\n", who, tok)
  }
}

/* RATCHET_SCRIPT: counters up to the token PostgreSQL minted; it may fail (Redis away). */
inline redis_ratchet(b) {
  if
  :: atomic {
       for (_i : 0 .. NS - 1) {
         if
         :: WANTS(b, _i) && r_ctr[_i] < bk_fence[b] -> r_ctr[_i] = bk_fence[b]
         :: else -> skip
         fi
       }
       printf("%e: Redis ratcheted to %d\n", who, bk_fence[b])
     }
  :: atomic { printf("%e: ratchet failed (Redis away)\n", who) }
  fi
}

/* ------------------------------------------------------------------ a payment request */

/*
 * POST /bookings/{b}/payments, payment p: seatlock_payment_start, then the payment lock; busy
 * (another attempt of the booking holds it) discards the new row and answers 409; then advance.
 */
inline pay_request(b, p) {
  atomic {
    if
    :: card = C_OK
#ifndef NO_ASYNC
    :: b == 1 -> card = C_ASYNC                                  /* one asynchronous payer */
#endif
#ifndef NO_DECLINE
    :: card = C_DECLINE
#endif
    fi;
    if
    :: bk_st[b] == B_HELD && !bk_lapsed[b] && pay_st[p] == P_NOROW ->
       pay_st[p] = P_PENDING; pay_next[p] = A_AUTHORIZE; pay_fence[p] = bk_fence[b];
       pay_card[p] = card; pay_dirty[p] = 255;
       snapshot(p);
       printf("%e: seatlock_payment_start -> payment %d pending (card %e)\n", who, p, card)
    :: else ->
       s_gone = true;                                            /* not payable: 409 */
       printf("%e: seatlock_payment_start -> booking %d not payable (%e)\n", who, b, bk_st[b])
    fi;
    card = C_OK;
    if
    :: s_gone -> goto done
    :: else -> skip
    fi
  };
  if
  CRASH
  :: atomic {
       lock_payment(b);
       if
       :: !locked ->
          /* busy: PaymentRepository.discard (the row says it never reached the gateway), 409 */
          if
#ifdef BUG_DISCARD_CLAIMED
          :: pay_next[p] == A_AUTHORIZE && !pay_intent[p] ->
#else
          :: pay_next[p] == A_AUTHORIZE && !pay_intent[p] && !pay_claimed[p] ->
#endif
             pay_st[p] = P_NOROW; pay_next[p] = A_NONE; pay_fence[p] = 0; pay_card[p] = C_OK;
             pay_dirty[p] = 255;
             printf("%e: payment lock busy: payment %d discarded (row deleted), 409\n", who, p)
          :: else -> printf("%e: payment lock busy: 409\n", who)
          fi;
          goto done
       :: else -> skip
       fi
     }
  fi;
  advance(p)
}

/* ------------------------------------------------------------------ processes */

proctype Customer(byte b; mtype who) {
  byte tok; mtype outcome = R_UNAVAILABLE; bool locked;
  mtype card = C_OK, ans = X_FAILED, s_next = A_NONE;
  bool s_intent, s_gone;
  byte me = b;
  byte p = b - 1;

  /* Redis mints the token, or Redis is away and PostgreSQL mints it (the fallback). */
  if
#ifndef NO_REDIS
  :: redis_acquire(b, tok)
#endif
  :: atomic { tok = 0; printf("%e: Redis unreachable: PostgreSQL mints the token\n", who) }
  fi;
  if
  CRASH
  :: atomic {
       pg_hold(b, tok, outcome); tok = 0;
       if
       :: outcome == R_UNAVAILABLE -> goto done
       :: outcome == R_HELD -> outcome = R_UNAVAILABLE
       :: outcome == R_STALE -> skip
       fi
     }
  fi;
  if
  :: outcome == R_STALE ->
     /* PostgreSQL holds a newer fence: it mints this token, then Redis is ratcheted up to it */
     atomic {
       pg_hold(b, 0, outcome);
       if
       :: outcome != R_HELD -> goto done
       :: else -> outcome = R_UNAVAILABLE
       fi
     };
     if
     CRASH
     :: redis_ratchet(b)
     fi
  :: else -> skip
  fi;
  if
  :: b <= PAYERS -> pay_request(b, p)
  :: else -> skip                                                /* holds, never pays */
  fi;
done:
crashed:
  atomic {
    p = b - 1; hold_over[b] = true; unlock_payment(b); forget(p); p = 0;
    alive--
  }
}

#ifdef DOUBLE_PAY
/* Customer 1's second payment of booking 1, sent at once with another Idempotency-Key. */
proctype SecondPay() {
  bool locked;
  mtype card = C_OK, ans = X_FAILED, s_next = A_NONE;
  bool s_intent, s_gone;
  byte me = ID_SECOND;
  mtype who = SECOND_PAYMENT;
  byte p = NC;
  bk_st[1] != B_NONE || hold_over[1];
  pay_request(1, p);
done:
crashed:
  atomic { p = NC; unlock_payment(1); forget(p); p = 0; alive-- }
}
#endif

/*
 * DELETE /bookings/1, or no DELETE at all (booking 2 is symmetric, except with NS=2 or
 * DOUBLE_PAY, where booking 1 is the richer one): seatlock_release; a confirmed booking is
 * cancelled in one transaction (seats freed, its payments owe a void or a refund: owePayback),
 * then settled now.
 */
proctype Deleter() {
  bool cancelled, locked;
  byte p;
  mtype ans = X_FAILED, s_next = A_NONE;
  bool s_intent, s_gone;
  byte me = ID_DELETER;
  mtype who = DELETE;

  if
  :: goto done                                                   /* nobody deletes */
  :: atomic {
       (bk_st[1] != B_NONE || hold_over[1]) ->
       if
       :: bk_st[1] == B_HELD ->
          expire_booking(1);
          if
          :: bk_st[1] == B_HELD ->
             bk_st[1] = B_RELEASED;
             for (_i : 0 .. NS - 1) {
               if
               :: WANTS(1, _i) && seat_st[_i] == S_HELD && seat_fence[_i] == bk_fence[1] ->
                  seat_st[_i] = S_FREE; seat_bk[_i] = 0
               :: else -> skip
               fi
             }
          :: else -> skip
          fi;
          db_invariants()
       :: else -> skip
       fi;
       printf("%e: seatlock_release(booking 1) -> booking %e\n", who, bk_st[1]);
       if
       :: bk_st[1] != B_CONFIRMED -> goto done
       :: else -> skip
       fi
     }
  fi;
  /* 'confirmed': the cancellation, its own transaction */
  if
  CRASH
  :: atomic {
       if
       :: bk_st[1] == B_CONFIRMED ->
          bk_st[1] = B_CANCELLED;
          for (_i : 0 .. NS - 1) {
            if
            :: WANTS(1, _i) && seat_st[_i] == S_BOOKED && seat_bk[_i] == 1 ->
               seat_st[_i] = S_FREE; seat_bk[_i] = 0
            :: else -> skip
            fi
          }
          for (_i : 0 .. NP - 1) {
            if
            :: PBK(_i) == 1 && (pay_st[_i] == P_AUTHORIZED || pay_st[_i] == P_CAPTURED) ->
               pay_next[_i] = (pay_st[_i] == P_CAPTURED -> A_REFUND : A_VOID);
               pay_dirty[_i] = 255
            :: else -> skip
            fi
          }
          printf("%e: booking 1 cancelled, seats freed, its payments owe a void or refund\n", who);
          db_invariants()
       :: else -> goto done
       fi
     }
  fi;
  /* settleBooking: each of its payments that owes a step, now */
  if
  :: pay_next[0] != A_NONE -> p = 0; settle(p)
  :: else -> skip
  fi;
#ifdef DOUBLE_PAY
  if
  :: pay_next[NC] != A_NONE -> p = NC; settle(p)
  :: else -> skip
  fi;
#endif
done:
crashed:
  atomic { unlock_payment(1); forget(p); p = 0; cancelled = false; alive-- }
}

/*
 * A payment the reconciler takes: it owes a step and its booking's payment lock is free (a busy
 * lock only skips the pass). Its grace period (GATEWAY_TIMEOUT_MS + 1 s) is not modelled: a
 * request paused past it overlaps the reconciler anyway.
 */
#define DUE(p) (pay_st[p] != P_NOROW && pay_next[p] != A_NONE && r_paylock[PBK(p)] == 0)
#define OWES(p) (pay_st[p] != P_NOROW && pay_next[p] != A_NONE)
/* An asynchronous authorization the webhook has not settled (stalePending). */
#define STALE_PENDING(p) (pay_st[p] == P_PENDING && pay_next[p] == A_NONE && pay_intent[p])
#define QUEUED(p) (wh_q[p] > 0)
#define PROCESSING(p) (gw[p] == G_PROCESSING)

#if NP == 2
#define ANY(M) (M(0) || M(1))
#define PICK(M) if :: M(0) -> p = 0 :: M(1) -> p = 1 fi
#elif NP == 3
#define ANY(M) (M(0) || M(1) || M(2))
#define PICK(M) if :: M(0) -> p = 0 :: M(1) -> p = 1 :: M(2) -> p = 2 fi
#else
#define ANY(M) (M(0) || M(1) || M(2) || M(3))
#define PICK(M) if :: M(0) -> p = 0 :: M(1) -> p = 1 :: M(2) -> p = 2 :: M(3) -> p = 3 fi
#endif

/*
 * PaymentReconcilerService: a pass over a payment that owes a step; and an asynchronous
 * authorization whose webhook has not come, asked at the gateway and decided from the row as the
 * pass read it (recordIntent with no expected step). A crash restarts it. Once nobody else
 * is left and nothing is owed it checks the end state (P3, P4, P5); stuck before that while
 * nobody can move is an invalid end state, which SPIN reports.
 */
proctype Reconciler() {
  byte p; bool locked;
  mtype ans = X_FAILED, s_next = A_NONE;
  bool s_intent, s_gone;
  byte me = ID_RECONCILER;
  mtype who = RECONCILER;

loop:
  do
  :: atomic {
       ANY(DUE) -> PICK(DUE); lock_payment(PBK(p)); claim(p);
       printf("%e: pass over payment %d (owes %e)\n", who, p, s_next)
     };
     advance(p)
#ifndef NO_ASYNC
  :: atomic {
       ANY(STALE_PENDING) -> PICK(STALE_PENDING); snapshot(p);
       printf("%e: payment %d pending without its webhook: asks the gateway\n", who, p);
       gw_retrieve(p, ans)
     };
     if
     CRASH
     :: atomic { ans == X_PROCESSING -> forget(p); p = 0 }        /* touched: asked later */
     :: ans != X_PROCESSING ->
        record_intent(p, A_NONE, ans);
        if
        CRASH
        :: settle(p)
        fi
     fi
#endif
  :: alive == 0 && !ANY(OWES) && !ANY(STALE_PENDING) && !ANY(QUEUED) && !ANY(PROCESSING) ->
     break
  od;
  /* Everything has settled: the end state. */
  atomic {
    printf("%e: everything settled; end-state checks\n", who);
    for (_i : 0 .. NP - 1) {
      printf("  payment %d: %e next %e, intent %e, booking %d %e\n",
             _i, pay_st[_i], pay_next[_i], gw[_i], PBK(_i), bk_st[PBK(_i)]);
      /* P3: a captured payment ends refunded, or its booking confirmed */
      P3_captured_means_confirmed_or_refunded =
        (gw[_i] != G_SUCCEEDED || bk_st[PBK(_i)] == B_CONFIRMED);
      assert(P3_captured_means_confirmed_or_refunded);
      /* P4: no authorization left open, every payment decided */
      P4_no_open_authorization =
        (gw[_i] != G_REQCAP && gw[_i] != G_PROCESSING && pay_next[_i] == A_NONE &&
         pay_st[_i] != P_PENDING && pay_st[_i] != P_AUTHORIZED);
      assert(P4_no_open_authorization)
    }
#ifdef CHECK_LEDGER
    /* P5 (the ledger's rule 2): a confirmed booking is paid by exactly one captured intent */
    for (_k : 1 .. NC) {
      _n = 0;
      for (_i : 0 .. NP - 1) {
        if
        :: PBK(_i) == _k && gw[_i] == G_SUCCEEDED -> _n++
        :: else -> skip
        fi
      }
      P5_confirmed_booking_paid_once = (bk_st[_k] != B_CONFIRMED || _n == 1);
      assert(P5_confirmed_booking_paid_once)
    }
#endif
    goto finished
  };
crashed:
  /* a restart: what it had in memory is gone */
  atomic { unlock_payment(PBK(p)); forget(p); p = 0; goto loop };
finished:
  skip
}

/*
 * POST /payments/webhook with payment_intent.succeeded of an asynchronous card, at least once: a
 * crash before the answer means a redelivery, one extra duplicate may come, and a delivery may
 * never come (the gateway gave up). Applying it: read, then one step conditional on the version
 * that also records the event; a payment already over gets its stray authorization voided; then
 * settleNow.
 */
proctype Webhook() {
  byte p, q; bool seen, applied, locked;
  mtype ans = X_FAILED, s_next = A_NONE, s_st = P_NOROW;
  bool s_intent, s_gone;
  byte me = ID_WEBHOOK;
  mtype who = WEBHOOK;

end_loop:
  do
  :: atomic {
       ANY(QUEUED) -> PICK(QUEUED); q = p;
       if
       :: wh_q[q] = 0;                                           /* never delivered: given up */
          printf("%e: payment_intent.succeeded of payment %d never delivered\n", who, q);
          goto next
       :: printf("%e: payment_intent.succeeded of payment %d delivered\n", who, q)
       fi;
       snapshot(p); s_st = pay_st[p]; seen = wh_seen[p]         /* findForEvent */
     };
again:
     atomic {
       if
       :: seen || s_gone ->                                       /* a duplicate, or unknown */
          wh_seen[p] = true; printf("%e: duplicate or unknown: nothing done\n", who)
       :: !seen && !s_gone && (s_st == P_FAILED || s_st == P_VOIDED) && s_next == A_NONE ->
          /* a late authorization of a payment that is over: give it back */
          if
          :: (pay_dirty[p] & ME_BIT) == 0 ->
             pay_st[p] = P_AUTHORIZED; pay_next[p] = A_VOID; pay_intent[p] = true;
             pay_dirty[p] = 255; wh_seen[p] = true; applied = true;
             printf("%e: payment %d was over: its authorization is to be voided\n", who, p)
          :: else -> snapshot(p); s_st = pay_st[p]; seen = wh_seen[p]; goto again
          fi
       :: !seen && !s_gone && s_st == P_PENDING && (s_next == A_NONE || s_next == A_AUTHORIZE) ->
          if
          :: (pay_dirty[p] & ME_BIT) == 0 ->
             pay_st[p] = P_AUTHORIZED; pay_next[p] = A_CONFIRM; pay_intent[p] = true;
             pay_dirty[p] = 255; wh_seen[p] = true; applied = true;
             printf("%e: payment %d -> P_AUTHORIZED, next A_CONFIRM\n", who, p)
          :: else -> snapshot(p); s_st = pay_st[p]; seen = wh_seen[p]; goto again
          fi
       :: else -> wh_seen[p] = true                              /* nothing to learn from it */
       fi;
       s_st = P_NOROW; seen = false; forget(p)
     };
     if
     CRASH                                                       /* unanswered: redelivered */
     :: applied -> settle(p)                                    /* settleNow */
     :: !applied -> skip
     fi;
     atomic {
       /* answered 200 (and perhaps delivered once more anyway) */
       if
       :: !dup_used -> dup_used = true
       :: wh_q[q] = 0
       fi;
       p = 0; q = 0; applied = false;
       goto end_loop
     };
next:
crashed:
     atomic {
       unlock_payment(PBK(p)); forget(p); p = 0; q = 0; applied = false; seen = false;
       s_st = P_NOROW
     }
  od
}

/* The environment's moves, one branch per row. */
#define LAPSE(x) \
  :: atomic { \
       bk_st[x] == B_HELD && !bk_lapsed[x] -> bk_lapsed[x] = true; \
       printf("time: booking %d's hold lapses\n", x) \
     }
#define SWEEP(x) \
  :: atomic { \
       bk_st[x] == B_HELD && bk_lapsed[x] -> expire_booking(x); \
       printf("sweeper: booking %d expired\n", x); db_invariants() \
     }
#define ASYNC_DONE(x) \
  :: atomic { \
       gw[x] == G_PROCESSING -> gw[x] = G_REQCAP; wh_q[x] = 1; \
       printf("gateway: payment %d's asynchronous authorization succeeds\n", x) \
     }
#define LEASE_LAPSE(x) \
  :: atomic { \
       r_paylock[x] != 0 && lapses < MAXLAPSE -> lapses++; \
       printf("Redis: the payment lease of booking %d lapses under its holder\n", x); \
       r_paylock[x] = 0 \
     }

/*
 * Time and faults: holds lapse; the sweeper expires a lapsed hold; Redis loses every key (restart
 * or FLUSHALL; a failover may also put TIME back); the gateway finishes an asynchronous
 * authorization and queues its payment_intent.succeeded.
 */
proctype Environment() {
  byte x;
end_loop:
  do
  LAPSE(1) LAPSE(2) SWEEP(1) SWEEP(2) LEASE_LAPSE(1) LEASE_LAPSE(2)
#if NC >= 3
  LAPSE(3) SWEEP(3) LEASE_LAPSE(3)
#endif
  ASYNC_DONE(0) ASYNC_DONE(1)
#if NP >= 3
  ASYNC_DONE(2)
#endif
#if NP >= 4
  ASYNC_DONE(3)
#endif
  :: atomic {
       losses < MAXLOSS ->
       losses++;
       for (x : 0 .. NS - 1) { r_ctr[x] = 0 }
       x = 0;
       if
       :: printf("Redis: every key lost\n")
       :: rtime = 1;                                             /* a replica whose clock is behind */
          printf("Redis: every key lost, TIME set back\n")
       fi
     }
  od
}

init {
  atomic {
    alive = NC + 1;
#ifdef DOUBLE_PAY
    alive++;
    run SecondPay();
#endif
    run Customer(1, CUSTOMER_1);
    run Customer(2, CUSTOMER_2);
#if NC >= 3
    run Customer(3, CUSTOMER_3);
#endif
    run Deleter();
    run Reconciler();
    run Webhook();
    run Environment()
  }
}

