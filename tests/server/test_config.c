#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "server/config.h"
#include "server/config_internal.h"
#include "util/log.h"
#include "wsio.h"

/* ---- helpers ---- */

static char tmpdir[256];

static int setup(void **state) {
  (void)state;
  snprintf(tmpdir, sizeof tmpdir, "%s/wsio-config-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  assert_non_null(mkdtemp(tmpdir));
  return 0;
}

static int teardown(void **state) {
  (void)state;
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  return system(cmd) == 0 ? 0 : -1;
}

/* Writes text to tmpdir/name; returns the path (static, one at a time per name buffer). */
static const char *write_file(const char *name, const char *text) {
  static char paths[4][300];
  static int next;
  char *path = paths[next++ % 4];
  snprintf(path, 300, "%s/%s", tmpdir, name);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
  fclose(f);
  return path;
}

/* Parses text over the defaults as file "t.conf", then runs the cross-checks. */
static int parse(server_config *c, const char *text, char *err, size_t cap) {
  assert_int_equal(server_config_init(c), 0);
  int rc = server_config_parse(c, "t.conf", text, strlen(text), err, cap);
  if (rc == 0) rc = server_config_finish(c, err, cap);
  return rc;
}

static void parse_ok(server_config *c, const char *text) {
  char err[512] = "";
  int rc = parse(c, text, err, sizeof err);
  if (rc) fail_msg("unexpected error %d: %s\nfor:\n%s", rc, err, text);
}

static void expect_error(const char *text, const char *message) {
  server_config c;
  char err[512] = "";
  int rc = parse(&c, text, err, sizeof err);
  if (rc != WSIO_EINVAL) fail_msg("expected an error for:\n%s\ngot rc %d", text, rc);
  if (strcmp(err, message) != 0) fail_msg("for:\n%s\nexpected: %s\n     got: %s", text, message, err);
  server_config_free(&c);
}

/* Loads with argv (NULL-terminated, argv[0] added) and envp. */
static int load(server_config *c, char **envp, char *err, size_t cap, ...) {
  char *argv[32] = {"wsio"};
  int argc = 1;
  va_list ap;
  va_start(ap, cap);
  for (char *a; (a = va_arg(ap, char *)) != NULL;) argv[argc++] = a;
  va_end(ap);
  return server_config_load(c, argc, argv, envp, err, cap);
}

static void expect_load_error(char **envp, const char *message, ...) {
  char *argv[32] = {"wsio"};
  int argc = 1;
  va_list ap;
  va_start(ap, message);
  for (char *a; (a = va_arg(ap, char *)) != NULL;) argv[argc++] = a;
  va_end(ap);
  server_config c;
  char err[512] = "";
  int rc = server_config_load(&c, argc, argv, envp, err, sizeof err);
  if (rc != WSIO_EINVAL) fail_msg("expected an error (%s), got rc %d", message, rc);
  if (strcmp(err, message) != 0) fail_msg("expected: %s\n     got: %s", message, err);
  server_config_free(&c);
}

static char *where(const server_config *c, const char *name) {
  static char w[256];
  assert_non_null(server_config_where(c, name, w, sizeof w));
  return w;
}

static char *dump(const server_config *c, unsigned flags) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  assert_non_null(f);
  assert_int_equal(server_config_dump(c, f, flags), 0);
  fclose(f);
  return text;
}

/* ---- defaults ---- */

static void test_defaults(void **state) {
  (void)state;
  server_config c;
  assert_int_equal(server_config_init(&c), 0);
  assert_string_equal(c.server.host, "0.0.0.0");
  assert_int_equal(c.server.port, 3000);
  assert_null(c.server.web_root);
  assert_int_equal(c.server.max_connections, 100000);
  assert_int_equal(c.server.workers, 0); /* auto until finish */
  assert_null(c.tls.cert);
  assert_string_equal(c.socketio.path, "/socket.io/");
  assert_int_equal(c.socketio.ping_interval_ms, 25000);
  assert_int_equal(c.socketio.ping_timeout_ms, 20000);
  assert_int_equal(c.socketio.max_payload, 1000000);
  assert_int_equal(c.socketio.transports, WSIO_TRANSPORT_POLLING | WSIO_TRANSPORT_WEBSOCKET);
  assert_int_equal(c.socketio.connect_timeout_ms, 45000);
  assert_int_equal(c.socketio.ack_timeout_ms, 30000);
  assert_int_equal(c.socketio.recovery_ms, 0);
  assert_true(c.socketio.serve_client);
  assert_int_equal(c.cors.origins.n, 1);
  assert_string_equal(c.cors.origins.v[0], "*");
  assert_false(c.cors.credentials);
  assert_string_equal(c.websocket.echo_path, "/echo");
  assert_null(c.websocket.broadcast_path);
  assert_int_equal(c.websocket.max_message_size, 16u << 20);
  assert_int_equal(c.websocket.send_buffer_limit, 16u << 20);
  assert_int_equal(c.websocket.ping_interval_ms, 30000);
  assert_int_equal(c.websocket.deflate, WSIO_DEFLATE_SHARED);
  assert_string_equal(c.rooms.join_event, "join");
  assert_string_equal(c.rooms.leave_event, "leave");
  assert_string_equal(c.rooms.allowed.v[0], "*");
  assert_null(c.api.key);
  assert_int_equal(c.auth.jwt_algorithms, 0);
  assert_string_equal(c.proxy.events.v[0], "*");
  assert_int_equal(c.proxy.timeout_ms, 5000);
  assert_int_equal(c.webhooks.events, SERVER_WEBHOOK_CONNECT | SERVER_WEBHOOK_DISCONNECT);
  assert_int_equal(c.webhooks.batch_interval_ms, 1000);
  assert_int_equal(c.limits.max_rooms_per_socket, 1000);
  assert_int_equal(c.log.level, LOG_INFO);
  assert_int_equal(c.log.format, SERVER_LOG_TEXT);
  assert_true(c.metrics.enabled);
  assert_string_equal(c.metrics.path, "/metrics");
  assert_int_equal(c.nroutes, 0);
  assert_string_equal(where(&c, "server.port"), "default");
  assert_null(server_config_where(&c, "server.nope", (char[8]){0}, 8));
  server_config_free(&c);
}

/* No file: the demo's routes; workers resolved to the CPU count. */
static void test_embedded_default(void **state) {
  (void)state;
  server_config c;
  char err[256];
  char *env[] = {"HOME=/", NULL};
  assert_int_equal(load(&c, env, err, sizeof err, NULL), 0);
  assert_null(c.file);
  assert_true(c.server.workers >= 1);
  assert_int_equal(c.nroutes, 4);
  server_route *r = c.routes;
  assert_string_equal(r[0].event, "serverMsg");
  assert_string_equal(r[0].emit, "clientMsg");
  assert_int_equal(r[0].to, SERVER_ROUTE_OTHERS);
  assert_int_equal(r[0].data_arg, -1);
  assert_null(r[0].ack);
  assert_int_equal(r[0].source, SERVER_CONFIG_DEFAULT);
  for (int i = 1; i <= 2; i++) {
    assert_string_equal(r[i].event, i == 1 ? "join" : "leave");
    assert_int_equal(r[i].to, SERVER_ROUTE_NONE);
    assert_string_equal(r[i].ack, "\"ok\"");
  }
  assert_string_equal(r[3].event, "toRoom");
  assert_string_equal(r[3].emit, "roomMsg");
  assert_int_equal(r[3].to, SERVER_ROUTE_ROOM_ARG);
  assert_int_equal(r[3].room_arg, 0);
  assert_int_equal(r[3].data_arg, 1);
  assert_string_equal(r[3].nsp, "/");
  server_config_free(&c);

  /* A file replaces the demo routes, even one without routes. */
  const char *path = write_file("empty.conf", "# nothing\n");
  assert_int_equal(load(&c, env, err, sizeof err, "--config", path, NULL), 0);
  assert_int_equal(c.nroutes, 0);
  assert_string_equal(c.file, path);
  server_config_free(&c);
}

/* ---- value types ---- */

static void test_durations(void **state) {
  (void)state;
  static const struct { const char *v; uint32_t ms; } ok[] = {
      {"500ms", 500}, {"25s", 25000}, {"2m", 120000}, {"1h", 3600000}, {"0", 0}, {"25 s", 25000},
      {"10S", 10000}, {"007s", 7000}, {"24h", 86400000}};
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    char text[128];
    server_config c;
    snprintf(text, sizeof text, "[socketio]\nrecovery = %s\n", ok[i].v);
    parse_ok(&c, text);
    assert_int_equal(c.socketio.recovery_ms, ok[i].ms);
    assert_string_equal(where(&c, "socketio.recovery"), "t.conf:2");
    server_config_free(&c);
  }
  expect_error("[socketio]\nping_interval = 25x\n",
               "t.conf:2: [socketio] ping_interval: \"25x\" is not a duration (examples: 25s, 500ms)");
  expect_error("[socketio]\nping_interval = 25\n",
               "t.conf:2: [socketio] ping_interval: \"25\" needs a unit (examples: 25s, 500ms)");
  expect_error("[socketio]\nping_interval = 1.5s\n",
               "t.conf:2: [socketio] ping_interval: \"1.5s\" is not a duration (examples: 25s, 500ms)");
  expect_error("[socketio]\nping_interval = -1s\n",
               "t.conf:2: [socketio] ping_interval: \"-1s\" is not a duration (examples: 25s, 500ms)");
  expect_error("[socketio]\nping_interval = 0\n",
               "t.conf:2: [socketio] ping_interval: \"0\" is out of range (1ms to 24h)");
  expect_error("[socketio]\nping_interval = 25h\n",
               "t.conf:2: [socketio] ping_interval: \"25h\" is out of range (1ms to 24h)");
  expect_error("[socketio]\nping_interval = 99999999999999999999h\n",
               "t.conf:2: [socketio] ping_interval: \"99999999999999999999h\" is too large");
  expect_error("[socketio]\nping_interval = 9999999999999999999h\n",
               "t.conf:2: [socketio] ping_interval: \"9999999999999999999h\" is too large");
  expect_error("[websocket]\nping_interval = 500ms\n",
               "t.conf:2: [websocket] ping_interval: \"500ms\" is out of range (1s to 1h)");
  expect_error("[socketio]\nping_interval =\n", "t.conf:2: [socketio] ping_interval: needs a value");
}

static void test_sizes_numbers_bools(void **state) {
  (void)state;
  static const struct { const char *v; size_t n; } sizes[] = {
      {"1MB", 1000000}, {"512KiB", 524288}, {"16MiB", 16777216}, {"1GiB", 1073741824}, {"100", 100},
      {"100b", 100}, {"1kb", 1000}, {"2 MB", 2000000}, {"1GB", 1000000000}};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    char text[128];
    server_config c;
    snprintf(text, sizeof text, "[socketio]\nmax_payload = %s\n", sizes[i].v);
    parse_ok(&c, text);
    assert_int_equal(c.socketio.max_payload, sizes[i].n);
    server_config_free(&c);
  }
  expect_error("[socketio]\nmax_payload = 1XB\n",
               "t.conf:2: [socketio] max_payload: \"1XB\" is not a size (examples: 1MB, 512KiB, 16MiB)");
  expect_error("[socketio]\nmax_payload = 2GiB\n",
               "t.conf:2: [socketio] max_payload: \"2GiB\" is out of range (1 to 1GiB)");
  expect_error("[websocket]\nsend_buffer_limit = 1000\n",
               "t.conf:2: [websocket] send_buffer_limit: \"1000\" is out of range (1KiB to 2GiB)");

  server_config c;
  parse_ok(&c, "[server]\nport = 0\nworkers = 7\nmax_connections = 10\n");
  assert_int_equal(c.server.port, 0);
  assert_int_equal(c.server.workers, 7);
  assert_int_equal(c.server.max_connections, 10);
  server_config_free(&c);
  parse_ok(&c, "[server]\nworkers = auto\n");
  assert_true(c.server.workers >= 1); /* resolved by finish */
  char *d = dump(&c, 0);
  assert_non_null(strstr(d, "# t.conf:2 (auto: the CPU cores)\n"));
  free(d);
  server_config_free(&c);
  expect_error("[server]\nport = abc\n", "t.conf:2: [server] port: \"abc\" is not a number");
  expect_error("[server]\nport = 70000\n", "t.conf:2: [server] port: \"70000\" is out of range (0 to 65535)");
  expect_error("[server]\nport = -1\n", "t.conf:2: [server] port: \"-1\" is not a number");
  expect_error("[server]\nport = 99999999999999999999999\n",
               "t.conf:2: [server] port: \"99999999999999999999999\" is too large");
  expect_error("[server]\nworkers = 0\n", "t.conf:2: [server] workers: \"0\" is out of range (1 to 1024)");
  expect_error("[server]\nworkers = many\n", "t.conf:2: [server] workers: \"many\" is not a number (or auto)");

  static const struct { const char *v; int b; } bools[] = {{"true", 1}, {"false", 0}, {"yes", 1}, {"no", 0},
                                                           {"on", 1},   {"off", 0},   {"TRUE", 1}, {"Off", 0}};
  for (size_t i = 0; i < sizeof bools / sizeof bools[0]; i++) {
    char text[128];
    snprintf(text, sizeof text, "[metrics]\nenabled = %s\n", bools[i].v);
    parse_ok(&c, text);
    assert_int_equal(c.metrics.enabled, bools[i].b);
    server_config_free(&c);
  }
  expect_error("[metrics]\nenabled = maybe\n",
               "t.conf:2: [metrics] enabled: \"maybe\" is not a boolean (true/false, yes/no, on/off)");
  expect_error("[metrics]\nenabled = 1\n",
               "t.conf:2: [metrics] enabled: \"1\" is not a boolean (true/false, yes/no, on/off)");
}

static void test_strings_lists_enums(void **state) {
  (void)state;
  server_config c;
  parse_ok(&c,
           "\xEF\xBB\xBF# comment first\n"
           "  [ auth ]   # trailing comment\n"
           "jwt_audience = \"  a \\\"b\\\" \\\\ c # not a comment\\n\\t\"   # a comment\n"
           "jwt_issuer = https://issuer.example/#frag  # comment\n"
           "\t jwt_secret\t=\tsec#ret \n"
           "[cors]\r\n"
           "origins = https://a.example , http://b.example:8080\r\n"
           "credentials = yes\r\n"
           "[socketio]\n"
           "transports = WebSocket\n"
           "[log]\n"
           "level = DEBUG\n"
           "[websocket]\n"
           "deflate = context\n"
           "echo_path =\n"
           "broadcast_path = \"\"\n");
  assert_string_equal(c.auth.jwt_audience, "  a \"b\" \\ c # not a comment\n\t");
  assert_string_equal(c.auth.jwt_issuer, "https://issuer.example/#frag");
  assert_string_equal(c.auth.jwt_secret, "sec#ret");
  assert_int_equal(c.auth.jwt_algorithms, SERVER_JWT_HS256); /* derived from the secret */
  assert_int_equal(c.cors.origins.n, 2);
  assert_string_equal(c.cors.origins.v[0], "https://a.example");
  assert_string_equal(c.cors.origins.v[1], "http://b.example:8080");
  assert_true(c.cors.credentials);
  assert_int_equal(c.socketio.transports, WSIO_TRANSPORT_WEBSOCKET);
  assert_int_equal(c.log.level, LOG_DEBUG);
  assert_int_equal(c.websocket.deflate, WSIO_DEFLATE_CONTEXT);
  assert_null(c.websocket.echo_path);
  assert_null(c.websocket.broadcast_path);
  assert_string_equal(where(&c, "cors.origins"), "t.conf:7");
  server_config_free(&c);

  expect_error("[websocket]\ndeflate = sheared\n",
               "t.conf:2: [websocket] deflate: \"sheared\" is not one of shared, context, off (did you mean \"shared\"?)");
  expect_error("[log]\nlevel = loud\n", "t.conf:2: [log] level: \"loud\" is not one of error, warn, info, debug");
  expect_error("[socketio]\ntransports = polling,websockets\n",
               "t.conf:2: [socketio] transports: \"websockets\" is not one of polling, websocket (did you mean "
               "\"websocket\"?)");
  expect_error("[socketio]\ntransports = polling,,websocket\n",
               "t.conf:2: [socketio] transports: \"polling,,websocket\" has an empty item");
  expect_error("[socketio]\ntransports = \"\"\n", "t.conf:2: [socketio] transports: needs a value");
  expect_error("[cors]\norigins = *, https://a.example\n",
               "t.conf:2: [cors] origins: \"*\" stands for any origin: it must be alone");
  expect_error("[cors]\norigins = https://a.example/\n",
               "t.conf:2: [cors] origins: \"https://a.example/\" is not an origin: an origin has no path, not even "
               "a trailing /");
  expect_error("[cors]\norigins = a.example\n",
               "t.conf:2: [cors] origins: \"a.example\" is not an origin (scheme://host[:port], or * alone)");
  expect_error("[websocket]\necho_path = echo\n",
               "t.conf:2: [websocket] echo_path: \"echo\" is not a path (a path starts with \"/\")");
  expect_error("[proxy]\nurl = ftp://x\n", "t.conf:2: [proxy] url: \"ftp://x\" is not an http:// or https:// URL");
  expect_error("[server]\nhost = \"a b\"\n", "t.conf:2: [server] host: \"a b\" is not a host name or address");
  expect_error("[rooms]\njoin_event = disconnect\n",
               "t.conf:2: [rooms] join_event: \"disconnect\" is a reserved event name");
  expect_error("[rooms]\nallowed = claims:a,claims:b\n",
               "t.conf:2: [rooms] allowed: \"claims:b\" is a second claims: item (one claim at most)");
  expect_error("[rooms]\nallowed = claims:\n", "t.conf:2: [rooms] allowed: \"claims:\" names no claim (claims:FIELD)");
  expect_error("[auth]\njwt_algorithms = HS257\n",
               "t.conf:2: [auth] jwt_algorithms: \"HS257\" is not one of HS256, RS256, ES256 (did you mean \"HS256\"?)");
  expect_error("[server]\nhost = \"a\\nb\"\n", "t.conf:2: [server] host: \"a\\nb\" is not a host name or address");
  /* Values in messages are quoted, escaped and cut. */
  expect_error("[server]\nport = 123456789012345678901234567890123456789012345678901234567890123456789x\n",
               "t.conf:2: [server] port: \"123456789012345678901234567890123456789012345678901234567...\" is not a "
               "number");
}

/* ---- syntax errors, with their lines ---- */

static void test_syntax_errors(void **state) {
  (void)state;
  expect_error("[server]\nhost = \"abc\n", "t.conf:2: [server] host: unterminated string (a closing \" is missing)");
  expect_error("[server]\nhost = \"a\\qb\"\n",
               "t.conf:2: [server] host: unknown escape \\q in a string (use \\\" \\\\ \\n or \\t)");
  expect_error("[server]\nhost = \"ab\" c\n", "t.conf:2: [server] host: text after the closing quote (quote the whole value)");
  expect_error("[server]\nhost = a\xff" "b\n", "t.conf:2: the line is not valid UTF-8");
  expect_error("[server]\n\nhost = a\x01\n", "t.conf:3: the line contains a control character");
  expect_error("[server]\nhost = a\rb\n", "t.conf:2: the line contains a control character");
  {
    static const char text[] = "[server]\nhost = a\0b\n";
    server_config c;
    char err[256];
    assert_int_equal(server_config_init(&c), 0);
    assert_int_equal(server_config_parse(&c, "t.conf", text, sizeof text - 1, err, sizeof err), WSIO_EINVAL);
    assert_string_equal(err, "t.conf:2: the line contains a NUL byte");
    server_config_free(&c);
  }
  expect_error("[server\n", "t.conf:1: a section header is [name] or [name \"sub\"]");
  expect_error("[]\n", "t.conf:1: a section header is [name] or [name \"sub\"]");
  expect_error("[server] x\n", "t.conf:1: a section header is [name] or [name \"sub\"]");
  expect_error("garbage line\n", "t.conf:1: expected \"key = value\", a [section] or a # comment");
  expect_error("[server]\n= 1\n", "t.conf:2: expected \"key = value\", a [section] or a # comment");
  expect_error("port = 1\n", "t.conf:1: port is outside a section (put it under [server])");
  expect_error("xyz = 1\n", "t.conf:1: xyz is outside a section (start with a [section])");
  expect_error("[server]\nport = 1\n[tls]\n[server]\nport = 2\n", "t.conf:5: [server] port: set twice (first at line 2)");
  expect_error("[route]\n", "t.conf:1: [route] needs a name: [route \"EVENT\"]");
  expect_error("[namespace]\n", "t.conf:1: [namespace] needs a name: [namespace \"/NAME\"]");
  expect_error("[server \"x\"]\n", "t.conf:1: [server] takes no name");
  expect_error("[route \"connect\"]\n", "t.conf:1: [route \"connect\"]: \"connect\" is a reserved event name");
  expect_error("[route \"\"]\n", "t.conf:1: [route \"\"] needs an event name");
  expect_error("[route \"a\"]\n\n[route \"a\"]\n", "t.conf:3: [route \"a\"] is already defined at line 1");
  expect_error("[namespace \"chat\"]\n", "t.conf:1: [namespace \"chat\"]: \"chat\" is not a namespace (it starts with \"/\")");
  expect_error("[namespace \"/a\"]\n[namespace \"/a\"]\n", "t.conf:2: [namespace \"/a\"] is already defined at line 1");
  expect_error("[namespace \"/a\"]\nx = 1\n", "t.conf:2: [namespace \"/a\"] takes no keys (\"x\" is unknown)");
  expect_error("[namespace \"/a\\nb\"]\n", "t.conf:1: [namespace \"/a\\nb\"]: \"/a\\nb\" contains a line break");
  expect_error("[route \"abc\n", "t.conf:1: unterminated string (a closing \" is missing)");
  /* One error stops the parse: the first line's is the one reported. */
  expect_error("[server]\nport = x\nport = y\n", "t.conf:2: [server] port: \"x\" is not a number");
}

static void test_did_you_mean(void **state) {
  (void)state;
  expect_error("[sever]\n", "t.conf:1: unknown section [sever] (did you mean [server]?)");
  expect_error("[Server]\n", "t.conf:1: unknown section [Server] (did you mean [server]?)");
  expect_error("[routes \"x\"]\n", "t.conf:1: unknown section [routes] (did you mean [route]?)");
  expect_error("[zzzzzz]\n", "t.conf:1: unknown section [zzzzzz]");
  expect_error("[server]\nprot = 1\n", "t.conf:2: [server] unknown key \"prot\" (did you mean \"port\"?)");
  expect_error("[socketio]\nping_intervall = 1s\n",
               "t.conf:2: [socketio] unknown key \"ping_intervall\" (did you mean \"ping_interval\"?)");
  expect_error("[server]\nping_interval = 1s\n",
               "t.conf:2: [server] unknown key \"ping_interval\" (did you mean [socketio] ping_interval or [websocket] "
               "ping_interval?)");
  expect_error("[server]\nxyzzy = 1\n", "t.conf:2: [server] unknown key \"xyzzy\"");
  expect_error("[route \"x\"]\nemitt = y\n", "t.conf:2: [route \"x\"] unknown key \"emitt\" (did you mean \"emit\"?)");
  expect_error("[route \"x\"]\nfoo = y\n",
               "t.conf:2: [route \"x\"] unknown key \"foo\" (keys: namespace, emit, to, data, ack)");
  expect_error("[route \"x\"]\nto = otters\n",
               "t.conf:2: [route \"x\"] to: \"otters\" is not a target: self, others, all, room:NAME, room-arg:N, "
               "sender-rooms or none (did you mean \"others\"?)");
  expect_load_error(NULL, "unknown flag \"--prot\" (did you mean --port?)", "--prot", "1", NULL);
  expect_load_error(NULL, "unknown flag \"--cors-origin=x\" (did you mean --cors-origins?)", "--cors-origin=x", NULL);
  expect_load_error(NULL, "unknown flag \"--check-confg\" (did you mean --check-config?)", "--check-confg", NULL);
  expect_load_error(NULL, "unknown flag \"--frobnicate\" (see wsio --help)", "--frobnicate", NULL);
  char *env[] = {"WSIO_PROT=1", NULL};
  expect_load_error(env, "unknown environment variable WSIO_PROT (did you mean WSIO_PORT?)", NULL);
  char *env2[] = {"WSIO_CONFG=x", NULL};
  expect_load_error(env2, "unknown environment variable WSIO_CONFG (did you mean WSIO_CONFIG?)", NULL);
  char *env3[] = {"WSIO_SOMETHING_ELSE=1", NULL};
  expect_load_error(env3, "unknown environment variable WSIO_SOMETHING_ELSE (every WSIO_* variable must be a setting)",
                    NULL);
}

/* ---- routes, namespaces ---- */

static void test_routes(void **state) {
  (void)state;
  server_config c;
  parse_ok(&c,
           "[namespace \"/chat\"]\n"
           "[namespace \"/dyn-*\"]\n"
           "[route \"a\"]\n"
           "namespace = /chat\n"
           "emit = b\n"
           "to = self\n"
           "data = arg:2\n"
           "ack = {\"ok\": true, \"note\": \"# not a comment\"}   # a comment\n"
           "[route \"msg-*\"]\n"
           "namespace = /dyn-7\n"
           "to = room:lobby # x\n"
           "[route \"c\"]\n"
           "to = all\n"
           "ack = none\n"
           "[route \"d\"]\n"
           "to = sender-rooms\n"
           "data = all\n"
           "[route \"e\"]\n"
           "to = \"room:a #b\"\n"
           "[route \"f\"]\n"
           "to = room-arg:3\n"
           "ack = [1, \"two\"]\n");
  assert_int_equal(c.nnamespaces, 2);
  assert_string_equal(c.namespaces[0].name, "/chat");
  assert_false(c.namespaces[0].pattern);
  assert_true(c.namespaces[1].pattern);
  assert_int_equal(c.namespaces[1].line, 2);
  assert_int_equal(c.nroutes, 6);
  server_route *r = c.routes;
  assert_string_equal(r[0].nsp, "/chat");
  assert_string_equal(r[0].emit, "b");
  assert_int_equal(r[0].to, SERVER_ROUTE_SELF);
  assert_int_equal(r[0].data_arg, 2);
  assert_string_equal(r[0].ack, "{\"ok\": true, \"note\": \"# not a comment\"}");
  assert_int_equal(r[0].line, 3);
  assert_int_equal(r[0].source, SERVER_CONFIG_FILE);
  assert_string_equal(r[1].event, "msg-*");
  assert_null(r[1].emit);
  assert_int_equal(r[1].to, SERVER_ROUTE_ROOM);
  assert_string_equal(r[1].room, "lobby");
  assert_int_equal(r[2].to, SERVER_ROUTE_ALL);
  assert_null(r[2].ack);
  assert_int_equal(r[3].to, SERVER_ROUTE_SENDER_ROOMS);
  assert_int_equal(r[3].data_arg, -1);
  assert_string_equal(r[4].room, "a #b");
  assert_int_equal(r[5].to, SERVER_ROUTE_ROOM_ARG);
  assert_int_equal(r[5].room_arg, 3);
  assert_string_equal(r[5].ack, "[1, \"two\"]");
  server_config_free(&c);

  expect_error("[route \"x\"]\nnamespace = /chat\n",
               "t.conf:2: [route \"x\"] namespace: \"/chat\" is not declared (add [namespace \"/chat\"])");
  expect_error("[route \"x\"]\n\nnamespace = chat\n",
               "t.conf:3: [route \"x\"] namespace: \"chat\" is not a namespace (it starts with \"/\")");
  expect_error("[route \"x\"]\nack = ok\n",
               "t.conf:2: [route \"x\"] ack: \"ok\" is not JSON or none (a string takes quotes: ack = \"ok\")");
  expect_error("[route \"x\"]\nack = {\"a\": 1\n",
               "t.conf:2: [route \"x\"] ack: \"{\\\"a\\\": 1\" is not JSON or none (a string takes quotes: ack = \"ok\")");
  expect_error("[route \"x\"]\ndata = arg:x\n", "t.conf:2: [route \"x\"] data: \"arg:x\" is not all or arg:N (N from 0)");
  expect_error("[route \"x\"]\ndata = arg:12345\n",
               "t.conf:2: [route \"x\"] data: \"arg:12345\" is not all or arg:N (N from 0)");
  expect_error("[route \"x\"]\nto = room:\n",
               "t.conf:2: [route \"x\"] to: \"room:\" is not a target: self, others, all, room:NAME, room-arg:N, "
               "sender-rooms or none");
  expect_error("[route \"x\"]\nto = room-arg:\n",
               "t.conf:2: [route \"x\"] to: \"room-arg:\" is not a target: self, others, all, room:NAME, room-arg:N, "
               "sender-rooms or none");
  expect_error("[route \"x\"]\nemit = disconnect\n", "t.conf:2: [route \"x\"] emit: \"disconnect\" is a reserved event name");
  expect_error("[route \"x\"]\nemit = a*\n", "t.conf:2: [route \"x\"] emit: \"a*\" is a pattern; emit takes an event name");
  expect_error("[route \"x\"]\nto = all\nto = self\n", "t.conf:3: [route \"x\"] to: set twice (first at line 2)");
  expect_error("[route \"x\"]\nemit =\n",
               "t.conf:2: [route \"x\"] emit: needs a value (without the key, the received name is kept)");
  /* Bounded lists. */
  char *many = malloc(4097 * 24);
  size_t o = 0;
  for (int i = 0; i <= 4096; i++) o += (size_t)sprintf(many + o, "[route \"r%d\"]\n", i);
  expect_error(many, "t.conf:4097: too many routes (at most 4096)");
  o = 0;
  for (int i = 0; i <= 1024; i++) o += (size_t)sprintf(many + o, "[namespace \"/%d\"]\n", i);
  expect_error(many, "t.conf:1025: too many namespaces (at most 1024)");
  free(many);
}

static void test_match(void **state) {
  (void)state;
  assert_true(server_config_match("abc", "abc"));
  assert_false(server_config_match("abc", "abcd"));
  assert_false(server_config_match("abcd", "abc"));
  assert_true(server_config_match("*", ""));
  assert_true(server_config_match("*", "anything"));
  assert_true(server_config_match("game-*", "game-"));
  assert_true(server_config_match("game-*", "game-42"));
  assert_false(server_config_match("game-*", "gam"));
  assert_true(server_config_match("/dyn-*", "/dyn-1"));
  assert_true(server_config_match("a*b*c", "aXXbYYc"));
  assert_true(server_config_match("a*b*c", "abbbc"));
  assert_false(server_config_match("a*b*c", "aXXbYY"));
  assert_true(server_config_match("*.*", "x.y.z"));
  assert_true(server_config_match("**a", "bba"));
  assert_false(server_config_match("", "a"));
  assert_true(server_config_match("", ""));
}

/* ---- cross-checks ---- */

static void test_cross_checks(void **state) {
  (void)state;
  char text[1024];
  const char *pem = write_file("x.pem", "not really a pem\n");
  expect_error("[tls]\ncert = /etc/hostname\n", "t.conf:2: [tls] cert: set without [tls] key (set both or neither)");
  expect_error("\n[tls]\nkey = /etc/hostname\n", "t.conf:3: [tls] key: set without [tls] cert (set both or neither)");
  snprintf(text, sizeof text, "[tls]\ncert = %s\nkey = %s/nope.pem\n", pem, tmpdir);
  char msg[600];
  snprintf(msg, sizeof msg, "t.conf:3: [tls] key: \"%s/nope.pem\": No such file or directory", tmpdir);
  expect_error(text, msg);
  snprintf(text, sizeof text, "[tls]\ncert = %s\nkey = %s\n", pem, tmpdir);
  snprintf(msg, sizeof msg, "t.conf:3: [tls] key: \"%s\" is not a readable file", tmpdir);
  expect_error(text, msg);
  snprintf(text, sizeof text, "[server]\nweb_root = %s\n", pem);
  snprintf(msg, sizeof msg, "t.conf:2: [server] web_root: \"%s\" is not a directory", pem);
  expect_error(text, msg);
  server_config c;
  snprintf(text, sizeof text, "[tls]\ncert = %s\nkey = %s\n[server]\nweb_root = %s\n[socketio]\nclient_dir = %s\n", pem,
           pem, tmpdir, tmpdir);
  parse_ok(&c, text);
  server_config_free(&c);

  expect_error("[cors]\ncredentials = true\n",
               "t.conf:2: [cors] credentials: true needs [cors] origins to list origins: browsers refuse credentials "
               "with *");
  parse_ok(&c, "[cors]\ncredentials = true\norigins = https://a.example\n");
  server_config_free(&c);

  expect_error("[auth]\njwt_algorithms = HS256\n", "t.conf:2: [auth] jwt_algorithms: HS256 needs [auth] jwt_secret");
  expect_error("[auth]\njwt_algorithms = ES256\njwt_secret = s\n",
               "t.conf:2: [auth] jwt_algorithms: RS256 and ES256 need [auth] jwt_public_key");
  expect_error("[auth]\njwt_required = true\n",
               "t.conf:2: [auth] jwt_required: true needs [auth] jwt_secret or jwt_public_key to check tokens with");
  expect_error("[rooms]\nallowed = lobby, claims:rooms\n",
               "t.conf:2: [rooms] allowed: claims: needs [auth] jwt_secret or jwt_public_key to read tokens");
  snprintf(text, sizeof text, "[auth]\njwt_public_key = %s\njwt_required = on\n[rooms]\nallowed = claims:rooms\n", pem);
  parse_ok(&c, text);
  assert_int_equal(c.auth.jwt_algorithms, SERVER_JWT_RS256 | SERVER_JWT_ES256);
  server_config_free(&c);

  expect_error("[websocket]\nbroadcast_path = /echo\n",
               "t.conf:2: [websocket] broadcast_path: the same path as [websocket] echo_path");
  expect_error("[metrics]\npath = /socket.io/\n", "t.conf:2: [metrics] path: the same path as [socketio] path");
  parse_ok(&c, "[metrics]\npath = /echo\nenabled = false\n");
  server_config_free(&c);
  /* A route on a dynamic namespace pattern, or on the pattern itself. */
  parse_ok(&c, "[namespace \"/dyn-*\"]\n[route \"a\"]\nnamespace = /dyn-1\n[route \"b\"]\nnamespace = /dyn-*\n");
  server_config_free(&c);
}

/* ---- precedence: defaults < file < environment < flags ---- */

static void test_precedence(void **state) {
  (void)state;
  const char *path = write_file("p.conf",
                                "[server]\n"
                                "port = 1000\n"
                                "host = 127.0.0.1\n"
                                "[socketio]\n"
                                "ping_interval = 1s\n"
                                "ping_timeout = 2s\n"
                                "[cors]\n"
                                "origins = https://file.example\n");
  char cfg_env[400];
  snprintf(cfg_env, sizeof cfg_env, "WSIO_CONFIG=%s", path);
  char *env[] = {"PATH=/bin", cfg_env, "WSIO_PORT=2000", "WSIO_SOCKETIO_PING_INTERVAL=3s",
                 "WSIO_WEBSOCKET_ECHO_PATH=", NULL};
  server_config c;
  char err[512] = "";
  int rc = load(&c, env, err, sizeof err, "--port", "3000", "--socketio-ping-timeout=4s", "--cors-origins",
                "https://flag.example", NULL);
  if (rc) fail_msg("%s", err);
  assert_int_equal(c.server.port, 3000);
  assert_string_equal(where(&c, "server.port"), "flag --port");
  assert_string_equal(c.server.host, "127.0.0.1");
  char expect[400];
  snprintf(expect, sizeof expect, "%s:3", path);
  assert_string_equal(where(&c, "server.host"), expect);
  assert_int_equal(c.socketio.ping_interval_ms, 3000);
  assert_string_equal(where(&c, "socketio.ping_interval"), "env WSIO_SOCKETIO_PING_INTERVAL");
  assert_int_equal(c.socketio.ping_timeout_ms, 4000);
  assert_string_equal(where(&c, "socketio.ping_timeout"), "flag --socketio-ping-timeout");
  assert_string_equal(c.cors.origins.v[0], "https://flag.example");
  assert_null(c.websocket.echo_path); /* an empty variable unsets an optional string */
  assert_string_equal(where(&c, "websocket.echo_path"), "env WSIO_WEBSOCKET_ECHO_PATH");
  assert_string_equal(where(&c, "log.level"), "default");
  server_config_free(&c);

  /* --config beats WSIO_CONFIG; the last of a repeated flag wins. */
  const char *other = write_file("q.conf", "[server]\nport = 5000\n");
  char *env2[] = {cfg_env, NULL};
  assert_int_equal(load(&c, env2, err, sizeof err, "--config", other, NULL), 0);
  assert_int_equal(c.server.port, 5000);
  server_config_free(&c);
  assert_int_equal(load(&c, env2, err, sizeof err, "--config=" , NULL), WSIO_EINVAL);
  assert_string_equal(err, "--config: needs a value");
  assert_int_equal(load(&c, NULL, err, sizeof err, "--port", "1", "--port=2", NULL), 0);
  assert_int_equal(c.server.port, 2);
  server_config_free(&c);

  /* An error in a file names the file as given. */
  const char *bad = write_file("bad.conf", "[server]\n\nport = x\n");
  snprintf(expect, sizeof expect, "%s:3: [server] port: \"x\" is not a number", bad);
  expect_load_error(NULL, expect, "--config", bad, NULL);
  snprintf(expect, sizeof expect, "%s/missing.conf: cannot open: No such file or directory", tmpdir);
  char missing[400];
  snprintf(missing, sizeof missing, "%s/missing.conf", tmpdir);
  assert_int_equal(load(&c, NULL, err, sizeof err, "--config", missing, NULL), WSIO_EIO);
  assert_string_equal(err, expect);
  server_config_free(&c);
  assert_int_equal(load(&c, NULL, err, sizeof err, "--config", tmpdir, NULL), WSIO_EIO);
  snprintf(expect, sizeof expect, "%s: cannot read: Is a directory", tmpdir);
  assert_string_equal(err, expect);
  server_config_free(&c);
  char *big = malloc((1 << 20) + 2);
  memset(big, '#', (1 << 20) + 1);
  big[(1 << 20) + 1] = 0;
  const char *bigpath = write_file("big.conf", big);
  snprintf(expect, sizeof expect, "%s: larger than 1 MiB", bigpath);
  expect_load_error(NULL, expect, "--config", bigpath, NULL);
  big[1 << 20] = 0; /* exactly 1 MiB of comment is fine */
  bigpath = write_file("big.conf", big);
  assert_int_equal(load(&c, NULL, err, sizeof err, "--config", bigpath, NULL), 0);
  server_config_free(&c);
  free(big);
  /* Flags are checked before the file is read. */
  expect_load_error(NULL, "unknown flag \"--nope\" (see wsio --help)", "--config", bad, "--nope", NULL);
  /* A cross-check names where the offending value came from. */
  char *env3[] = {"WSIO_CORS_CREDENTIALS=true", NULL};
  expect_load_error(env3,
                    "WSIO_CORS_CREDENTIALS: true needs [cors] origins to list origins: browsers refuse credentials "
                    "with *",
                    NULL);
}

static void test_flags_and_env(void **state) {
  (void)state;
  server_config c;
  char err[512] = "";
  assert_int_equal(load(&c, NULL, err, sizeof err, "--metrics-enabled", "no", "--cors-credentials", "--cors-origins",
                        "https://a.example", "--socketio-serve-client=off", "--check-config", NULL),
                   0);
  assert_false(c.metrics.enabled);
  assert_true(c.cors.credentials);
  assert_false(c.socketio.serve_client);
  assert_int_equal(c.action, SERVER_CONFIG_CHECK);
  server_config_free(&c);
  assert_int_equal(load(&c, NULL, err, sizeof err, "--help", "--version", NULL), 0);
  assert_int_equal(c.action, SERVER_CONFIG_HELP | SERVER_CONFIG_VERSION);
  server_config_free(&c);
  assert_int_equal(load(&c, NULL, err, sizeof err, "-h", NULL), 0);
  assert_int_equal(c.action, SERVER_CONFIG_HELP);
  server_config_free(&c);
  /* Help answers whatever else is wrong. */
  char *bad_env[] = {"WSIO_PORT=x", "WSIO_CONFIG=/nonexistent/wsio.conf", NULL};
  assert_int_equal(load(&c, bad_env, err, sizeof err, "--bogus", "--help", NULL), 0);
  assert_int_equal(c.action, SERVER_CONFIG_HELP);
  assert_int_equal(c.server.port, 3000);
  server_config_free(&c);

  /* The older flag names. */
  assert_int_equal(load(&c, NULL, err, sizeof err, "--ws-echo", "/e", "--ws-broadcast=/b", "--max-message-size", "1000",
                        "--send-buffer-limit", "64KiB", "--ping-interval", "2000", "--deflate", "off", "--origins",
                        "https://o.example", NULL),
                   0);
  assert_string_equal(c.websocket.echo_path, "/e");
  assert_string_equal(c.websocket.broadcast_path, "/b");
  assert_int_equal(c.websocket.max_message_size, 1000);
  assert_int_equal(c.websocket.send_buffer_limit, 65536);
  assert_int_equal(c.websocket.ping_interval_ms, 2000);
  assert_int_equal(c.websocket.deflate, WSIO_DEFLATE_OFF);
  assert_string_equal(c.cors.origins.v[0], "https://o.example");
  assert_string_equal(where(&c, "websocket.ping_interval"), "flag --websocket-ping-interval");
  server_config_free(&c);

  expect_load_error(NULL, "--port: \"abc\" is not a number", "--port", "abc", NULL);
  expect_load_error(NULL, "--port: needs a value", "--port", NULL);
  expect_load_error(NULL, "--ws-echo: \"x\" is not a path (a path starts with \"/\")", "--ws-echo", "x", NULL);
  expect_load_error(NULL, "--ping-interval: \"2x\" is not a duration (examples: 25s, 500ms)", "--ping-interval", "2x",
                    NULL);
  expect_load_error(NULL, "--websocket-ping-interval: \"2000\" needs a unit (examples: 25s, 500ms)",
                    "--websocket-ping-interval", "2000", NULL);
  expect_load_error(NULL, "--deflate: \"sometimes\" is not one of shared, context, off", "--deflate", "sometimes", NULL);
  expect_load_error(NULL, "--port: \"70000\" is out of range (0 to 65535)", "--port", "70000", NULL);
  expect_load_error(NULL, "--max-message-size: \"lots\" is not a size (examples: 1MB, 512KiB, 16MiB)",
                    "--max-message-size", "lots", NULL);
  expect_load_error(NULL, "--tls-cert: set without [tls] key (set both or neither)", "--tls-cert", "/nonexistent.pem",
                    NULL);
  expect_load_error(NULL, "--log-level: \"loud\" is not one of error, warn, info, debug", "--log-level", "loud", NULL);
  expect_load_error(NULL, "unexpected argument \"stray-argument\" (flags start with --; see wsio --help)",
                    "stray-argument", NULL);
  expect_load_error(NULL, "unexpected argument \"-p\" (flags start with --; see wsio --help)", "-p", NULL);
  expect_load_error(NULL, "--host: \"a\\x01\" contains a control character", "--host", "a\x01", NULL);
  expect_load_error(NULL, "--host: is not valid UTF-8", "--host", "a\xff", NULL);

  char *env[] = {"WSIO_PORT=abc", NULL};
  expect_load_error(env, "WSIO_PORT: \"abc\" is not a number", NULL);
  char *env2[] = {"WSIO_LOG_LEVEL=debug", "WSIO_API_KEY=k3y", "WSIO_WORKERS=3", "OTHER=1", "WSIO_TLS_CERT", NULL};
  assert_int_equal(load(&c, env2, err, sizeof err, NULL), 0);
  assert_int_equal(c.log.level, LOG_DEBUG);
  assert_string_equal(c.api.key, "k3y");
  assert_int_equal(c.server.workers, 3);
  assert_null(c.tls.cert);
  server_config_free(&c);
}

/* ---- dump ---- */

static const char full_text[] =
    "[server]\n"
    "port = 8080\n"
    "workers = 3\n"
    "[socketio]\n"
    "ping_interval = 1500ms\n"
    "max_payload = 512KiB\n"
    "transports = websocket\n"
    "recovery = 2m\n"
    "[cors]\n"
    "origins = https://a.example,https://b.example\n"
    "credentials = true\n"
    "[websocket]\n"
    "broadcast_path = /all\n"
    "echo_path = \"\"\n"
    "deflate = off\n"
    "[api]\n"
    "key = \"s3cret with # and \\\"quotes\\\"\"\n"
    "[auth]\n"
    "jwt_secret = \" padded \"\n"
    "jwt_audience = \"line\\nbreak\"\n"
    "[rooms]\n"
    "allowed = lobby,game-*\n"
    "leave_event =\n"
    "[webhooks]\n"
    "events = disconnect\n"
    "url = https://hooks.example/x?a=1\n"
    "[log]\n"
    "format = json\n"
    "[namespace \"/chat\"]\n"
    "[namespace \"/dyn-*\"]\n"
    "[route \"a \\\"quoted\\\"\"]\n"
    "namespace = /chat\n"
    "to = \"room:x #y\"\n"
    "ack = {\"ok\":1}\n"
    "[route \"b-*\"]\n"
    "emit = bee\n"
    "to = room-arg:2\n"
    "data = arg:0\n";

static void test_dump(void **state) {
  (void)state;
  server_config c;
  parse_ok(&c, full_text);
  char *text = dump(&c, 0);
  assert_non_null(strstr(text, "\n[server]\nhost = 0.0.0.0                          # default\n"
                               "port = 8080                             # t.conf:2\n"));
  assert_non_null(strstr(text, "\nworkers = 3                             # t.conf:3\n"));
  assert_non_null(strstr(text, "\nping_interval = 1500ms                  # t.conf:5\n"));
  assert_non_null(strstr(text, "\nmax_payload = 512KiB                    # t.conf:6\n"));
  assert_non_null(strstr(text, "\nrecovery = 2m                           # t.conf:8\n"));
  assert_non_null(strstr(text, "\nkey = <hidden>                          # t.conf:17\n"));
  assert_non_null(strstr(text, "\njwt_secret = <hidden>                   # t.conf:19\n"));
  assert_non_null(strstr(text, "\njwt_algorithms = HS256                  # default (those the keys allow)\n"));
  assert_non_null(strstr(text, "\njwt_audience = \"line\\nbreak\"            # t.conf:20\n"));
  assert_non_null(strstr(text, "\necho_path = \"\"                          # t.conf:14\n"));
  assert_non_null(strstr(text, "\norigins = https://a.example,https://b.example # t.conf:10\n"));
  assert_non_null(strstr(text, "\n[namespace \"/dyn-*\"]                    # t.conf:30\n"));
  assert_non_null(strstr(text, "\n[route \"a \\\"quoted\\\"\"]                  # t.conf:31\nnamespace = /chat\n"
                               "# emit: the received event's name\nto = \"room:x #y\"\ndata = all\nack = {\"ok\":1}\n"));
  assert_non_null(strstr(text, "\n[route \"b-*\"]                           # t.conf:35\nnamespace = /\nemit = bee\n"
                               "to = room-arg:2\ndata = arg:0\nack = none\n"));
  assert_null(strstr(text, "s3cret"));
  free(text);

  /* With the secrets, the dump reads back as the same configuration. */
  text = dump(&c, SERVER_CONFIG_DUMP_SECRETS);
  assert_non_null(strstr(text, "\nkey = \"s3cret with # and \\\"quotes\\\"\" "));
  server_config back;
  char err[512] = "";
  int rc = parse(&back, text, err, sizeof err);
  if (rc) fail_msg("%s\nin:\n%s", err, text);
  char diff[2048];
  assert_int_equal(server_config_diff(&c, &back, diff, sizeof diff, NULL), 0);
  assert_string_equal(diff, "");
  server_config_free(&back);
  free(text);
  server_config_free(&c);

  /* The defaults (no file) dump and read back too. */
  char e[256];
  assert_int_equal(load(&c, NULL, e, sizeof e, NULL), 0);
  text = dump(&c, SERVER_CONFIG_DUMP_SECRETS);
  assert_non_null(strstr(text, "# No file: built-in defaults and routes.\n"));
  assert_non_null(strstr(text, "\nworkers = "));
  assert_non_null(strstr(text, "# default (auto: the CPU cores)\n"));
  assert_non_null(strstr(text, "\n[route \"serverMsg\"]                     # default\n"));
  parse_ok(&back, text);
  assert_int_equal(server_config_diff(&c, &back, diff, sizeof diff, NULL), 0);
  server_config_free(&back);
  free(text);
  server_config_free(&c);

  FILE *ro = fopen("/dev/full", "w");
  if (ro) {
    parse_ok(&c, "");
    assert_int_equal(server_config_dump(&c, ro, 0), WSIO_EIO);
    server_config_free(&c);
    fclose(ro);
  }
}

/* ---- diff ---- */

static void test_diff(void **state) {
  (void)state;
  server_config a, b;
  parse_ok(&a,
           "[server]\nport = 3000\n[cors]\norigins = *\n[api]\nkey = one\n[namespace \"/old\"]\n"
           "[route \"keep\"]\n[route \"gone\"]\n[route \"edit\"]\nto = all\n");
  parse_ok(&b,
           "[server]\nport = 8080\n[cors]\norigins = https://x.example\n[api]\nkey = two\n[log]\nlevel = debug\n"
           "[websocket]\necho_path =\n[namespace \"/new\"]\n[route \"keep\"]\n[route \"edit\"]\nto = self\n"
           "[route \"new\"]\n");
  char out[2048];
  server_config_changes ch;
  int n = server_config_diff(&a, &b, out, sizeof out, &ch);
  assert_string_equal(out,
                      "restart needed: [server] port: 3000 -> 8080\n"
                      "applied live: [cors] origins: * -> https://x.example\n"
                      "restart needed: [websocket] echo_path: /echo -> (none)\n"
                      "applied live: [api] key: changed\n"
                      "applied live: [log] level: info -> debug\n"
                      "applied live: [route \"gone\"] removed\n"
                      "applied live: [route \"edit\"] changed\n"
                      "applied live: [route \"new\"] added\n"
                      "restart needed: [namespace \"/old\"] removed\n"
                      "restart needed: [namespace \"/new\"] added\n");
  assert_int_equal(n, 10);
  assert_int_equal(ch.live, 6);
  assert_int_equal(ch.restart, 4);
  assert_int_equal(server_config_diff(&a, &a, out, sizeof out, &ch), 0);
  assert_string_equal(out, "");
  assert_int_equal(ch.live + ch.restart, 0);
  /* Truncated output stays a C string; the count does not change. */
  char small[20];
  assert_int_equal(server_config_diff(&a, &b, small, sizeof small, NULL), 10);
  assert_string_equal(small, "restart needed: [se");
  assert_int_equal(server_config_diff(&a, &b, NULL, 0, NULL), 10);
  server_config_free(&a);
  server_config_free(&b);

  /* Another certificate or key loads live; turning TLS on or off takes a restart. */
  server_config none;
  parse_ok(&none, "");
  parse_ok(&a, "[tls]\ncert = /etc/passwd\nkey = /etc/group\n");
  parse_ok(&b, "[tls]\ncert = /etc/group\nkey = /etc/group\n");
  assert_int_equal(server_config_diff(&a, &b, out, sizeof out, &ch), 1);
  assert_string_equal(out, "applied live: [tls] cert: /etc/passwd -> /etc/group\n");
  assert_int_equal(ch.live, 1);
  assert_int_equal(server_config_diff(&none, &a, out, sizeof out, &ch), 2);
  assert_int_equal(ch.restart, 2);
  assert_int_equal(server_config_diff(&b, &none, out, sizeof out, &ch), 2);
  assert_int_equal(ch.restart, 2);
  server_config_free(&none);
  server_config_free(&a);
  server_config_free(&b);

  /* Long or multi-line values stay on one line. */
  parse_ok(&a, "");
  parse_ok(&b, "[auth]\njwt_audience = \"a\\nb\"\njwt_issuer = "
               "https://a-very-long-issuer-name.example/with/a/long/path/that/goes/on/and/on\n");
  assert_int_equal(server_config_diff(&a, &b, out, sizeof out, &ch), 2);
  assert_string_equal(out,
                      "applied live: [auth] jwt_audience: (none) -> \"a\\nb\"\n"
                      "applied live: [auth] jwt_issuer: (none) -> "
                      "\"https://a-very-long-issuer-name.example/with/a/long/path/...\"\n");
  server_config_free(&a);
  server_config_free(&b);

  /* Same routes in another order: behaviour changes (first match wins). */
  parse_ok(&a, "[route \"x\"]\n[route \"y\"]\n");
  parse_ok(&b, "[route \"y\"]\n[route \"x\"]\n");
  assert_int_equal(server_config_diff(&a, &b, out, sizeof out, &ch), 1);
  assert_string_equal(out, "applied live: routes reordered (the first match wins)\n");
  assert_int_equal(ch.live, 1);
  server_config_free(&a);
  server_config_free(&b);

  /* Every plain section is either live or restart as documented. */
  static const struct { const char *text; int live; } each[] = {
      {"[server]\nhost = ::1\n", 0},          {"[server]\nworkers = 9\n", 0},
      {"[tls]\n", -1},                        {"[socketio]\npath = /io/\n", 0},
      {"[socketio]\nping_timeout = 1s\n", 0}, {"[cors]\ncredentials = false\norigins = https://q.example\n", 1},
      {"[rooms]\njoin_event = j\n", 1},       {"[auth]\njwt_issuer = me\n", 1},
      {"[proxy]\nurl = http://p\n", 1},       {"[webhooks]\nretries = 0\n", 1},
      {"[limits]\nhandshakes_per_ip_per_second = 5\n", 1}, {"[limits]\nmessages_per_second = 5\n", 0},
      {"[cors]\nwebsocket_origin_check = false\n", 0}, {"[log]\nformat = json\n", 1},
      {"[metrics]\npath = /m\n", 1},       {"[socketio]\nsend_buffer_limit = 1MiB\n", 0}};
  for (size_t i = 0; i < sizeof each / sizeof each[0]; i++) {
    if (each[i].live < 0) continue;
    parse_ok(&a, "");
    parse_ok(&b, each[i].text);
    assert_int_equal(server_config_diff(&a, &b, out, sizeof out, &ch), 1);
    assert_int_equal(ch.live, each[i].live ? 1 : 0);
    assert_int_equal(ch.restart, each[i].live ? 0 : 1);
    server_config_free(&a);
    server_config_free(&b);
  }
}

/* ---- robustness: the same file in every shape ---- */

static char *read_source(const char *rel) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", WSIO_SOURCE_DIR, rel);
  FILE *f = fopen(path, "rb");
  if (!f) fail_msg("cannot open %s", path);
  char *text = malloc(1 << 20);
  size_t n = fread(text, 1, (1 << 20) - 1, f);
  fclose(f);
  text[n] = 0;
  return text;
}

/* Every prefix of a rich file either parses or fails with a message; CRLF parses the same as LF. */
static void test_every_cut_and_crlf(void **state) {
  (void)state;
  size_t len = strlen(full_text);
  for (size_t cut = 0; cut <= len; cut++) {
    server_config c;
    char err[512] = "";
    assert_int_equal(server_config_init(&c), 0);
    int rc = server_config_parse(&c, "t.conf", full_text, cut, err, sizeof err);
    assert_true(rc == 0 || (rc == WSIO_EINVAL && strncmp(err, "t.conf:", 7) == 0));
    server_config_free(&c);
  }
  char crlf[4096];
  size_t o = 0;
  for (size_t i = 0; i < len; i++) {
    if (full_text[i] == '\n') crlf[o++] = '\r';
    crlf[o++] = full_text[i];
  }
  crlf[o] = 0;
  server_config a, b;
  parse_ok(&a, full_text);
  parse_ok(&b, crlf);
  assert_int_equal(server_config_diff(&a, &b, NULL, 0, NULL), 0);
  server_config_free(&a);
  server_config_free(&b);
}

/* The example file parses, and covers every setting. */
static void test_example_file(void **state) {
  (void)state;
  char *text = read_source("wsio.conf.example");
  server_config c;
  parse_ok(&c, text);
  assert_true(c.nroutes >= 4);
  char *listing = dump(&c, 0);
  /* Every "key =" of the dump (every setting) appears in the example, commented or not. */
  for (char *line = strtok(listing, "\n"); line; line = strtok(NULL, "\n")) {
    if (line[0] == '[' || line[0] == '#') continue;
    char key[64];
    if (sscanf(line, "%63[a-z0-9_] =", key) != 1) continue; /* digits: allow_eio3 */
    char needle[80];
    snprintf(needle, sizeof needle, "%s =", key);
    if (!strstr(text, needle)) fail_msg("wsio.conf.example does not mention %s", key);
  }
  free(listing);
  server_config_free(&c);
  free(text);
}

/* docs/wsio.md holds the generated reference, unchanged. */
static void test_docs_in_sync(void **state) {
  (void)state;
  char *doc = read_source("docs/wsio.md");
  char *gen = NULL;
  size_t glen = 0;
  FILE *f = open_memstream(&gen, &glen);
  server_config_markdown(f);
  fclose(f);
  const char *begin = strstr(doc, "<!-- settings:begin -->\n"), *end = strstr(doc, "<!-- settings:end -->");
  assert_non_null(begin);
  assert_non_null(end);
  begin += strlen("<!-- settings:begin -->\n");
  if ((size_t)(end - begin) != glen || memcmp(begin, gen, glen) != 0)
    fail_msg("docs/wsio.md is out of date; the table between the settings markers should be:\n%s", gen);
  free(gen);
  free(doc);
}

static void test_usage(void **state) {
  (void)state;
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  server_config_usage(f);
  fclose(f);
  static const char *const must[] = {"--port PORT", "--socketio-ping-interval DURATION", "--cors-origins LIST",
                                     "--ws-echo", "--websocket-deflate shared|context|off", "--check-config",
                                     "--metrics-path PATH", "(default: 25s)", "WSIO_PORT"};
  for (size_t i = 0; i < sizeof must / sizeof must[0]; i++)
    if (!strstr(text, must[i])) fail_msg("--help lacks %s", must[i]);
  free(text);
}

/* Mechanical names never collide, with each other, the older names or the program's own flags. */
static void test_names_unique(void **state) {
  (void)state;
  static char flags[256][96], envs[256][96];
  size_t n = cfg_nsettings;
  assert_true(n < 256);
  for (size_t i = 0; i < n; i++) {
    cfg_flag_name(&cfg_settings[i], flags[i], sizeof flags[i]);
    cfg_env_name(&cfg_settings[i], envs[i], sizeof envs[i]);
    assert_string_not_equal(flags[i], "--config");
    assert_string_not_equal(flags[i], "--check-config");
    assert_string_not_equal(envs[i], "WSIO_CONFIG");
    for (const cfg_alias *a = cfg_aliases; a->flag; a++) assert_string_not_equal(flags[i] + 2, a->flag);
    for (size_t j = 0; j < i; j++) {
      assert_string_not_equal(flags[i], flags[j]);
      assert_string_not_equal(envs[i], envs[j]);
    }
  }
  for (const cfg_alias *a = cfg_aliases; a->flag; a++) assert_true(cfg_find_dotted(a->name) >= 0);
  assert_string_equal(flags[cfg_find("server", "web_root")], "--web-root");
  assert_string_equal(envs[cfg_find("socketio", "ping_interval")], "WSIO_SOCKETIO_PING_INTERVAL");
  assert_string_equal(envs[cfg_find("api", "key")], "WSIO_API_KEY");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_embedded_default),
      cmocka_unit_test(test_durations),
      cmocka_unit_test(test_sizes_numbers_bools),
      cmocka_unit_test(test_strings_lists_enums),
      cmocka_unit_test(test_syntax_errors),
      cmocka_unit_test(test_did_you_mean),
      cmocka_unit_test(test_routes),
      cmocka_unit_test(test_match),
      cmocka_unit_test(test_cross_checks),
      cmocka_unit_test(test_precedence),
      cmocka_unit_test(test_flags_and_env),
      cmocka_unit_test(test_dump),
      cmocka_unit_test(test_diff),
      cmocka_unit_test(test_every_cut_and_crlf),
      cmocka_unit_test(test_example_file),
      cmocka_unit_test(test_docs_in_sync),
      cmocka_unit_test(test_usage),
      cmocka_unit_test(test_names_unique),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
