/*
 * The program's modules under test (test_proxy.c, test_webhooks.c) sit on an srv_app: a wsio server with
 * Socket.IO, the parsed configuration and the HTTP client. h_app makes one from configuration text, runs
 * its loop on a thread of its own, and takes it down again. Include after <cmocka.h>.
 */
#ifndef WSIO_TESTS_SERVER_APP_HARNESS_H
#define WSIO_TESTS_SERVER_APP_HARNESS_H

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "server/app.h"
#include "server/config.h"
#include "server/http_client.h"
#include "util/log.h"
#include "wsio.h"

typedef struct h_app {
  server_config cfg;
  srv_app app;
  pthread_t thread;
  int port;
  int running;
} h_app;

static void *h_app_thread(void *arg) {
  wsio_server_run(arg, 0);
  return NULL;
}

/* Parses conf (printf format: %d becomes backend_port), then makes the server, its Socket.IO and the HTTP
 * client. The test adds its module and handlers, then calls h_app_run. */
static __attribute__((unused)) void h_app_init(h_app *a, const char *conf, int backend_port) {
  memset(a, 0, sizeof *a);
  char text[1024], err[256];
  snprintf(text, sizeof text, conf, backend_port);
  assert_int_equal(server_config_init(&a->cfg), 0);
  int rc = server_config_parse(&a->cfg, "test.conf", text, strlen(text), err, sizeof err);
  if (rc) fail_msg("config: %s", err);
  wsio_server_config sc = {.log_level = 0};
  a->app.server = wsio_server_new(&sc);
  log_level = LOG_ERROR;
  assert_non_null(a->app.server);
  a->app.io = wsio_io_new(a->app.server, NULL);
  assert_non_null(a->app.io);
  a->app.cfg = &a->cfg;
  a->app.http = srv_http_new(wsio_server_loop(a->app.server));
  assert_non_null(a->app.http);
}

/* Listens on an ephemeral port of 127.0.0.1 (a->port) and runs the loop on its own thread. */
static __attribute__((unused)) void h_app_run(h_app *a) {
  assert_int_equal(wsio_server_listen(a->app.server, "127.0.0.1", 0), 0);
  a->port = wsio_server_port(a->app.server);
  assert_int_equal(pthread_create(&a->thread, NULL, h_app_thread, a->app.server), 0);
  a->running = 1;
}

/* Stops the loop (clients get a second to close) and joins its thread; again is a no-op. */
static __attribute__((unused)) void h_app_stop(h_app *a) {
  if (!a->running) return;
  wsio_server_stop(a->app.server, 1000);
  pthread_join(a->thread, NULL);
  a->running = 0;
}

/* After h_app_stop and after the test's module is freed: the HTTP client, the server, the configuration. */
static __attribute__((unused)) void h_app_free(h_app *a) {
  srv_http_free(a->app.http);
  wsio_server_free(a->app.server);
  server_config_free(&a->cfg);
}

#endif
