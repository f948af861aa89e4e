/* net_conn: moving a connection to another loop (net_conn_detach, net_conn_adopt), as workers do with a
 * request for a session another worker owns: the bytes read so far are fed again on the new loop (in one
 * call, however many), the socket keeps working there, and the old loop lets go of it without closing it.
 * Its place in a per-address table goes with it: counted all the way when the loops share the table, moved
 * into the new loop's table otherwise, and given back when a hand-over is dropped or the connection closes. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <uv.h>

#include "api/raw_client.h"
#include "net/iplimit.h"
#include "net/net.h"

typedef struct side {
  net_loop net;
  buf got;          /* bytes this side's protocol saw */
  int calls;        /* its on_data calls */
  int closed;
  uint32_t flags;   /* the connection's flags at its last on_data */
} side;

static side a, b;
static uv_loop_t uva, uvb;

/* Loop b's protocol: echoes every byte back, upper-cased, so the client can tell who answered. */
static void b_data(net_conn *c, uint8_t *data, size_t len) {
  b.calls++;
  b.flags = c->flags;
  buf_append(&b.got, data, len);
  for (size_t i = 0; i < len; i++)
    if (data[i] >= 'a' && data[i] <= 'z') data[i] = (uint8_t)(data[i] - 32);
  net_conn_write(c, data, len);
}
static void b_close(net_conn *c) {
  (void)c;
  b.closed++;
}
static const net_proto b_proto = {.on_data = b_data, .on_close = b_close};

/* Bytes loop a hands over besides those it read (0: only those), as a worker hands a whole request. */
static size_t handed_extra;
/* 1: the hand-over is dropped instead of adopted, as when the receiving worker stops first. */
static int handover_dropped;

/* Loop a's protocol: on the first bytes, hands the connection (and those bytes) to loop b. */
static void a_data(net_conn *c, uint8_t *data, size_t len) {
  buf_append(&a.got, data, len);
  net_ipent *place = c->ip;
  net_handover h;
  assert_int_equal(net_conn_detach(c, &h), 0);
  assert_true(h.fd >= 0);
  assert_null(h.tls);
  assert_ptr_equal(h.ip, place);
  assert_ptr_equal(h.iplimit, place ? a.net.iplimit : NULL);
  assert_null(c->ip); /* a's close releases nothing */
  if (handover_dropped) {
    net_handover_drop(&h);
    assert_int_equal(h.fd, -1);
    assert_null(h.ip);
    return;
  }
  if (!handed_extra) {
    assert_int_equal(net_conn_adopt(&b.net, &h, data, len), 0);
    assert_int_equal(h.fd, -1);
    assert_null(h.iplimit);
    return;
  }
  uint8_t *all = malloc(len + handed_extra);
  assert_non_null(all);
  memcpy(all, data, len);
  memset(all + len, 'x', handed_extra);
  assert_int_equal(net_conn_adopt(&b.net, &h, all, len + handed_extra), 0);
  free(all);
}
static void a_close(net_conn *c) {
  (void)c;
  a.closed++; /* must not run: a detached connection closes without its protocol */
}
static const net_proto a_proto = {.on_data = a_data, .on_close = a_close};

static void spin(int fd_unused) {
  (void)fd_unused;
  for (int i = 0; i < 20; i++) {
    uv_run(&uva, UV_RUN_NOWAIT);
    uv_run(&uvb, UV_RUN_NOWAIT);
    usleep(2000);
  }
}

static void loops_start(void) {
  handed_extra = 0;
  handover_dropped = 0;
  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);
  uv_loop_init(&uva);
  uv_loop_init(&uvb);
  assert_int_equal(net_loop_init(&a.net, &uva), 0);
  assert_int_equal(net_loop_init(&b.net, &uvb), 0);
  a.net.accept_proto = &a_proto;
  b.net.accept_proto = &b_proto;
  assert_int_equal(net_listen(&a.net, "127.0.0.1", 0), 0);
}

static void loops_end(void) {
  net_loop_close(&a.net);
  net_loop_close(&b.net);
  uv_run(&uva, UV_RUN_DEFAULT);
  uv_run(&uvb, UV_RUN_DEFAULT);
  net_loop_free(&a.net);
  net_loop_free(&b.net);
  assert_int_equal(uv_loop_close(&uva), 0);
  assert_int_equal(uv_loop_close(&uvb), 0);
  net_iplimit_unref(a.net.iplimit);
  net_iplimit_unref(b.net.iplimit);
  buf_free(&a.got);
  buf_free(&b.got);
}

/* What the per-address table would say to one more connection from 127.0.0.1, leaving it as it was:
 * NET_IP_OK, NET_IP_OVER (max_conns taken) or NET_IP_DROP (twice max_conns). */
static int next_from_loopback(net_iplimit *t) {
  struct sockaddr_in sa = {.sin_family = AF_INET};
  assert_int_equal(inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr), 1);
  net_ipent *e;
  int rc = net_iplimit_acquire(t, (const struct sockaddr *)&sa, net_iplimit_now(), &e);
  net_iplimit_release(t, e, net_iplimit_now());
  return rc;
}

/* A place in t held by the test itself (one more connection from 127.0.0.1). */
static net_ipent *take_place(net_iplimit *t) {
  struct sockaddr_in sa = {.sin_family = AF_INET};
  assert_int_equal(inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr), 1);
  net_ipent *e;
  assert_int_not_equal(net_iplimit_acquire(t, (const struct sockaddr *)&sa, net_iplimit_now(), &e), NET_IP_DROP);
  return e;
}

static net_iplimit *table(uint32_t max_conns) {
  net_iplimit_config cfg = {.max_conns = max_conns};
  net_iplimit *t = net_iplimit_new(&cfg);
  assert_non_null(t);
  return t;
}

static uint64_t table_stat(net_iplimit *t, int which) {
  net_iplimit_stats st;
  net_iplimit_stats_get(t, &st);
  return which == 0 ? st.entries : which == 1 ? st.refused : st.dropped;
}

/* Dials a, sends "hello" and lets the loops run: a hands the connection over. Returns the client's fd. */
static int dial_and_hand_over(void) {
  int fd = raw_dial(net_listener_port(&a.net, 0));
  send_all(fd, "hello", 5);
  spin(fd);
  return fd;
}

static void test_detach_adopt(void **state) {
  (void)state;
  loops_start();
  int port = net_listener_port(&a.net, 0);
  int fd = raw_dial(port);
  send_all(fd, "hello", 5);
  spin(fd);
  /* b got the bytes a had read, and answered them on the same socket. */
  assert_int_equal(a.got.len, 5);
  assert_int_equal(b.got.len, 5);
  assert_memory_equal(b.got.data, "hello", 5);
  char reply[16];
  read_exact(fd, reply, 5);
  assert_memory_equal(reply, "HELLO", 5);
  /* The socket lives on b now: more bytes go there only. */
  send_all(fd, "more", 4);
  spin(fd);
  read_exact(fd, reply, 4);
  assert_memory_equal(reply, "MORE", 4);
  assert_int_equal(a.got.len, 5);
  assert_int_equal(a.net.stats.connections, 0);
  assert_int_equal(b.net.stats.connections, 1);
  assert_int_equal(a.closed, 0);
  assert_int_equal(b.net.stats.handoffs, 1);
  /* The peer's close reaches b. */
  close(fd);
  spin(-1);
  assert_int_equal(b.closed, 1);
  assert_int_equal(b.net.stats.connections, 0);
  loops_end();
}

/* More bytes than one read holds are handed over in one call: a request among them that the protocol
 * hands on again must take every byte after it along, which it could not from a partial call. */
static void test_adopt_long(void **state) {
  (void)state;
  loops_start();
  handed_extra = 3 * NET_READ_BUFFER;
  int fd = raw_dial(net_listener_port(&a.net, 0));
  send_all(fd, "hello", 5);
  spin(fd);
  assert_int_equal(b.calls, 1);
  assert_int_equal(b.got.len, 5 + handed_extra);
  assert_memory_equal(b.got.data, "hello", 5);
  close(fd);
  spin(-1);
  assert_int_equal(b.closed, 1);
  loops_end();
}

/* Loops sharing one table (workers with one limiter): the handed connection holds its place the whole way
 * and on b, so the limit still counts it; its close on b gives the place back, once. */
static void test_handover_shared_table(void **state) {
  (void)state;
  loops_start();
  net_iplimit *t = table(1);
  a.net.iplimit = net_iplimit_ref(t);
  b.net.iplimit = net_iplimit_ref(t);
  int fd = dial_and_hand_over();
  assert_int_equal(b.net.stats.handoffs, 1);
  assert_int_equal(b.calls, 1);
  assert_false(b.flags & NET_CONN_IPOVER);
  assert_int_equal(a.net.stats.connections, 0);
  assert_int_equal(b.net.stats.connections, 1);
  /* Closed on a, living on b: still counted. */
  assert_int_equal(next_from_loopback(t), NET_IP_OVER);
  assert_int_equal(table_stat(t, 0), 1);
  /* So the next connection accepted on a is over the limit. */
  int second = raw_dial(net_listener_port(&a.net, 0));
  spin(second);
  assert_int_equal(a.net.stats.ip_refused, 1);
  assert_int_equal(a.net.stats.connections, 1);
  assert_int_equal(next_from_loopback(t), NET_IP_DROP);
  close(second);
  spin(-1);
  assert_int_equal(a.net.stats.connections, 0);
  assert_int_equal(next_from_loopback(t), NET_IP_OVER);
  /* The handed connection closes on b: the address is free again, and not below zero. */
  close(fd);
  spin(-1);
  assert_int_equal(b.closed, 1);
  assert_int_equal(next_from_loopback(t), NET_IP_OK);
  net_ipent *p = take_place(t);
  assert_int_equal(next_from_loopback(t), NET_IP_OVER);
  net_iplimit_release(t, p, net_iplimit_now());
  assert_int_equal(b.net.stats.ip_refused, 0);
  loops_end();
  net_iplimit_unref(t);
}

/* A hand-over that is dropped (the receiving worker stopped first) closes the socket and gives the place
 * back; nothing runs on either side. */
static void test_handover_dropped(void **state) {
  (void)state;
  loops_start();
  handover_dropped = 1;
  net_iplimit *t = table(1);
  a.net.iplimit = net_iplimit_ref(t);
  b.net.iplimit = net_iplimit_ref(t);
  int fd = dial_and_hand_over();
  char byte;
  assert_int_equal(read(fd, &byte, 1), 0); /* the peer sees the close */
  close(fd);
  assert_int_equal(a.closed, 0);
  assert_int_equal(b.calls, 0);
  assert_int_equal(a.net.stats.connections + b.net.stats.connections, 0);
  assert_int_equal(next_from_loopback(t), NET_IP_OK);
  net_ipent *p = take_place(t);
  assert_int_equal(next_from_loopback(t), NET_IP_OVER);
  net_iplimit_release(t, p, net_iplimit_now());
  loops_end();
  net_iplimit_unref(t);
}

/* Loops with tables of their own: the place moves from a's table to b's, where b's limit decides as at
 * accept (over it: NET_CONN_IPOVER; past twice it: closed at once). A table that outlives none of its
 * loops is still there for the release (the hand-over holds a reference). */
static void test_handover_other_table(void **state) {
  (void)state;
  loops_start();
  net_iplimit *ta = table(1), *tb = table(1);
  a.net.iplimit = ta;
  b.net.iplimit = tb;
  int fd = dial_and_hand_over();
  assert_int_equal(b.calls, 1);
  assert_false(b.flags & NET_CONN_IPOVER);
  assert_int_equal(next_from_loopback(ta), NET_IP_OK);
  assert_int_equal(next_from_loopback(tb), NET_IP_OVER);
  close(fd);
  spin(-1);
  assert_int_equal(next_from_loopback(tb), NET_IP_OK);

  /* b's table full: the adopted connection is over its limit there, and counted as refused by b. */
  net_ipent *held = take_place(tb);
  fd = dial_and_hand_over();
  assert_int_equal(b.calls, 2);
  assert_true(b.flags & NET_CONN_IPOVER);
  assert_int_equal(b.net.stats.ip_refused, 1);
  assert_int_equal(next_from_loopback(ta), NET_IP_OK);
  assert_int_equal(next_from_loopback(tb), NET_IP_DROP);
  close(fd);
  spin(-1);
  assert_int_equal(next_from_loopback(tb), NET_IP_OVER);

  /* Past twice b's limit: closed on adoption without reaching b's protocol. */
  net_ipent *held2 = take_place(tb);
  uint64_t dropped = table_stat(tb, 2);
  fd = dial_and_hand_over();
  char byte;
  assert_int_equal(read(fd, &byte, 1), 0);
  close(fd);
  assert_int_equal(b.calls, 2);
  assert_int_equal(b.net.stats.ip_refused, 2);
  assert_int_equal(table_stat(tb, 2), dropped + 1);
  assert_int_equal(b.net.stats.connections, 0);
  assert_int_equal(next_from_loopback(ta), NET_IP_OK);
  net_iplimit_release(tb, held2, net_iplimit_now());
  net_iplimit_release(tb, held, net_iplimit_now());
  assert_int_equal(next_from_loopback(tb), NET_IP_OK);

  /* b with no table: the place in a's goes, nothing is taken. */
  b.net.iplimit = NULL;
  fd = dial_and_hand_over();
  assert_int_equal(b.calls, 3);
  assert_int_equal(next_from_loopback(ta), NET_IP_OK);
  close(fd);
  spin(-1);
  b.net.iplimit = tb;
  loops_end();
}

int main(void) {
  (void)wait_for;
  (void)read_head;
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_detach_adopt), cmocka_unit_test(test_adopt_long),
                                     cmocka_unit_test(test_handover_shared_table),
                                     cmocka_unit_test(test_handover_dropped),
                                     cmocka_unit_test(test_handover_other_table)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
