/* lg_storm — reconnecting Socket.IO clients for reconnect storms (loadgen --mode storm).
 *
 * Each client behaves as socket.io-client does with its defaults. When its connection is lost, or an attempt
 * fails, it waits the randomized exponential back-off — reconnectionDelay 1 s doubled per failed attempt, at
 * most reconnectionDelayMax 5 s, randomizationFactor 0.5 (so the first wait is 0.5..1.5 s) — and connects
 * again, sending its pid and last offset with CONNECT (lg_sio_recovery); `recovered` is the answer carrying
 * the same pid. An attempt that has not reached the namespace's CONNECT answer within the timeout (20 s, the
 * client's `timeout`) fails; after max_attempts failed attempts in a row (0: never, the client's default
 * reconnectionAttempts Infinity) the client gives up. First connects are a ramp of at most `pending` in
 * progress at once; reconnects follow each client's own back-off and nothing else: that is the storm.
 *
 * What happens is counted from a mark (lg_storm_mark): clients back since, when, at what rate, recovered or
 * not, the failed attempts by cause, and the `tick` events (`42["tick",K,...]`, K < 64) each client got. */
#ifndef WSIO_BENCH_LG_STORM_H
#define WSIO_BENCH_LG_STORM_H

#include <stdint.h>
#include <stdio.h>

#include "lg/client.h"
#include "lg/sio.h"

#define LG_STORM_BUCKET_NS 100000000ull /* the handshake rate's resolution: 100 ms */
#define LG_STORM_BUCKETS 6000           /* 10 minutes after a mark */

enum { LG_FAIL_REFUSED, LG_FAIL_RESET, LG_FAIL_TIMEOUT, LG_FAIL_PROTOCOL, LG_FAIL_OTHER, LG_FAIL_KINDS };

typedef struct lg_storm_client {
  lg_sio_recovery rec;
  uint64_t due;      /* when the next attempt starts; 0: none scheduled */
  uint64_t started;  /* when the attempt in progress started; 0: none in progress */
  uint64_t ticks;    /* bit K: tick K received */
  uint32_t attempts; /* back-off steps since the last success */
  uint8_t ready;     /* the namespace accepted the current connection */
  uint8_t ever;      /* was ready once: later attempts are reconnects */
  uint8_t back;      /* ready once since the mark */
  uint8_t gave_up;
} lg_storm_client;

typedef struct lg_storm {
  lg_client *cl;
  lg_conn *conns;           /* n connections, borrowed; conns[i] is client i */
  lg_storm_client *s;       /* n clients, owned */
  int n, pending, max_pending;
  uint32_t max_attempts;
  uint64_t attempt_timeout; /* ns */
  uint64_t next_scan;       /* no due attempt or expiry before this */
  int ready, gave_up;       /* now */
  /* since the mark */
  uint64_t mark, half_back, last_back;
  int back, recovered;
  uint64_t lost, attempts, events, dup_ticks, fail[LG_FAIL_KINDS];
  uint64_t fail_last[LG_FAIL_KINDS]; /* when the last of each kind happened */
  uint32_t rate[LG_STORM_BUCKETS]; /* clients back per bucket */
  uint64_t tick_count[64];          /* clients that got tick K, all time */
} lg_storm;

/* Sets st up for n clients on conns (zeroed, with cl's callbacks routed to the functions below); every
 * client's first attempt is due at once. Returns 0, or -1 without memory. */
int lg_storm_init(lg_storm *st, lg_client *cl, lg_conn *conns, int n, int max_pending, uint32_t max_attempts,
                  uint64_t now);

/* Starts the attempts that are due and fails those past the timeout. Returns how long until the next one may
 * be due, in ns (at most 100 ms). */
uint64_t lg_storm_poll(lg_storm *st, uint64_t now);

/* From lg_client's on_message: runs the Socket.IO client side (lg_sio_message with the client's recovery). */
void lg_storm_message(lg_storm *st, lg_conn *c, uint64_t now);

/* From lg_client's on_close: counts the loss or the failed attempt and schedules the next attempt. */
void lg_storm_closed(lg_storm *st, lg_conn *c, int err, uint64_t now);

/* Starts a new measurement: the counters "since the mark" restart at now. */
void lg_storm_mark(lg_storm *st, uint64_t now);

/* Marks, then cuts every open connection at once (RST), as a network path or a load balancer dropping them
 * would; each client then reconnects on its own back-off. */
void lg_storm_reset(lg_storm *st, uint64_t now);

/* Prints one line of key=value pairs: the state now and the counts since the mark (docs/reliability.md). */
void lg_storm_print(const lg_storm *st, FILE *out, uint64_t now);

#endif
