/* loadgen — WebSocket and Socket.IO load generator for wsio's benchmarks (bench/run.sh, docs/benchmarks.md).
 *
 * One process, one level-triggered epoll loop, no threads; the client side of the protocol is bench/lg/client.c
 * (WebSocket) and bench/lg/sio.c (Socket.IO over it, with --protocol sio). A message is a WebSocket message, or
 * with Socket.IO an event whose one argument is the payload as a string: 42["echo","..."] in echo mode,
 * 42["bcast","..."] in broadcast mode. A connection counts as open once the Socket.IO namespace accepted it.
 * Modes:
 *   echo       C connections each keep D messages of S bytes in flight (send D, then one more per echo, or
 *              with --batch the next D once all D are back); msgs/s and round-trip latency. Every echo is
 *              compared byte for byte with what was sent.
 *   broadcast  C receivers plus one sender on the broadcast path. The sender stamps each message with its send
 *              time and a sequence number and keeps at most D in flight: a message leaves the window once every
 *              receiver has it (--batch: the next D leave together once the window is empty). Each receiver
 *              must get the messages in the order sent, each once. Deliveries/s (summed over receivers) and
 *              delivery latency.
 *   idle       C connections held open T seconds; the server's RSS and the kernel's memory per connection.
 *   storm      C Socket.IO clients that reconnect as socket.io-client does, with connection state recovery
 *              (bench/lg/storm.c); a driver (tests/reliability/storm.py) cuts their connections or restarts
 *              the server and reads what happened. Commands, one a line on stdin (a pipe): `mark` starts a
 *              measurement, `reset` marks and cuts every connection at once (RST), `stats` prints one line of
 *              key=value pairs, `quit` (or the end of stdin) prints it and exits.
 * Traffic starts once every connection is open; a warm-up precedes the measured window. With --server-pid the
 * server's CPU time (utime + stime) is read at both ends of the window, which gives msgs_per_server_cpu_s: the
 * figure that stays put when the machine is shared. Prints one line of key=value pairs on stdout. */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "lg/client.h"
#include "lg/sio.h"
#include "lg/stats.h"
#include "lg/storm.h"
#include "ws/frame.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

enum { MODE_ECHO, MODE_BCAST, MODE_IDLE, MODE_STORM };
enum { PH_CONNECT, PH_WARMUP, PH_MEASURE, PH_DONE };

#define STAMP 24 /* broadcast payload head: 16 hex digits of send time (ns) and 8 of the sequence number */

/* Per connection, beside its lg_conn. */
typedef struct peer {
  uint64_t *sent_at;  /* echo: send times of the messages in flight, a ring of depth entries */
  uint32_t head, inflight;
  uint8_t sender;     /* broadcast: the one connection that publishes */
  uint8_t ready;      /* counted as open: the WebSocket (and with Socket.IO, the namespace) accepted it */
  uint8_t slow;       /* broadcast: a receiver that stops reading once open (--slow); not in the window */
  uint64_t next;      /* broadcast: the sequence number this receiver should get next (TCP keeps order) */
} peer;

typedef struct snap {
  uint64_t t;
  double server_cpu, client_cpu;
  long rss_kib, sock_kib, slab_kib;
  long long pressure_us;
} snap;

static struct {
  /* options */
  int mode;
  int conns, depth, size, max_pending, binary, server_pid, sio, slow, batch;
  double seconds, warmup, connect_timeout;
  long interval_us;
  /* connections */
  lg_client cl;
  lg_conn *c;
  peer *p;
  int total;          /* connections to open: the receivers, then the sender last */
  int next_open, pending, open, failed, closed, first_errno;
  uint8_t *pkt;       /* what one message sends: the payload, or the Socket.IO packet around it */
  size_t pkt_len, stamp_at; /* broadcast: where in pkt the stamp goes (the payload's first byte) */
  uint8_t *frame;     /* broadcast: the frame a receiver expects, header and pkt (its stamp varies) */
  size_t frame_len, frame_stamp; /* and where the stamp lies in it */
  /* phases and the measured window */
  int phase;
  uint64_t t_phase;
  snap base, snap0, snap1; /* base: before any connection; snap0, snap1: the window's ends */
  uint64_t msgs, mismatches;
  lg_hist hist;
  /* broadcast window */
  uint64_t next_seq, oldest, sent, t_next_send, t_progress;
  uint64_t ring_mask; /* the window's slots: a power of two at least depth, so a slot is seq & ring_mask */
  uint32_t *win;      /* deliveries so far of each message in flight, by slot */
  struct sent { char stamp[STAMP]; uint64_t t0; } *sent_msgs; /* each message in flight, by slot */
  int receivers_open, stalled;
  /* storm */
  lg_storm storm;
  int max_attempts;
} g;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *msg) {
  fprintf(stderr, "loadgen: %s\n", msg);
  exit(2);
}

static int opcode(void) { return g.binary ? WS_OP_BINARY : WS_OP_TEXT; }

/* ---- echo ------------------------------------------------------------------------------------------ */

static void echo_send(lg_conn *c, uint64_t now) {
  peer *p = c->data;
  lg_conn_send(&g.cl, c, opcode(), g.pkt, g.pkt_len);
  p->sent_at[(p->head + p->inflight) % (uint32_t)g.depth] = now;
  p->inflight++;
}

static void echo_message(lg_conn *c, uint64_t now) {
  peer *p = c->data;
  if (p->inflight == 0) { /* an echo of nothing */
    g.mismatches++;
    return;
  }
  uint64_t t0 = p->sent_at[p->head];
  p->head = (p->head + 1) % (uint32_t)g.depth;
  p->inflight--;
  if (c->bad || c->msg_len != g.pkt_len) {
    g.mismatches++; /* wrong bytes came back: an error, not a message */
  } else if (g.phase == PH_MEASURE) {
    g.msgs++;
    lg_hist_add(&g.hist, now - t0);
  }
  if (g.phase == PH_DONE) return;
  if (!g.batch) echo_send(c, now);
  else if (p->inflight == 0) /* the whole batch is back: the next one leaves in one write */
    for (int i = 0; i < g.depth; i++) echo_send(c, now);
}

/* ---- broadcast ------------------------------------------------------------------------------------- */

static void bcast_send(lg_conn *s, uint64_t now) {
  char stamp[STAMP + 1];
  snprintf(stamp, sizeof stamp, "%016llx%08x", (unsigned long long)now, (unsigned)(g.next_seq & 0xFFFFFFFFu));
  memcpy(g.pkt + g.stamp_at, stamp, STAMP);
  struct sent *e = &g.sent_msgs[g.next_seq & g.ring_mask];
  memcpy(e->stamp, stamp, STAMP);
  e->t0 = now;
  lg_conn_send(&g.cl, s, opcode(), g.pkt, g.pkt_len);
  g.next_seq++;
  if (g.phase == PH_MEASURE) g.sent++;
}

/* Sends what the window and the pacing allow. */
static void bcast_pump(uint64_t now) {
  lg_conn *s = &g.c[g.total - 1];
  if (s->state != LG_OPEN || g.phase == PH_CONNECT || g.phase == PH_DONE) return;
  uint64_t step = (uint64_t)g.interval_us * 1000u;
  if (g.batch && g.next_seq != g.oldest) return; /* batches: the next once all of this one is delivered */
  while (g.next_seq - g.oldest < (uint64_t)g.depth) {
    if (step) {
      if (now < g.t_next_send) break;
      g.t_next_send += step;
      /* After a stall, no burst to catch up: the schedule restarts from now. */
      if (g.t_next_send + step * (uint64_t)g.depth < now) g.t_next_send = now + step;
    }
    bcast_send(s, now);
  }
}

static uint64_t hex_value(const uint8_t *p, int n, int *ok) {
  uint64_t v = 0;
  for (int i = 0; i < n; i++) {
    unsigned d;
    if (p[i] >= '0' && p[i] <= '9') d = p[i] - '0';
    else if (p[i] >= 'a' && p[i] <= 'f') d = p[i] - 'a' + 10u;
    else { *ok = 0; return 0; }
    v = v << 4 | d;
  }
  return v;
}

/* Delivery of message seq to receiver p: counted, and the window moves once every receiver has its oldest. */
static void bcast_delivered(peer *p, uint64_t seq, uint64_t t0, uint64_t now) {
  p->next = seq + 1;
  if (g.phase == PH_MEASURE) {
    g.msgs++;
    lg_hist_add(&g.hist, now - t0);
  }
  g.win[seq & g.ring_mask]++;
  while (g.oldest < g.next_seq && g.win[g.oldest & g.ring_mask] >= (uint32_t)g.receivers_open) {
    g.win[g.oldest & g.ring_mask] = 0;
    g.oldest++;
    g.t_progress = now;
  }
}

static void bcast_message(lg_conn *c, uint64_t now) {
  peer *p = c->data;
  if (p->sender) return; /* the sender gets its own messages too; they are not deliveries */
  /* lg_client checks what follows the stamp; what precedes it (the event's head) is checked here. */
  int ok = !c->bad && c->msg_len == g.pkt_len && memcmp(c->prefix, g.pkt, g.stamp_at) == 0;
  const uint8_t *stamp = c->prefix + g.stamp_at;
  uint64_t seq = p->next, t0;
  /* The common case: the message this receiver expects, recognised by comparing its stamp with the one
   * sent (24 bytes) rather than reading the hex digits. Anything else is decoded and judged. */
  const struct sent *e = &g.sent_msgs[seq & g.ring_mask];
  if (ok && seq >= g.oldest && seq < g.next_seq && memcmp(stamp, e->stamp, STAMP) == 0) {
    t0 = e->t0;
  } else {
    t0 = hex_value(stamp, 16, &ok);
    uint64_t seq32 = hex_value(stamp + 16, 8, &ok);
    /* The wire has the low 32 bits of the sequence; the window, far smaller, gives back the rest. */
    seq = g.oldest + ((seq32 - g.oldest) & 0xFFFFFFFFu);
    if (!ok || seq >= g.next_seq || seq < p->next) { /* not sent, or a repeat or reordering on one stream */
      g.mismatches++;
      return;
    }
  }
  bcast_delivered(p, seq, t0, now);
}

/* a[0..n) == b[0..n) without a call: 16 bytes a step with SSE2 (8 without), the last step overlapping the
 * one before instead of a byte loop. A delivery compares three short runs. */
static inline int same(const uint8_t *a, const uint8_t *b, size_t n) {
#if defined(__SSE2__)
  if (n >= 16) {
    __m128i d = _mm_setzero_si128();
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
      d = _mm_or_si128(d, _mm_xor_si128(_mm_loadu_si128((const __m128i *)(const void *)(a + i)),
                                        _mm_loadu_si128((const __m128i *)(const void *)(b + i))));
    if (i < n)
      d = _mm_or_si128(d, _mm_xor_si128(_mm_loadu_si128((const __m128i *)(const void *)(a + n - 16)),
                                        _mm_loadu_si128((const __m128i *)(const void *)(b + n - 16))));
    return _mm_movemask_epi8(_mm_cmpeq_epi8(d, _mm_setzero_si128())) == 0xFFFF;
  }
#endif
  uint64_t diff = 0, x, y;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    memcpy(&x, a + i, 8);
    memcpy(&y, b + i, 8);
    diff |= x ^ y;
  }
  if (i < n && n >= 8) {
    memcpy(&x, a + n - 8, 8);
    memcpy(&y, b + n - 8, 8);
    return (diff | (x ^ y)) == 0;
  }
  for (; i < n; i++) diff |= (uint64_t)(a[i] ^ b[i]);
  return diff == 0;
}

/* The common case without a copy: a whole message in one read, equal to what was sent for the sequence
 * number this receiver expects (head, stamp and tail compared). Anything else takes the general path. */
static int bcast_whole(lg_client *cl, lg_conn *c, int op, const uint8_t *m, size_t len, uint64_t now) {
  (void)cl;
  peer *p = c->data;
  size_t tail = g.stamp_at + STAMP;
  if (op != opcode() || len != g.pkt_len || !p->ready || !same(m, g.pkt, g.stamp_at) ||
      !same(m + tail, g.pkt + tail, len - tail))
    return 0;
  if (p->sender) return 1; /* its own messages: not deliveries */
  uint64_t seq = p->next;
  const struct sent *e = &g.sent_msgs[seq & g.ring_mask];
  if (seq < g.oldest || seq >= g.next_seq || !same(m + g.stamp_at, (const uint8_t *)e->stamp, STAMP)) return 0;
  bcast_delivered(p, seq, e->t0, now);
  return 1;
}

/* The steady state of a receiver without a copy or a call per frame: the frames of one read that are each
 * exactly the frame sent for the next sequence number this receiver expects (header, head, stamp and tail
 * compared), checked and counted in one loop; the window moves once at the end. Stops at the first frame that
 * is anything else (the end of the read, a part of a frame, a ping, a mismatch), which the general path
 * then parses and judges. */
static size_t bcast_run(lg_client *cl, lg_conn *c, const uint8_t *m, size_t n, uint64_t now) {
  (void)cl;
  peer *p = c->data;
  const size_t flen = g.frame_len, at = g.frame_stamp, tail = at + STAMP;
  if (!p->ready || n < flen) return 0;
  size_t used = 0;
  uint64_t seq = p->next, first = seq;
  const int measure = g.phase == PH_MEASURE;
  /* Latencies of consecutive messages mostly share a histogram bucket: counted as runs, not one by one. */
  unsigned bucket = 0;
  uint64_t in_bucket = 0, max = 0;
  while (n - used >= flen) {
    const uint8_t *f = m + used;
    if (!same(f, g.frame, at) || !same(f + tail, g.frame + tail, flen - tail)) break;
    if (!p->sender) {
      if (seq >= g.next_seq || seq < g.oldest) break; /* not in flight: the general path judges it */
      const struct sent *e = &g.sent_msgs[seq & g.ring_mask];
      if (!same(f + at, (const uint8_t *)e->stamp, STAMP)) break;
      if (measure) {
        uint64_t v = now - e->t0;
        unsigned b = lg_hist_index(v);
        if (b != bucket && in_bucket) {
          lg_hist_add_n(&g.hist, bucket, in_bucket, max);
          in_bucket = 0;
        }
        bucket = b;
        in_bucket++;
        if (v > max) max = v;
      }
      g.win[seq & g.ring_mask]++;
      seq++;
    }
    used += flen;
  }
  if (in_bucket) lg_hist_add_n(&g.hist, bucket, in_bucket, max);
  if (seq == first) return used; /* the sender's own messages, or nothing */
  p->next = seq;
  if (measure) g.msgs += seq - first;
  while (g.oldest < g.next_seq && g.win[g.oldest & g.ring_mask] >= (uint32_t)g.receivers_open) {
    g.win[g.oldest & g.ring_mask] = 0;
    g.oldest++;
    g.t_progress = now;
  }
  return used;
}

/* ---- connection events ------------------------------------------------------------------------------ */

/* The connection is usable: counted open, and a latecomer joins the echo traffic. */
static void conn_ready(lg_conn *c, uint64_t now) {
  peer *p = c->data;
  p->ready = 1;
  g.pending--;
  g.open++;
  if (p->slow) { /* never read again: the server's buffers for it fill up, the others must not notice */
    epoll_ctl(g.cl.ep, EPOLL_CTL_DEL, c->fd, NULL);
    return;
  }
  if (g.mode == MODE_BCAST && !p->sender) g.receivers_open++;
  if (g.phase != PH_CONNECT && g.mode == MODE_ECHO) /* a latecomer after the connect timeout */
    for (int i = 0; i < g.depth; i++) echo_send(c, now);
}

static void on_open(lg_client *cl, lg_conn *c, uint64_t now) {
  (void)cl;
  if (g.sio) lg_sio_start(c); /* open once the namespace answers */
  else conn_ready(c, now);
}

/* Socket.IO: handles the protocol's own packets; returns whether the message is an event for the mode. */
static int sio_message(lg_client *cl, lg_conn *c, uint64_t now) {
  static int told;
  const char *why = NULL;
  switch (lg_sio_message(cl, c, NULL, &why)) {
  case LG_SIO_EVENT: return 1;
  case LG_SIO_READY: conn_ready(c, now); return 0;
  case LG_SIO_CONSUMED: return 0;
  default:
    if (!told++) fprintf(stderr, "loadgen: Socket.IO: %s: %.*s\n", why, (int)(c->msg_len < 40 ? c->msg_len : 40),
                         (const char *)c->prefix);
    if (((peer *)c->data)->ready) cl->protocol_errors++; /* else the connect counts as failed */
    lg_conn_close(cl, c, EPROTO);
    return 0;
  }
}

static void on_message(lg_client *cl, lg_conn *c, uint64_t now) {
  if (g.mode == MODE_STORM) {
    lg_storm_message(&g.storm, c, now);
    return;
  }
  if (g.sio && !sio_message(cl, c, now)) return;
  if (g.mode == MODE_ECHO) echo_message(c, now);
  else if (g.mode == MODE_BCAST) bcast_message(c, now);
}

static void on_close(lg_client *cl, lg_conn *c, int was_open, int err) {
  (void)cl;
  (void)was_open; /* the WebSocket's; with Socket.IO a connection is open later */
  if (g.mode == MODE_STORM) {
    lg_storm_closed(&g.storm, c, err, now_ns());
    return;
  }
  if (!((peer *)c->data)->ready) {
    g.pending--;
    g.failed++;
    if (!g.first_errno) g.first_errno = err ? err : EPROTO;
    return;
  }
  g.open--;
  g.closed++;
  if (g.mode == MODE_BCAST && !((peer *)c->data)->sender && !((peer *)c->data)->slow) g.receivers_open--;
}

/* ---- phases and the report ------------------------------------------------------------------------ */

static void take(snap *s, uint64_t now) {
  s->t = now;
  s->server_cpu = g.server_pid ? lg_proc_cpu_s(g.server_pid) : 0;
  s->client_cpu = lg_self_cpu_s();
  s->rss_kib = g.server_pid ? lg_proc_rss_kib(g.server_pid) : 0;
  s->sock_kib = lg_sockstat_tcp_kib();
  s->slab_kib = lg_meminfo_slab_kib();
  s->pressure_us = lg_cpu_pressure_us();
}

static void start_traffic(uint64_t now) {
  if (g.mode == MODE_ECHO) {
    for (int i = 0; i < g.total; i++)
      if (g.c[i].state == LG_OPEN)
        for (int k = 0; k < g.depth; k++) echo_send(&g.c[i], now);
  }
  g.t_next_send = now;
  g.t_progress = now;
}

static void finish(uint64_t now) {
  take(&g.snap1, now);
  g.phase = PH_DONE;
}

/* Advances the phases; returns how long the loop may wait for events, in ns. */
static uint64_t tick(uint64_t now) {
  double in_phase = (double)(now - g.t_phase) / 1e9;
  if (g.phase == PH_CONNECT) {
    int all = g.next_open == g.total && g.pending == 0;
    if (!all && in_phase <= g.connect_timeout) return 10000000u;
    if (!all) fprintf(stderr, "loadgen: connect timeout, %d of %d open\n", g.open, g.total);
    fprintf(stderr, "loadgen: %d connections open in %.2f s (%d failed)\n", g.open, in_phase, g.failed);
    if (g.mode == MODE_BCAST && g.c[g.total - 1].state != LG_OPEN) die("the broadcast sender did not connect");
    g.phase = g.mode == MODE_IDLE ? PH_MEASURE : PH_WARMUP;
    g.t_phase = now;
    take(&g.snap0, now);
    start_traffic(now);
    return 0;
  }
  if (g.phase == PH_WARMUP && in_phase >= g.warmup) {
    g.phase = PH_MEASURE;
    g.t_phase = now;
    g.msgs = g.cl.bytes_in = 0;
    lg_hist_reset(&g.hist);
    take(&g.snap0, now);
    in_phase = 0;
  }
  if (g.phase == PH_MEASURE && in_phase >= g.seconds) {
    finish(now);
    return 0;
  }
  if (g.mode == MODE_BCAST && now - g.t_progress > 10000000000ull) {
    fprintf(stderr, "loadgen: broadcast made no progress for 10 s (window %llu..%llu, %d receivers)\n",
            (unsigned long long)g.oldest, (unsigned long long)g.next_seq, g.receivers_open);
    g.stalled = 1;
    finish(now);
    return 0;
  }
  double left = (g.phase == PH_WARMUP ? g.warmup : g.seconds) - in_phase;
  uint64_t wait = left > 0 ? (uint64_t)(left * 1e9) : 0;
  if (wait > 100000000u) wait = 100000000u;
  /* A paced sender with room in its window wakes up when the next message is due. */
  if (g.mode == MODE_BCAST && g.interval_us > 0 && g.next_seq - g.oldest < (uint64_t)g.depth) {
    uint64_t due = g.t_next_send > now ? g.t_next_send - now : 0;
    if (due < wait) wait = due;
  }
  return wait;
}

static void run(void) {
  struct epoll_event evs[1024];
  g.t_phase = now_ns();
  take(&g.base, g.t_phase);
  g.snap0 = g.base;
  while (g.phase != PH_DONE) {
    uint64_t now = now_ns();
    /* Bounded connects in flight; the broadcast sender (last) only once every receiver is open. */
    while (g.phase == PH_CONNECT && g.next_open < g.total && g.pending < g.max_pending &&
           !(g.mode == MODE_BCAST && g.next_open == g.total - 1 && g.pending > 0)) {
      lg_conn *c = &g.c[g.next_open];
      if (lg_conn_start(&g.cl, c, g.next_open) < 0) die("cannot open a socket: lower --conns or raise the limit");
      g.next_open++;
      g.pending++;
    }
    uint64_t wait = tick(now);
    if (g.phase == PH_DONE) break;
    struct timespec ts = {.tv_sec = (time_t)(wait / 1000000000u), .tv_nsec = (long)(wait % 1000000000u)};
    int n = epoll_pwait2(g.cl.ep, evs, 1024, &ts, NULL);
    if (n < 0 && errno != EINTR) die("epoll_pwait2 failed");
    now = now_ns();
    lg_client_dispatch(&g.cl, evs, n > 0 ? n : 0, now);
    if (g.mode == MODE_BCAST) bcast_pump(now);
    lg_client_flush(&g.cl);
    if (g.phase != PH_CONNECT && g.open == 0) {
      fprintf(stderr, "loadgen: every connection is closed\n");
      finish(now);
    }
  }
}

/* ---- storm ------------------------------------------------------------------------------------------ */

/* Runs the commands of the complete lines read from stdin; returns 0 once told to quit or at its end. */
static int storm_commands(uint64_t now) {
  static char line[256];
  static size_t len;
  ssize_t n = read(0, line + len, sizeof line - 1 - len);
  if (n == 0) return 0;
  if (n < 0) return errno == EAGAIN || errno == EINTR;
  len += (size_t)n;
  char *nl;
  while ((nl = memchr(line, '\n', len))) {
    *nl = 0;
    if (!strcmp(line, "quit")) return 0;
    if (!strcmp(line, "mark")) lg_storm_mark(&g.storm, now);
    else if (!strcmp(line, "reset")) lg_storm_reset(&g.storm, now);
    else if (!strcmp(line, "stats")) lg_storm_print(&g.storm, stdout, now);
    else fprintf(stderr, "loadgen: unknown command '%s' (mark, reset, stats, quit)\n", line);
    len -= (size_t)(nl + 1 - line);
    memmove(line, nl + 1, len);
  }
  if (len == sizeof line - 1) len = 0; /* a line too long for any command */
  return 1;
}

static void run_storm(void) {
  static int stdin_tag;
  struct epoll_event evs[1024], in = {.events = EPOLLIN, .data.ptr = &stdin_tag};
  fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
  if (epoll_ctl(g.cl.ep, EPOLL_CTL_ADD, 0, &in) < 0) die("--mode storm reads its commands from a pipe on stdin");
  if (lg_storm_init(&g.storm, &g.cl, g.c, g.total, g.max_pending, (uint32_t)g.max_attempts, now_ns()) < 0)
    die("out of memory");
  for (;;) {
    uint64_t wait = lg_storm_poll(&g.storm, now_ns());
    lg_client_flush(&g.cl);
    struct timespec ts = {.tv_sec = (time_t)(wait / 1000000000u), .tv_nsec = (long)(wait % 1000000000u)};
    int n = epoll_pwait2(g.cl.ep, evs, 1024, &ts, NULL);
    if (n < 0 && errno != EINTR) die("epoll_pwait2 failed");
    uint64_t now = now_ns();
    int m = 0, cmd = 0;
    for (int i = 0; i < n; i++) {
      if (evs[i].data.ptr == &stdin_tag) cmd = 1;
      else evs[m++] = evs[i];
    }
    lg_client_dispatch(&g.cl, evs, m, now);
    lg_client_flush(&g.cl);
    if (cmd && !storm_commands(now)) break;
  }
  lg_storm_print(&g.storm, stdout, now_ns());
}

static void report(void) {
  const snap *a = &g.snap0, *b = &g.snap1;
  double secs = (double)(b->t - a->t) / 1e9;
  if (secs <= 0) secs = 1e-9; /* nothing measured: every rate comes out 0 */
  double scpu = b->server_cpu - a->server_cpu, ccpu = b->client_cpu - a->client_cpu;
  static const char *names[] = {"echo", "broadcast", "idle"};
  printf("mode=%s protocol=%s slow=%d conns=%d open=%d failed=%d closed=%d seconds=%.2f", names[g.mode],
         g.sio ? "sio" : "ws", g.slow, g.conns, g.open, g.failed, g.closed, secs);
  if (g.mode != MODE_IDLE) {
    printf(" depth=%d batch=%d size=%d msgs=%llu msgs_per_sec=%.0f", g.depth, g.batch, g.size,
           (unsigned long long)g.msgs, (double)g.msgs / secs);
    if (g.mode == MODE_BCAST)
      printf(" deliveries_per_sec=%.0f sent=%llu sent_per_sec=%.1f interval_us=%ld stalled=%d",
             (double)g.msgs / secs, (unsigned long long)g.sent, (double)g.sent / secs, g.interval_us, g.stalled);
    printf(" mbytes_in_per_sec=%.1f p50_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f",
           (double)g.cl.bytes_in / secs / 1e6, lg_hist_quantile(&g.hist, 0.50) / 1e3,
           lg_hist_quantile(&g.hist, 0.99) / 1e3, lg_hist_quantile(&g.hist, 0.999) / 1e3,
           lg_hist_quantile(&g.hist, 1.0) / 1e3);
  } else {
    double k = g.open > 0 ? 1.0 / g.open : 0.0;
    printf(" rss_before_kib=%ld rss_open_kib=%ld rss_kib=%ld rss_per_conn_kib=%.2f sock_mem_before_kib=%ld"
           " sock_mem_kib=%ld sock_mem_per_conn_kib=%.2f slab_per_conn_kib=%.2f",
           g.base.rss_kib, a->rss_kib, b->rss_kib, (double)(b->rss_kib - g.base.rss_kib) * k, g.base.sock_kib,
           b->sock_kib, (double)(b->sock_kib - g.base.sock_kib) * k, (double)(b->slab_kib - g.base.slab_kib) * k);
  }
  if (g.server_pid) {
    printf(" server_cpu_s=%.2f server_cpu_util=%.2f", scpu, scpu / secs);
    if (g.mode != MODE_IDLE)
      printf(" msgs_per_server_cpu_s=%.0f rss_kib=%ld", scpu > 0 ? (double)g.msgs / scpu : 0.0, b->rss_kib);
  }
  printf(" client_cpu_s=%.2f client_cpu_util=%.2f protocol_errors=%llu mismatches=%llu", ccpu, ccpu / secs,
         (unsigned long long)g.cl.protocol_errors, (unsigned long long)g.mismatches);
  if (a->pressure_us >= 0 && b->pressure_us >= 0)
    printf(" cpu_pressure=%.2f", (double)(b->pressure_us - a->pressure_us) / 1e6 / secs);
  if (g.first_errno) printf(" first_error=%s", strerror(g.first_errno));
  printf("\n");
  fflush(stdout);
}

/* ---- options ------------------------------------------------------------------------------------- */

static void usage(void) {
  fprintf(stderr,
          "usage: loadgen --mode echo|broadcast|idle|storm [options]\n"
          "  --protocol ws|sio (ws) plain WebSocket messages, or Socket.IO events over WebSocket\n"
          "  --host H (127.0.0.1) --port P (3000) --path /p (/echo; /bcast in broadcast mode;\n"
          "                       /socket.io/?EIO=4&transport=websocket with Socket.IO)\n"
          "  --conns C (100)      connections (broadcast: receivers; one sender is added)\n"
          "  --depth D (16)       echo: messages in flight per connection; broadcast: messages in flight\n"
          "  --size S (32)        payload bytes (broadcast: at least 24); with Socket.IO, the length of\n"
          "                       the event's string argument\n"
          "  --seconds T (10)     measured window (idle: how long connections are held)\n"
          "  --warmup W (2)       seconds of traffic before the window\n"
          "  --batch              echo, broadcast: send D messages together, and the next D only once all\n"
          "                       of them have come back (echo) or reached every receiver (broadcast)\n"
          "  --interval US (0)    broadcast: one message every US microseconds (0: as the window allows)\n"
          "  --server-pid PID     read the server's CPU time and RSS from /proc\n"
          "  --sources N (1)      bind client sockets to 127.0.0.1..127.0.0.N round robin\n"
          "  --pending N (256)    most connects and handshakes in progress at once\n"
          "  --connect-timeout S (120)\n"
          "  --binary             binary frames (default text; not with Socket.IO)\n"
          "  --header 'Name: value'  one more request header (repeatable), e.g. what a browser sends\n"
          "  --slow N (0)         broadcast: N receivers stop reading once open (slow consumers); the\n"
          "                       figures are the other receivers'\n"
          "  --reconnect-attempts N (0)  storm: a client gives up after N failed attempts in a row (0: never)\n");
  exit(2);
}

/* Appends "line\r\n" to the extra request headers. */
static void add_header(const char *line) {
  static char *all;
  static size_t len;
  size_t n = strlen(line);
  char *p = realloc(all, len + n + 3);
  if (!p) die("out of memory");
  memcpy(p + len, line, n);
  memcpy(p + len + n, "\r\n", 3);
  all = p;
  len += n + 2;
  g.cl.headers = all;
}

static void parse_args(int argc, char **argv) {
  static const struct option opts[] = {
      {"mode", 1, 0, 'm'},    {"host", 1, 0, 'h'},          {"port", 1, 0, 'p'},       {"path", 1, 0, 'P'},
      {"conns", 1, 0, 'c'},   {"depth", 1, 0, 'd'},         {"size", 1, 0, 's'},       {"seconds", 1, 0, 't'},
      {"warmup", 1, 0, 'w'},  {"interval", 1, 0, 'i'},      {"server-pid", 1, 0, 'S'}, {"sources", 1, 0, 'n'},
      {"pending", 1, 0, 'q'}, {"connect-timeout", 1, 0, 'T'}, {"binary", 0, 0, 'b'},   {"protocol", 1, 0, 'o'},
      {"header", 1, 0, 'H'},  {"slow", 1, 0, 'L'},          {"reconnect-attempts", 1, 0, 'R'},
      {"batch", 0, 0, 'B'},   {0, 0, 0, 0}};
  g.mode = -1;
  g.cl.host = "127.0.0.1";
  g.cl.port = 3000;
  g.cl.sources = 1;
  g.conns = 100;
  g.depth = 16;
  g.size = 32;
  g.seconds = 10;
  g.warmup = 2;
  g.max_pending = 256;
  g.connect_timeout = 120;
  int o;
  while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (o) {
    case 'm':
      g.mode = !strcmp(optarg, "echo") ? MODE_ECHO : !strcmp(optarg, "broadcast") ? MODE_BCAST
               : !strcmp(optarg, "idle") ? MODE_IDLE : !strcmp(optarg, "storm") ? MODE_STORM : -1;
      break;
    case 'h': g.cl.host = optarg; break;
    case 'p': g.cl.port = atoi(optarg); break;
    case 'P': g.cl.path = optarg; break;
    case 'c': g.conns = atoi(optarg); break;
    case 'd': g.depth = atoi(optarg); break;
    case 's': g.size = atoi(optarg); break;
    case 't': g.seconds = atof(optarg); break;
    case 'w': g.warmup = atof(optarg); break;
    case 'i': g.interval_us = atol(optarg); break;
    case 'S': g.server_pid = atoi(optarg); break;
    case 'n': g.cl.sources = atoi(optarg); break;
    case 'q': g.max_pending = atoi(optarg); break;
    case 'T': g.connect_timeout = atof(optarg); break;
    case 'b': g.binary = 1; break;
    case 'B': g.batch = 1; break;
    case 'o':
      g.sio = !strcmp(optarg, "sio") ? 1 : !strcmp(optarg, "ws") ? 0 : -1;
      break;
    case 'H': add_header(optarg); break;
    case 'L': g.slow = atoi(optarg); break;
    case 'R': g.max_attempts = atoi(optarg); break;
    default: usage();
    }
  }
  if (g.mode == MODE_STORM) g.sio = 1; /* Socket.IO clients, whatever --protocol said */
  if (optind != argc || g.mode < 0 || g.conns < 1 || g.depth < 1 || g.size < 0 || g.cl.sources < 1 ||
      g.cl.sources > 254 || g.max_pending < 1 || g.seconds <= 0 || g.warmup < 0 || g.interval_us < 0 ||
      g.sio < 0 || (g.sio && g.binary) || g.max_attempts < 0 || (g.batch && g.interval_us > 0))
    usage();
  if (g.mode == MODE_BCAST && g.size < STAMP) die("--size must be at least 24 in broadcast mode");
  if (!g.cl.path)
    g.cl.path = g.sio ? "/socket.io/?EIO=4&transport=websocket" : g.mode == MODE_BCAST ? "/bcast" : "/echo";
}

int main(int argc, char **argv) {
  parse_args(argc, argv);
  g.total = g.conns + (g.mode == MODE_BCAST);
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && (rlim_t)g.total + 16 > rl.rlim_cur) {
    fprintf(stderr, "loadgen: %d connections need more descriptors than the limit, %llu\n", g.total,
            (unsigned long long)rl.rlim_cur);
    return 2;
  }
  struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai;
  if (getaddrinfo(g.cl.host, NULL, &hints, &ai) != 0) die("cannot resolve --host");
  memcpy(&g.cl.addr, ai->ai_addr, sizeof g.cl.addr);
  g.cl.addr.sin_port = htons((uint16_t)g.cl.port);
  freeaddrinfo(ai);

  if (getrandom(&g.cl.rng, sizeof g.cl.rng, 0) != sizeof g.cl.rng) g.cl.rng = now_ns();
  g.cl.cbs = (lg_client_cbs){.on_open = on_open, .on_message = on_message, .on_close = on_close};
  if (g.mode == MODE_BCAST) {
    g.cl.cbs.on_whole = bcast_whole;
    g.cl.cbs.on_run = bcast_run;
  }
  g.c = calloc((size_t)g.total, sizeof *g.c);
  g.p = calloc((size_t)g.total, sizeof *g.p);
  uint8_t *payload = malloc((size_t)g.size + 1);
  const char *event = g.mode == MODE_BCAST ? "bcast" : "echo";
  g.pkt = malloc(lg_sio_event_size(event, (size_t)g.size));
  size_t slots = 1;
  while (slots < (size_t)g.depth) slots *= 2;
  g.ring_mask = slots - 1;
  g.win = calloc(slots, sizeof *g.win);
  g.sent_msgs = calloc(slots, sizeof *g.sent_msgs);
  if (lg_client_init(&g.cl, g.total) < 0 || !g.c || !g.p || !payload || !g.pkt || !g.win || !g.sent_msgs)
    die("out of memory");
  for (int i = 0; i < g.size; i++) payload[i] = (uint8_t)('a' + i % 26);
  if (g.sio) {
    g.pkt_len = lg_sio_event_encode(g.pkt, event, payload, (size_t)g.size, &g.stamp_at);
  } else {
    memcpy(g.pkt, payload, (size_t)g.size);
    g.pkt_len = (size_t)g.size;
  }
  free(payload);
  if (g.mode == MODE_BCAST) { /* what a receiver expects: an unmasked final frame around pkt */
    if (!(g.frame = malloc(WS_FRAME_HEADER_MAX + g.pkt_len))) die("out of memory");
    size_t hl = ws_frame_header_encode(g.frame, 1, 0, opcode(), g.pkt_len, NULL);
    memcpy(g.frame + hl, g.pkt, g.pkt_len);
    g.frame_len = hl + g.pkt_len;
    g.frame_stamp = hl + g.stamp_at;
  }
  /* Echoes must match what was sent whole; broadcasts after the stamp (bcast_message checks before it). */
  g.cl.expect = g.mode == MODE_STORM ? NULL : g.pkt;
  g.cl.expect_len = g.pkt_len;
  g.cl.check_from = g.mode == MODE_BCAST ? g.stamp_at + STAMP : 0;
  for (int i = 0; i < g.total; i++) {
    g.c[i].data = &g.p[i];
    if (g.mode == MODE_ECHO && !(g.p[i].sent_at = malloc((size_t)g.depth * sizeof(uint64_t))))
      die("out of memory");
  }
  if (g.mode == MODE_BCAST) g.p[g.total - 1].sender = 1;
  for (int i = 0; i < g.slow && i < g.total - 1; i++) g.p[i].slow = 1;

  if (g.mode == MODE_STORM) {
    run_storm();
    return g.storm.gave_up == 0 && g.cl.protocol_errors == 0 ? 0 : 1;
  }
  run();
  report();
  int rc = g.open > 0 && g.cl.protocol_errors == 0 && g.mismatches == 0 ? 0 : 1;
  for (int i = 0; i < g.total; i++) lg_conn_close(&g.cl, &g.c[i], 0);
  return rc;
}
