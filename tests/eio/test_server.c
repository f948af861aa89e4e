/* eio_server internals: the time-ordered session queues that drive heartbeats. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "eio/internal.h"

typedef struct fixture {
  uv_loop_t uv;
  net_loop net;
  eio_server *srv;
} fixture;

static const eio_handler no_handler = {0};

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  assert_int_equal(uv_loop_init(&f->uv), 0);
  assert_int_equal(net_loop_init(&f->net, &f->uv), 0);
  f->srv = eio_server_new(&f->net, NULL, &no_handler, NULL);
  assert_non_null(f->srv);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  eio_server_free(f->srv);
  net_loop_close(&f->net);
  uv_run(&f->uv, UV_RUN_DEFAULT);
  net_loop_free(&f->net);
  assert_int_equal(uv_loop_close(&f->uv), 0);
  free(f);
  return 0;
}

static size_t count(const eio_queue *q) {
  size_t n = 0;
  for (eio_socket *s = q->head; s; s = ((eio_link *)((char *)s + q->link_off))->next) n++;
  return n;
}

/* pings and pongs share one link per session. Removing a session through the queue it is not in must
 * leave both queues alone: the heartbeat test-suites ended sessions that sat at the head of pongs, and the
 * old neighbour-based membership test unlinked them through pings, pointing pings' head into pongs. */
static void test_shared_link_membership(void **state) {
  fixture *f = *state;
  eio_server *srv = f->srv;
  eio_socket *a = eio_session_new(srv, EIO_POLLING);
  eio_socket *b = eio_session_new(srv, EIO_POLLING);
  eio_socket *c = eio_session_new(srv, EIO_POLLING);
  eio_socket *d = eio_session_new(srv, EIO_POLLING);
  assert_non_null(a);
  assert_non_null(d);
  eio_queue_push(srv, &srv->pongs, a, 100);
  eio_queue_push(srv, &srv->pongs, b, 110);
  eio_queue_push(srv, &srv->pongs, c, 120);
  eio_queue_push(srv, &srv->pings, d, 130);

  assert_false(eio_queue_has(&srv->pings, a));
  assert_false(eio_queue_has(&srv->pings, b));
  assert_false(eio_queue_has(&srv->pings, c));
  assert_true(eio_queue_has(&srv->pongs, a));
  assert_true(eio_queue_has(&srv->pings, d));
  assert_false(eio_queue_has(&srv->pongs, d));

  /* Head, middle and tail of pongs, each removed through pings first (as eio_session_end does). */
  eio_queue_remove(&srv->pings, a);
  eio_queue_remove(&srv->pings, b);
  eio_queue_remove(&srv->pings, c);
  assert_ptr_equal(srv->pings.head, d);
  assert_ptr_equal(srv->pings.tail, d);
  assert_int_equal(count(&srv->pongs), 3);
  assert_int_equal(count(&srv->pings), 1);

  eio_queue_remove(&srv->pongs, a);
  assert_ptr_equal(srv->pongs.head, b);
  assert_false(eio_queue_has(&srv->pongs, a));
  eio_queue_remove(&srv->pongs, a); /* twice: no effect */
  assert_int_equal(count(&srv->pongs), 2);
  eio_queue_remove(&srv->pongs, c);
  assert_ptr_equal(srv->pongs.tail, b);
  assert_int_equal(count(&srv->pongs), 1);

  /* A session moves between the queues (ping sent, pong received) and is found only where it is. */
  eio_queue_remove(&srv->pings, d);
  eio_queue_push(srv, &srv->pongs, d, 140);
  assert_true(eio_queue_has(&srv->pongs, d));
  assert_false(eio_queue_has(&srv->pings, d));
  assert_ptr_equal(srv->pongs.head, b);
  assert_ptr_equal(srv->pongs.tail, d);
  assert_null(srv->pings.head);
  assert_null(srv->pings.tail);

  /* Ending them all (the sessions are freed at teardown with the server). */
  eio_session_end(a, NULL);
  eio_session_end(b, NULL);
  eio_session_end(c, NULL);
  eio_session_end(d, NULL);
  assert_null(srv->pongs.head);
  assert_null(srv->pings.head);
  assert_int_equal(eio_server_count(srv), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_shared_link_membership, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
