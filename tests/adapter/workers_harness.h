/* Two workers of wsio_workers_run on a thread of the test (test_workers.c, test_workers_recovery.c): each
 * set up by the test's function (its io, handlers and listener on 127.0.0.1, port 0), sharing one port.
 * Include after cmocka.h. */
#ifndef WSIO_TESTS_ADAPTER_WORKERS_HARNESS_H
#define WSIO_TESTS_ADAPTER_WORKERS_HARNESS_H

#include <pthread.h>
#include <unistd.h>

#include "wsio.h"

typedef struct h_workers {
  pthread_t thread;
  int rc;                      /* what wsio_workers_run returned (1 while it runs) */
  int port;                    /* the port both workers listen on */
  wsio_server *servers[2];     /* by worker index, set before the test's setup runs */
  wsio_worker_setup_cb setup;
} h_workers;

static h_workers hw;

static int hw_setup(wsio_server *s, unsigned index, void *ud) {
  assert_int_equal(wsio_worker_count(s), 2);
  assert_int_equal(wsio_worker_index(s), index);
  hw.servers[index] = s;
  return hw.setup(s, index, ud);
}

static void *hw_run(void *arg) {
  (void)arg;
  wsio_server_config cfg = {.log_level = 2};
  hw.rc = wsio_workers_run(2, &cfg, 0, hw_setup, NULL);
  return NULL;
}

/* Starts both workers and returns once both listen, on the same port (hw.port). */
static void hw_start(wsio_worker_setup_cb setup) {
  memset(&hw, 0, sizeof hw);
  hw.rc = 1;
  hw.setup = setup;
  assert_int_equal(pthread_create(&hw.thread, NULL, hw_run, NULL), 0);
  for (int i = 0; i < 500 && !(hw.servers[0] && hw.servers[1]); i++) usleep(10000);
  assert_non_null(hw.servers[0]);
  assert_non_null(hw.servers[1]);
  usleep(50000); /* both listening (setup returned) */
  hw.port = wsio_server_port(hw.servers[0]);
  assert_true(hw.port > 0);
  assert_int_equal(wsio_server_port(hw.servers[1]), hw.port);
}

/* Stops every worker (within 2 s) and checks that wsio_workers_run returned 0. */
static void hw_stop(void) {
  wsio_workers_stop(hw.servers[0], 2000);
  pthread_join(hw.thread, NULL);
  assert_int_equal(hw.rc, 0);
}

#endif
