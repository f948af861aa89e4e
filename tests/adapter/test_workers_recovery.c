/* Connection state recovery across workers: two workers (wsio_workers_run) with recovery on, real Engine.IO
 * long-polling clients over loopback. A client saved on one worker comes back on the other and gets its id,
 * recovered=true, its rooms, its data and exactly the broadcasts it missed; a second move recovers too; an
 * unknown pid connects as a fresh session. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <pthread.h>
#include <uv.h>

#include "api/raw_client.h"
#include "adapter/polling_client.h"
#include "adapter/workers_harness.h"
#include "eio/packet.h"
#include "wsio.h"


/* "join"(room): socket.join(room), acked. */
static void on_ev_join(wsio_socket *s, const wsio_args *a, wsio_ack *ack, void *ud) {
  (void)ud;
  char room[64];
  wsio_args_string(a, 0, room, sizeof room);
  wsio_socket_join(s, room);
  wsio_socket_set_data_json(s, "{\"name\":\"kept\"}");
  wsio_ack_send(ack, "[]");
}

/* "to"(room, text): io.to(room).emit("msg", text) */
static void on_ev_to(wsio_socket *s, const wsio_args *a, wsio_ack *ack, void *ud) {
  (void)ud;
  char room[64], text[64], json[128];
  wsio_args_string(a, 0, room, sizeof room);
  wsio_args_string(a, 1, text, sizeof text);
  wsio_op op = wsio_nsp_to(wsio_socket_nsp(s), room);
  snprintf(json, sizeof json, "[\"%s\"]", text);
  wsio_op_emit(&op, "msg", json);
  wsio_ack_send(ack, "[]");
}

/* "whoami"(): acked with [worker, recovered, data]. */
static void on_ev_whoami(wsio_socket *s, const wsio_args *a, wsio_ack *ack, void *ud) {
  (void)a;
  char json[160];
  snprintf(json, sizeof json, "[%u,%d,%s]", (unsigned)(uintptr_t)ud, wsio_socket_recovered(s),
           wsio_socket_data_json(s));
  wsio_ack_send(ack, json);
}

static int setup_worker(wsio_server *s, unsigned index, void *ud) {
  (void)ud;
  wsio_io_config ic = {.ping_interval_ms = 20000, .recovery_ms = 60000};
  wsio_io *io = wsio_io_new(s, &ic);
  if (!io) return WSIO_ENOMEM;
  wsio_nsp *n = wsio_io_sockets(io);
  wsio_nsp_on(n, "join", on_ev_join, NULL);
  wsio_nsp_on(n, "to", on_ev_to, NULL);
  wsio_nsp_on(n, "whoami", on_ev_whoami, (void *)(uintptr_t)index);
  return wsio_server_listen(s, "127.0.0.1", 0);
}

static int start_fixture(void **state) {
  (void)state;
  hw_start(setup_worker);
  pc_port = hw.port;
  return 0;
}

static int stop_fixture(void **state) {
  (void)state;
  hw_stop();
  return 0;
}

/* An Engine.IO session on worker `want` (-1: any): handshakes until the kernel places one there. */
static void pc_handshake(pclient *c, int want) {
  for (int tries = 0; tries < 200; tries++) {
    pc_handshake_once(c);
    c->worker = eio_sid_worker(c->sid);
    if (want < 0 || c->worker == want) return;
    pc_post(c, "1"); /* not this one: closed */
  }
  fail_msg("no session landed on worker %d", want);
}

/* Sends CONNECT (with auth, or none) and reads the answer's sid and pid. */
static void pc_connect(pclient *c, const char *auth, char *sid, char *pid) {
  char p[512];
  snprintf(p, sizeof p, "40%s", auth ? auth : "");
  pc_post(c, p);
  pc_packet(c, p, sizeof p);
  assert_true(sscanf(p, "40{\"sid\":\"%20[^\"]\",\"pid\":\"%20[^\"]\"}", sid, pid) == 2);
}

/* Emits ev with JSON args and ack id, and waits for the ack (other packets before it go to *skipped). */
static void pc_call(pclient *c, int id, const char *args, char *reply, size_t cap) {
  char p[512];
  snprintf(p, sizeof p, "42%d%s", id, args);
  pc_post(c, p);
  char want[16];
  int n = snprintf(want, sizeof want, "43%d", id);
  for (;;) {
    pc_packet(c, p, sizeof p);
    if (strncmp(p, want, (size_t)n) == 0) break;
  }
  snprintf(reply, cap, "%s", p + n);
}

/* The last string argument of an EVENT packet: its offset. */
static void offset_of(const char *pkt, char *out, size_t cap) {
  const char *end = strrchr(pkt, '"');
  assert_non_null(end);
  const char *start = end - 1;
  while (start > pkt && *start != '"') start--;
  assert_true((size_t)(end - start - 1) < cap);
  memcpy(out, start + 1, (size_t)(end - start - 1));
  out[end - start - 1] = 0;
}

static void test_recover_on_the_other_worker(void **state) {
  (void)state;
  static pclient a, b, sender;
  char sid[32], pid[32], sid2[32], pid2[32], p[512], reply[256], off[64], auth[256];
  pc_handshake(&a, 0);
  pc_connect(&a, NULL, sid, pid);
  pc_call(&a, 1, "[\"join\",\"r\"]", reply, sizeof reply);
  assert_string_equal(reply, "[]");
  pc_handshake(&sender, 1);
  pc_connect(&sender, NULL, sid2, pid2);
  /* One broadcast received (its offset is the client's), then the transport is cut. */
  pc_call(&sender, 1, "[\"to\",\"r\",\"one\"]", reply, sizeof reply);
  pc_packet(&a, p, sizeof p);
  assert_true(strncmp(p, "42[\"msg\",\"one\",\"", 16) == 0);
  offset_of(p, off, sizeof off);
  pc_post(&a, "1");
  usleep(50000);
  /* Missed while away: two to its room, one to a room it is not in. */
  pc_call(&sender, 2, "[\"to\",\"r\",\"two\"]", reply, sizeof reply);
  pc_call(&sender, 3, "[\"to\",\"elsewhere\",\"no\"]", reply, sizeof reply);
  pc_call(&sender, 4, "[\"to\",\"r\",\"three\"]", reply, sizeof reply);
  /* Back on the other worker. */
  pc_handshake(&b, 1);
  snprintf(auth, sizeof auth, "{\"pid\":\"%s\",\"offset\":\"%s\"}", pid, off);
  char rsid[32], rpid[32];
  pc_connect(&b, auth, rsid, rpid);
  assert_string_equal(rsid, sid);
  assert_string_equal(rpid, pid);
  pc_packet(&b, p, sizeof p);
  assert_true(strncmp(p, "42[\"msg\",\"two\",\"", 16) == 0);
  pc_packet(&b, p, sizeof p);
  assert_true(strncmp(p, "42[\"msg\",\"three\",\"", 18) == 0);
  pc_call(&b, 5, "[\"whoami\"]", reply, sizeof reply);
  assert_string_equal(reply, "[1,1,{\"name\":\"kept\"}]");
  /* Its room came along: a new broadcast to it arrives on this worker. */
  pc_call(&sender, 5, "[\"to\",\"r\",\"four\"]", reply, sizeof reply);
  pc_packet(&b, p, sizeof p);
  assert_true(strncmp(p, "42[\"msg\",\"four\",\"", 17) == 0);
  offset_of(p, off, sizeof off);
  /* A second move, back to worker 0, with this worker's offset: recovered again, nothing missed. */
  pc_post(&b, "1");
  usleep(50000);
  pc_call(&sender, 6, "[\"to\",\"r\",\"five\"]", reply, sizeof reply);
  pc_handshake(&a, 0);
  snprintf(auth, sizeof auth, "{\"pid\":\"%s\",\"offset\":\"%s\"}", pid, off);
  pc_connect(&a, auth, rsid, rpid);
  assert_string_equal(rsid, sid);
  assert_string_equal(rpid, pid);
  pc_packet(&a, p, sizeof p);
  assert_true(strncmp(p, "42[\"msg\",\"five\",\"", 17) == 0);
  pc_call(&a, 7, "[\"whoami\"]", reply, sizeof reply);
  assert_string_equal(reply, "[0,1,{\"name\":\"kept\"}]");
}

static void test_unknown_pid_connects_fresh(void **state) {
  (void)state;
  static pclient c;
  char sid[32], pid[32], reply[256];
  pc_handshake(&c, 1);
  pc_connect(&c, "{\"pid\":\"AAAAAAAAAAAAAAAAAAAA\",\"offset\":\"x\"}", sid, pid);
  assert_string_not_equal(pid, "AAAAAAAAAAAAAAAAAAAA");
  pc_call(&c, 1, "[\"whoami\"]", reply, sizeof reply);
  assert_string_equal(reply, "[1,0,null]");
}

int main(void) {
  (void)wait_for;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_recover_on_the_other_worker, start_fixture, stop_fixture),
      cmocka_unit_test_setup_teardown(test_unknown_pid_connects_fresh, start_fixture, stop_fixture),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
