#include "lg/storm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define DELAY_NS 1000000000ull     /* reconnectionDelay */
#define DELAY_MAX_NS 5000000000ull /* reconnectionDelayMax */
#define JITTER 0.5                 /* randomizationFactor */
#define TIMEOUT_NS 20000000000ull  /* timeout: one attempt, connect to the namespace's answer */
#define SCAN_NS 5000000ull         /* the due list is a scan: not more often than this */

int lg_storm_init(lg_storm *st, lg_client *cl, lg_conn *conns, int n, int max_pending, uint32_t max_attempts,
                  uint64_t now) {
  memset(st, 0, sizeof *st);
  st->s = calloc((size_t)n, sizeof *st->s);
  if (!st->s) return -1;
  st->cl = cl;
  st->conns = conns;
  st->n = n;
  st->max_pending = max_pending;
  st->max_attempts = max_attempts;
  st->attempt_timeout = TIMEOUT_NS;
  for (int i = 0; i < n; i++) st->s[i].due = now;
  lg_storm_mark(st, now);
  return 0;
}

/* socket.io-client's back-off (its backo2): base x 2^attempts, moved up or down by up to JITTER of itself,
 * then capped. */
static uint64_t backoff_ns(lg_storm *st, uint32_t attempts) {
  double ms = (double)(DELAY_NS / 1000000u) * (double)(1ull << (attempts < 20 ? attempts : 20));
  double r = (double)lg_client_rand(st->cl) / 4294967296.0;
  double dev = (double)(uint64_t)(r * JITTER * ms);
  ms = ((uint64_t)(r * 10) & 1) == 0 ? ms - dev : ms + dev;
  uint64_t ns = (uint64_t)ms * 1000000u;
  return ns < DELAY_MAX_NS ? ns : DELAY_MAX_NS;
}

/* The next attempt after a loss or a failure, or giving up. */
static void schedule(lg_storm *st, lg_storm_client *s, uint64_t now) {
  if (st->max_attempts && s->attempts >= st->max_attempts) {
    s->gave_up = 1;
    st->gave_up++;
    return;
  }
  s->due = now + backoff_ns(st, s->attempts++);
  if (s->due < st->next_scan) st->next_scan = s->due;
}

static int index_of(const lg_storm *st, const lg_conn *c) { return (int)(c - st->conns); }

uint64_t lg_storm_poll(lg_storm *st, uint64_t now) {
  if (now < st->next_scan) return st->next_scan - now;
  uint64_t next = now + 100000000u;
  for (int i = 0; i < st->n; i++) {
    lg_storm_client *s = &st->s[i];
    lg_conn *c = &st->conns[i];
    if (s->started && now - s->started >= st->attempt_timeout) lg_conn_close(st->cl, c, ETIMEDOUT);
    if (s->due && s->due <= now) {
      if (!s->ever && st->pending >= st->max_pending) { /* the first connects' ramp */
        next = now;
        continue;
      }
      s->due = 0;
      s->started = now;
      st->pending++;
      st->attempts++;
      if (lg_conn_start(st->cl, c, i) < 0) {
        fprintf(stderr, "loadgen: cannot open a socket: %s\n", strerror(errno));
        exit(2);
      }
    }
    /* What comes next for this client (a connect may have failed at once and scheduled another). */
    if (s->started && s->started + st->attempt_timeout < next) next = s->started + st->attempt_timeout;
    if (s->due && s->due < next) next = s->due;
  }
  st->next_scan = next < now + SCAN_NS ? now + SCAN_NS : next;
  return st->next_scan - now;
}

static void on_ready(lg_storm *st, lg_storm_client *s, uint64_t now) {
  s->started = 0;
  s->attempts = 0;
  s->ready = 1;
  s->ever = 1;
  st->pending--;
  st->ready++;
  if (s->back) return;
  s->back = 1;
  st->back++;
  st->recovered += s->rec.recovered;
  st->last_back = now;
  if (st->back * 2 >= st->n && !st->half_back) st->half_back = now;
  uint64_t b = (now - st->mark) / LG_STORM_BUCKET_NS;
  st->rate[b < LG_STORM_BUCKETS ? b : LG_STORM_BUCKETS - 1]++;
}

/* `42["tick",K` with K < 64: a tick for the count. */
static void on_event(lg_storm *st, lg_storm_client *s, const lg_conn *c) {
  static const char head[] = "42[\"tick\",";
  size_t h = sizeof head - 1, n = c->msg_len < LG_PREFIX ? (size_t)c->msg_len : LG_PREFIX;
  st->events++;
  if (n <= h || memcmp(c->prefix, head, h) != 0) return;
  unsigned k = 0;
  size_t i = h;
  for (; i < n && c->prefix[i] >= '0' && c->prefix[i] <= '9' && k < 64; i++) k = k * 10 + (c->prefix[i] - '0');
  if (i == h || k >= 64) return;
  if (s->ticks >> k & 1) {
    st->dup_ticks++;
    return;
  }
  s->ticks |= 1ull << k;
  st->tick_count[k]++;
}

void lg_storm_message(lg_storm *st, lg_conn *c, uint64_t now) {
  static int told;
  lg_storm_client *s = &st->s[index_of(st, c)];
  const char *why = NULL;
  switch (lg_sio_message(st->cl, c, &s->rec, &why)) {
  case LG_SIO_READY: on_ready(st, s, now); break;
  case LG_SIO_EVENT: on_event(st, s, c); break;
  case LG_SIO_CONSUMED: break;
  default:
    if (!told++) fprintf(stderr, "loadgen: Socket.IO: %s\n", why);
    lg_conn_close(st->cl, c, EPROTO);
  }
}

static int fail_kind(int err) {
  switch (err) {
  case ECONNREFUSED: return LG_FAIL_REFUSED;
  case ECONNRESET: case EPIPE: return LG_FAIL_RESET;
  case ETIMEDOUT: return LG_FAIL_TIMEOUT;
  case EPROTO: case EMSGSIZE: return LG_FAIL_PROTOCOL;
  default: return LG_FAIL_OTHER;
  }
}

void lg_storm_closed(lg_storm *st, lg_conn *c, int err, uint64_t now) {
  lg_storm_client *s = &st->s[index_of(st, c)];
  if (s->ready) {
    s->ready = 0;
    st->ready--;
    st->lost++;
  } else {
    st->pending--;
    int k = fail_kind(err);
    st->fail_last[k] = now;
    if (!st->fail[k]++) /* the first of each kind since the mark says when and where */
      fprintf(stderr, "loadgen: storm: first failed attempt (%s) %.3f s after the mark, %.3f s into the attempt, %s\n",
              strerror(err), (double)(now - st->mark) / 1e9, (double)(now - s->started) / 1e9,
              c->sio == 0 ? "before the WebSocket opened" : "in the Socket.IO handshake");
    s->started = 0;
  }
  schedule(st, s, now);
}

void lg_storm_mark(lg_storm *st, uint64_t now) {
  st->mark = now;
  st->half_back = st->last_back = 0;
  st->back = st->recovered = 0;
  st->lost = st->attempts = st->events = st->dup_ticks = 0;
  memset(st->fail, 0, sizeof st->fail);
  memset(st->fail_last, 0, sizeof st->fail_last);
  memset(st->rate, 0, sizeof st->rate);
  for (int i = 0; i < st->n; i++) st->s[i].back = 0;
}

void lg_storm_reset(lg_storm *st, uint64_t now) {
  lg_storm_mark(st, now);
  for (int i = 0; i < st->n; i++)
    if (st->s[i].ready) lg_conn_close(st->cl, &st->conns[i], 0);
}

void lg_storm_print(const lg_storm *st, FILE *out, uint64_t now) {
  /* The peak over any 1 s window of 100 ms buckets. */
  uint64_t peak = 0, sum = 0, w = 1000000000ull / LG_STORM_BUCKET_NS;
  for (uint64_t i = 0; i < LG_STORM_BUCKETS; i++) {
    sum += st->rate[i];
    if (i >= w) sum -= st->rate[i - w];
    if (sum > peak) peak = sum;
  }
  double since = (double)(now - st->mark) / 1e9;
  fprintf(out,
          "clients=%d ready=%d gave_up=%d mark_s=%.3f since_mark_s=%.2f back=%d recovered=%d lost=%llu"
          " attempts=%llu refused=%llu reset=%llu timeout=%llu protocol=%llu other=%llu",
          st->n, st->ready, st->gave_up, (double)st->mark / 1e9, since, st->back, st->recovered,
          (unsigned long long)st->lost, (unsigned long long)st->attempts,
          (unsigned long long)st->fail[LG_FAIL_REFUSED], (unsigned long long)st->fail[LG_FAIL_RESET],
          (unsigned long long)st->fail[LG_FAIL_TIMEOUT], (unsigned long long)st->fail[LG_FAIL_PROTOCOL],
          (unsigned long long)st->fail[LG_FAIL_OTHER]);
  /* When the last failure of any kind but refused happened: after a restart, the new process is to blame
   * only for what failed once it was running. */
  uint64_t last = 0;
  for (int k = 0; k < LG_FAIL_KINDS; k++)
    if (k != LG_FAIL_REFUSED && st->fail_last[k] > last) last = st->fail_last[k];
  fprintf(out, " last_failure_s=%.3f", last ? (double)(last - st->mark) / 1e9 : -1.0);
  fprintf(out, " half_back_s=%.3f all_back_s=%.3f peak_per_s=%llu events=%llu dup_ticks=%llu ticks=",
          st->half_back ? (double)(st->half_back - st->mark) / 1e9 : -1.0,
          st->back == st->n ? (double)(st->last_back - st->mark) / 1e9 : -1.0, (unsigned long long)peak,
          (unsigned long long)st->events, (unsigned long long)st->dup_ticks);
  int any = 0;
  for (int k = 0; k < 64; k++)
    if (st->tick_count[k]) fprintf(out, "%s%d:%llu", any++ ? "," : "", k, (unsigned long long)st->tick_count[k]);
  fprintf(out, "%s\n", any ? "" : "-");
  fflush(out);
}
