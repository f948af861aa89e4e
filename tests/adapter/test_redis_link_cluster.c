/* Unit tests of src/adapter/redis_link_cluster.c against fake cluster nodes on the loop: a command or a
 * sharded message redirected (-MOVED, -ASK) to a node the link has not met waits for the first connection
 * to it and is answered there; one redirected to a node that cannot be reached fails, counted; commands for
 * a new node wait in order, at most RLINK_WAIT_MAX of them, and no longer than its first connection attempt.
 * The link over a real growing cluster is tests/interop/test_redis_cluster_grow.mjs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "adapter/redis_link.h"
#include "wsio.h"

/* ---- a fake cluster node: RESP requests in, canned answers out ---- */

#define FAKE_CONNS 32

typedef struct fake fake;

typedef struct fake_conn {
  uv_tcp_t tcp;
  fake *f;
  redisReader *rd;
  unsigned held; /* PINGs not answered yet */
  int closed;
} fake_conn;

struct fake {
  uv_loop_t *loop;
  uv_tcp_t srv;
  int port;
  int hold;         /* the connection handshake's PING waits for fake_release */
  char slots[256];  /* the CLUSTER SLOTS answer */
  char reply[128];  /* the answer to any other command; "": the second argument back, as a bulk string */
  char log[1 << 16]; /* commands received, "NAME arg|" each (arguments past the first left out) */
  fake_conn *conns[FAKE_CONNS]; /* NULL once closed */
  int nconns;
};

static void fake_send(fake_conn *c, const char *s, size_t n) {
  if (c->closed || !n) return;
  uv_buf_t b = uv_buf_init((char *)s, (unsigned)n);
  int rc = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
  assert_int_equal(rc, (int)n); /* a few bytes on loopback */
}

static void fake_answer(fake_conn *c, const redisReply *r) {
  fake *f = c->f;
  if (r->type != REDIS_REPLY_ARRAY || !r->elements) return;
  const char *name = r->element[0]->str;
  size_t at = strlen(f->log);
  snprintf(f->log + at, sizeof f->log - at, "%s %s|", name, r->elements > 1 ? r->element[1]->str : "");
  char out[300];
  if (!strcmp(name, "PING")) {
    if (f->hold) c->held++;
    else fake_send(c, "+PONG\r\n", 7);
  } else if (!strcmp(name, "CLUSTER")) {
    fake_send(c, f->slots, strlen(f->slots));
  } else if (!strcmp(name, "ASKING")) {
    fake_send(c, "+OK\r\n", 5);
  } else if (f->reply[0]) {
    fake_send(c, f->reply, strlen(f->reply));
  } else {
    const redisReply *a = r->element[r->elements > 1 ? 1 : 0];
    int k = snprintf(out, sizeof out, "$%zu\r\n%s\r\n", a->len, a->str);
    fake_send(c, out, (size_t)k);
  }
}

static void fake_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  (void)h;
  static char mem[65536];
  (void)hint;
  *b = uv_buf_init(mem, sizeof mem);
}

static void conn_closed(uv_handle_t *h) {
  fake_conn *c = h->data;
  for (int i = 0; i < c->f->nconns; i++)
    if (c->f->conns[i] == c) c->f->conns[i] = NULL;
  redisReaderFree(c->rd);
  free(c);
}

static void fake_close(fake_conn *c) {
  if (c->closed) return;
  c->closed = 1;
  uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

static void fake_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  fake_conn *c = s->data;
  if (n < 0) {
    fake_close(c);
    return;
  }
  redisReaderFeed(c->rd, b->base, (size_t)n);
  void *r;
  while (!c->closed && redisReaderGetReply(c->rd, &r) == REDIS_OK && r) {
    fake_answer(c, r);
    freeReplyObject(r);
  }
}

static void fake_accept(uv_stream_t *srv, int status) {
  fake *f = srv->data;
  assert_int_equal(status, 0);
  fake_conn *c = calloc(1, sizeof *c);
  assert_non_null(c);
  c->f = f;
  c->rd = redisReaderCreate();
  uv_tcp_init(f->loop, &c->tcp);
  c->tcp.data = c;
  assert_int_equal(uv_accept(srv, (uv_stream_t *)&c->tcp), 0);
  assert_true(f->nconns < FAKE_CONNS);
  f->conns[f->nconns++] = c;
  uv_read_start((uv_stream_t *)&c->tcp, fake_alloc, fake_read);
}

/* A listener on a free port of 127.0.0.1. */
static void fake_start(fake *f, uv_loop_t *loop) {
  memset(f, 0, sizeof *f);
  f->loop = loop;
  uv_tcp_init(loop, &f->srv);
  f->srv.data = f;
  struct sockaddr_in sa;
  uv_ip4_addr("127.0.0.1", 0, &sa);
  assert_int_equal(uv_tcp_bind(&f->srv, (const struct sockaddr *)&sa, 0), 0);
  assert_int_equal(uv_listen((uv_stream_t *)&f->srv, 16, fake_accept), 0);
  struct sockaddr_storage ss;
  int len = sizeof ss;
  uv_tcp_getsockname(&f->srv, (struct sockaddr *)&ss, &len);
  f->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* Every slot served by the node on port. */
static void fake_slots(fake *f, int port) {
  snprintf(f->slots, sizeof f->slots, "*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n$9\r\n127.0.0.1\r\n:%d\r\n", port);
}

static void fake_release(fake *f) {
  f->hold = 0;
  for (int i = 0; i < f->nconns; i++)
    for (fake_conn *c = f->conns[i]; c && c->held; c->held--) fake_send(c, "+PONG\r\n", 7);
}

static void fake_stop(fake *f) {
  for (int i = 0; i < f->nconns; i++)
    if (f->conns[i]) fake_close(f->conns[i]);
  uv_close((uv_handle_t *)&f->srv, NULL);
}

/* A port nothing listens on (bound, then closed). */
static int dead_port(uv_loop_t *loop) {
  fake f;
  fake_start(&f, loop);
  fake_stop(&f);
  uv_run(loop, UV_RUN_NOWAIT);
  return f.port;
}

/* ---- the link ---- */

static uv_loop_t loop;
static fake A, B;
static rlink *link_;

static void on_push(void *ud, redisReply *r) { (void)ud, (void)r; }

static void link_start(int sharded) {
  redis_url u = {.host = "127.0.0.1", .port = A.port};
  rlink_config cfg = {.url = &u, .sharded = sharded, .mode = RLINK_CLUSTER, .connect_timeout_ms = 500};
  link_ = rlink_new(&loop, &cfg, on_push, NULL);
  assert_non_null(link_);
}

static void deadline_fired(uv_timer_t *t) { *(int *)t->data = 1; }

/* Runs the loop until *counter reaches want; fails after ms. */
static void run_until(const int *counter, int want, unsigned ms) {
  uv_timer_t t;
  int late = 0;
  uv_timer_init(&loop, &t);
  t.data = &late;
  uv_timer_start(&t, deadline_fired, ms, 0);
  while (*counter < want && !late) uv_run(&loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(&loop, UV_RUN_NOWAIT);
  assert_true(*counter >= want);
}

/* Runs the loop for ms. */
static void run_for(unsigned ms) {
  int done = 0;
  uv_timer_t t;
  uv_timer_init(&loop, &t);
  t.data = &done;
  uv_timer_start(&t, deadline_fired, ms, 0);
  while (!done) uv_run(&loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(&loop, UV_RUN_NOWAIT);
}

/* Until the link has read a topology with a primary in it. */
static void wait_topology(void) {
  rlink_stats st;
  for (int i = 0; i < 200; i++) {
    rlink_stats_get(link_, &st);
    if (st.refreshes > 0 && st.primaries > 0) return;
    run_for(10);
  }
  fail_msg("no topology");
}

static void link_stop(void) {
  rlink_free(link_);
  link_ = NULL;
  fake_stop(&A);
  fake_stop(&B);
  for (int i = 0; i < 20; i++) uv_run(&loop, UV_RUN_NOWAIT);
}

/* What the commands' callbacks got: global, as the link may call back until it is freed (teardown). */
typedef struct answers {
  int n;           /* callbacks run */
  int nulls;       /* of which without a reply */
  int in_order;    /* replies came back in the order sent ("k0", "k1", ...) */
  char last[64];
} answers;
static answers ans;

static void got(void *ud, redisReply *r) {
  answers *a = ud;
  if (!r) {
    a->nulls++;
  } else {
    char want[32];
    snprintf(want, sizeof want, "k%d", a->n - a->nulls);
    if (r->type != REDIS_REPLY_STRING || strcmp(r->str, want) != 0) a->in_order = 0;
    snprintf(a->last, sizeof a->last, "%.*s", (int)r->len, r->str);
  }
  a->n++;
}

static int get(const char *key, answers *a) {
  const char *argv[2] = {"GET", key};
  size_t lens[2] = {3, strlen(key)};
  return rlink_command(link_, key, lens[1], got, a, 2, argv, lens);
}

static int setup(void **st) {
  (void)st;
  uv_loop_init(&loop);
  fake_start(&A, &loop);
  fake_start(&B, &loop);
  ans = (answers){.in_order = 1};
  return 0;
}

static int teardown(void **st) {
  (void)st;
  link_stop();
  assert_int_equal(uv_loop_close(&loop), 0);
  return 0;
}

/* ---- the tests ---- */

/* A's answer redirects (kind: "MOVED" or "ASK") to B, which the link has not met: the command waits for
 * B's first connection and is answered there; B's log must show what was sent to it. */
static void redirect_to_new_node(const char *kind, const char *sent_to_b) {
  fake_slots(&A, A.port);
  fake_slots(&B, A.port);
  snprintf(A.reply, sizeof A.reply, "-%s 3300 127.0.0.1:%d\r\n", kind, B.port);
  link_start(0);
  wait_topology();
  answers *a = &ans;
  assert_int_equal(get("k0", a), 0);
  run_until(&a->n, 1, 3000);
  assert_int_equal(a->nulls, 0);
  assert_string_equal(a->last, "k0");
  assert_non_null(strstr(B.log, sent_to_b));
  rlink_stats s;
  rlink_stats_get(link_, &s);
  assert_true(s.redirects >= 1);
}

static void test_moved_to_new_node(void **st) {
  (void)st;
  redirect_to_new_node("MOVED", "GET k0|");
}

static void test_ask_to_new_node(void **st) {
  (void)st;
  redirect_to_new_node("ASK", "ASKING |GET k0|");
}

static void test_moved_to_unreachable_node(void **st) {
  (void)st;
  int gone = dead_port(&loop);
  fake_slots(&A, A.port);
  fake_slots(&B, A.port);
  snprintf(A.reply, sizeof A.reply, "-MOVED 3300 127.0.0.1:%d\r\n", gone);
  link_start(1);
  wait_topology();
  answers *a = &ans;
  assert_int_equal(get("k0", a), 0);
  run_until(&a->n, 1, 3000);
  assert_int_equal(a->nulls, 1); /* failed as for a node away */
  /* a sharded message the same way: counted lost */
  assert_int_equal(rlink_publish(link_, "ch", 2, "m", 1), 0);
  rlink_stats s;
  for (int i = 0; i < 300; i++) {
    rlink_stats_get(link_, &s);
    if (s.lost) break;
    run_for(10);
  }
  assert_int_equal(s.lost, 1);
}

/* The topology names a primary the link has not met: commands for it wait for its first connection, in
 * order, up to RLINK_WAIT_MAX. */
static void test_new_node_waits_in_order(void **st) {
  (void)st;
  B.hold = 1;
  fake_slots(&A, B.port);
  fake_slots(&B, B.port);
  link_start(0);
  wait_topology();
  answers *a = &ans;
  char key[32];
  for (int i = 0; i < RLINK_WAIT_MAX; i++) {
    snprintf(key, sizeof key, "k%d", i);
    assert_int_equal(get(key, a), 0);
  }
  assert_int_equal(get("one-too-many", a), WSIO_ECLOSED);
  assert_int_equal(a->n, 0);
  fake_release(&B);
  run_until(&a->n, RLINK_WAIT_MAX, 5000);
  assert_int_equal(a->nulls, 0);
  assert_true(a->in_order);
}

/* A new primary that never completes the handshake: what waited fails once the attempt times out. */
static void test_new_node_that_never_answers(void **st) {
  (void)st;
  B.hold = 1;
  fake_slots(&A, B.port);
  fake_slots(&B, B.port);
  link_start(0);
  wait_topology();
  answers *a = &ans;
  for (int i = 0; i < 3; i++) assert_int_equal(get("k", a), 0);
  run_until(&a->n, 3, 3000); /* the connect timeout is 500 ms */
  assert_int_equal(a->nulls, 3);
  assert_int_equal(get("k", a), WSIO_ECLOSED); /* no longer new: refused at once, as for a node away */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_moved_to_new_node, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ask_to_new_node, setup, teardown),
      cmocka_unit_test_setup_teardown(test_moved_to_unreachable_node, setup, teardown),
      cmocka_unit_test_setup_teardown(test_new_node_waits_in_order, setup, teardown),
      cmocka_unit_test_setup_teardown(test_new_node_that_never_answers, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
