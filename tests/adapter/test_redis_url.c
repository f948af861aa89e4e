/* Unit tests of src/adapter/redis_url.c's pure parts for TLS and Sentinel credentials: rediss:// and
 * rediss+sentinel:// URLs, percent-encoding, the reasons given for bad forms, and the settings a URL cannot
 * hold (redis_url_apply, wsio_io_redis). The plain redis:// forms are tests/adapter/test_redis.c's; TLS
 * against real servers is tests/interop/test_redis_tls*.mjs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "adapter/redis_conn.h"
#include "wsio.h"

static void test_rediss(void **st) {
  (void)st;
  redis_url u, c;
  assert_int_equal(redis_url_parse("rediss://cache.example.com", &u), 0);
  assert_int_equal(u.tls, 1);
  assert_string_equal(u.host, "cache.example.com");
  assert_int_equal(u.port, 6379); /* Redis has no port of its own for TLS */
  assert_null(u.master);
  redis_url_free(&u);
  assert_int_equal(redis_url_parse("rediss://app:p%40ss@[::1]:6380/4", &u), 0);
  assert_int_equal(u.tls, 1);
  assert_string_equal(u.host, "::1");
  assert_int_equal(u.port, 6380);
  assert_string_equal(u.user, "app");
  assert_string_equal(u.password, "p@ss");
  assert_int_equal(u.db, 4);
  assert_int_equal(redis_url_copy(&c, &u), 0);
  redis_url_free(&u);
  assert_int_equal(c.tls, 1);
  assert_string_equal(c.password, "p@ss");
  redis_url_free(&c);
  assert_int_equal(redis_url_parse("redis://h", &u), 0);
  assert_int_equal(u.tls, 0);
  redis_url_free(&u);
}

static void test_rediss_sentinel(void **st) {
  (void)st;
  redis_url u;
  assert_int_equal(redis_url_parse("rediss+sentinel://:data@s1,s2:5000/my%20master/1", &u), 0);
  assert_int_equal(u.tls, 1);
  assert_null(u.host);
  assert_string_equal(u.master, "my master");
  assert_string_equal(u.password, "data"); /* the data servers' */
  assert_null(u.sentinel_password);        /* the sentinels' are settings, not in the URL */
  assert_int_equal(u.nsentinels, 2);
  assert_int_equal(u.sentinels[0].port, 26379);
  assert_int_equal(u.sentinels[1].port, 5000);
  assert_int_equal(u.db, 1);
  redis_url_free(&u);
  assert_int_equal(redis_url_parse("redis+sentinel://s1/m", &u), 0);
  assert_int_equal(u.tls, 0);
  redis_url_free(&u);
}

/* Every escape a password needs, and the '%' that is not one. */
static void test_percent(void **st) {
  (void)st;
  redis_url u;
  assert_int_equal(redis_url_parse("rediss://us%3Aer:a%2Fb%3Ac%40d%25e%2b@h", &u), 0);
  assert_string_equal(u.user, "us:er");
  assert_string_equal(u.password, "a/b:c@d%e+");
  redis_url_free(&u);
  assert_int_equal(redis_url_parse("redis://:100%@h", &u), 0); /* not an escape: kept */
  assert_string_equal(u.password, "100%");
  redis_url_free(&u);
  assert_int_equal(redis_url_parse("redis://:a%zz%4@h", &u), 0);
  assert_string_equal(u.password, "a%zz%4");
  redis_url_free(&u);
  assert_int_equal(redis_url_parse("redis://:a%-1@h", &u), 0); /* strtol would have read -1 */
  assert_string_equal(u.password, "a%-1");
  redis_url_free(&u);
}

/* Bad forms: refused with a reason that says what is wrong, and never echoes the password. */
static void test_reasons(void **st) {
  (void)st;
  static const struct {
    const char *url, *why;
  } bad[] = {
      {"", "empty"},
      {"http://h", "unknown scheme"},
      {"redis+tls://h", "unknown scheme"},
      {"rediss:/h", "unknown scheme"},
      {"rediss://", "no host"},
      {"rediss://:pw@", "no host"},
      {"rediss://h:0", "the port of h must be a number from 1 to 65535"},
      {"rediss://h:65536", "must be a number from 1 to 65535"},
      {"rediss://h:+80", "must be a number from 1 to 65535"},
      {"rediss://h:", "must be a number from 1 to 65535"},
      {"rediss://[::1", "without its closing ]"},
      {"rediss://[::1]x", "expected :port after the ]"},
      {"rediss://h/x", "the database must be a number"},
      {"rediss://h/-1", "the database must be a number"},
      {"rediss://:se/cret@h", "write a '/' in the user or password as %2F"},
      {"rediss://:s%00x@h", "%00 in the user or password"},
      {"rediss+sentinel://s1", "no master name: rediss+sentinel://"},
      {"redis+sentinel://s1/", "no master name: redis+sentinel://"},
      {"rediss+sentinel://s1//2", "an empty master name"},
      {"rediss+sentinel://s1/m/x", "the database must be a number"},
      {"rediss+sentinel://s1,/m", "no host"},
      {"rediss+sentinel://s1:0/m", "must be a number from 1 to 65535"},
      {"rediss+sentinel://s1/m%00", "%00 in the master name"},
      {"rediss+sentinel://a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q/m", "17 sentinels: at most 16"},
      {"rediss://:secret", "no host"},   /* a password without its '@' */
      {"rediss://h:secret", "the port of h must be"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    redis_url u;
    char why[300] = "";
    int rc = redis_url_parse_why(bad[i].url, &u, why, sizeof why);
    if (rc != WSIO_EINVAL || !strstr(why, bad[i].why))
      fail_msg("%s: rc %d, why \"%s\" (expected \"%s\")", bad[i].url, rc, why, bad[i].why);
    assert_null(u.host);
    assert_null(u.password);
    assert_false(strstr(why, "cret") || strstr(why, "pw")); /* se/cret, s%00x and secret: never echoed */
    /* without a reason buffer too */
    assert_int_equal(redis_url_parse(bad[i].url, &u), WSIO_EINVAL);
  }
  redis_url u;
  assert_int_equal(redis_url_parse_why(NULL, &u, NULL, 0), WSIO_EINVAL);
}

/* A copy carries the sentinel credentials and shares the TLS context. */
static void test_copy_credentials(void **st) {
  (void)st;
  redis_url u, c;
  assert_int_equal(redis_url_parse("rediss+sentinel://s1/m", &u), 0);
  wsio_redis_config cfg = {.sentinel_user = "watcher", .sentinel_password = "s:pw", .tls_insecure = 1};
  assert_int_equal(redis_url_apply(&u, &cfg), 0);
  assert_string_equal(u.sentinel_user, "watcher");
  assert_string_equal(u.sentinel_password, "s:pw");
  assert_non_null(u.tls_ctx);
  assert_true(rtls_ctx_insecure(u.tls_ctx));
  assert_int_equal(redis_url_copy(&c, &u), 0);
  assert_ptr_equal(c.tls_ctx, u.tls_ctx);
  redis_url_free(&u); /* the copy keeps the context alive */
  assert_string_equal(c.sentinel_password, "s:pw");
  rtls *t = rtls_new(c.tls_ctx, "s1");
  assert_non_null(t);
  rtls_free(t);
  redis_url_free(&c);
}

/* Settings that do not fit the URL are refused, not ignored: a TLS setting with redis:// would otherwise
 * leave the traffic in clear while the operator believes it protected. */
static void test_apply_refusals(void **st) {
  (void)st;
  static const struct {
    const char *url;
    wsio_redis_config cfg;
    int rc;
  } cases[] = {
      {"redis://h", {.tls_ca_file = "/etc/hostname"}, WSIO_EINVAL},
      {"redis://h", {.tls_insecure = 1}, WSIO_EINVAL},
      {"redis://h", {.tls_server_name = "h"}, WSIO_EINVAL},
      {"redis+sentinel://s/m", {.tls_cert_file = "/etc/hostname", .tls_key_file = "/etc/hostname"}, WSIO_EINVAL},
      {"rediss://h", {.sentinel_password = "x"}, WSIO_EINVAL},
      {"redis://h", {.sentinel_user = "u", .sentinel_password = "x"}, WSIO_EINVAL},
      {"redis+sentinel://s/m", {.sentinel_user = "u"}, WSIO_EINVAL},
      {"rediss://h", {.tls_cert_file = "/etc/hostname"}, WSIO_EINVAL},
      {"rediss://h", {.tls_key_file = "/etc/hostname"}, WSIO_EINVAL},
      {"rediss://h", {.tls_ca_file = "/nonexistent/ca.pem"}, WSIO_ETLS},
      {"rediss://h", {.tls_ca_file = "/etc/hostname"}, WSIO_ETLS}, /* no certificate in it */
      {"rediss://h", {.tls_cert_file = "/etc/hostname", .tls_key_file = "/etc/hostname", .tls_insecure = 1},
       WSIO_ETLS},
      {"rediss://h", {0}, 0}, /* the system's trust store */
      {"redis+sentinel://s/m", {.sentinel_password = "x"}, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    redis_url u;
    assert_int_equal(redis_url_parse(cases[i].url, &u), 0);
    int rc = redis_url_apply(&u, &cases[i].cfg);
    if (rc != cases[i].rc) fail_msg("case %zu (%s): %d, expected %d", i, cases[i].url, rc, cases[i].rc);
    redis_url_free(&u);
  }
}

/* A TLS URL whose context was never made is refused, never tried in clear. */
static void test_no_plain_fallback(void **st) {
  (void)st;
  redis_url u;
  char err[200] = "";
  int cluster;
  assert_int_equal(redis_url_parse("rediss://127.0.0.1:1", &u), 0);
  assert_int_equal(redis_probe(&u, 200, err, sizeof err, &cluster), WSIO_EINVAL);
  assert_string_equal(err, "a TLS URL without its TLS context");
  redis_url_free(&u);
  assert_int_equal(redis_url_parse("rediss+sentinel://127.0.0.1:1/m", &u), 0);
  assert_int_equal(redis_sentinel_resolve(&u, 200, err, sizeof err), WSIO_EINVAL);
  redis_url_free(&u);
}

/* The same refusals through the public function, before anything is connected. */
static void test_io_redis_refusals(void **st) {
  (void)st;
  wsio_server_config sc = {.log_level = 0};
  wsio_server *s = wsio_server_new(&sc);
  wsio_io *io = wsio_io_new(s, NULL);
  assert_non_null(io);
  wsio_redis_config c = {.url = "redis://127.0.0.1:1", .tls_ca_file = "/etc/hostname", .degraded_start = 1};
  assert_int_equal(wsio_io_redis(io, &c), WSIO_EINVAL);
  c = (wsio_redis_config){.url = "rediss://127.0.0.1:1", .tls_ca_file = "/nonexistent", .degraded_start = 1};
  assert_int_equal(wsio_io_redis(io, &c), WSIO_ETLS);
  c = (wsio_redis_config){.url = "redis://127.0.0.1:1", .sentinel_password = "x", .degraded_start = 1};
  assert_int_equal(wsio_io_redis(io, &c), WSIO_EINVAL);
  c = (wsio_redis_config){.url = "rediss+sentinel://127.0.0.1:1/m/x", .degraded_start = 1};
  assert_int_equal(wsio_io_redis(io, &c), WSIO_EINVAL);
  /* nothing listens on port 1: refused at start, a plain I/O error and not a TLS one */
  c = (wsio_redis_config){.url = "rediss://127.0.0.1:1", .tls_insecure = 1, .connect_timeout_ms = 500};
  assert_int_equal(wsio_io_redis(io, &c), WSIO_EIO);
  /* degraded: attached, retrying in the back */
  c = (wsio_redis_config){.url = "rediss://127.0.0.1:1", .degraded_start = 1};
  assert_int_equal(wsio_io_redis(io, &c), 0);
  wsio_redis_stats rs;
  assert_int_equal(wsio_io_redis_stats(io, &rs), 0);
  assert_int_equal(rs.connected, 0);
  wsio_server_free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rediss),          cmocka_unit_test(test_rediss_sentinel),
      cmocka_unit_test(test_percent),         cmocka_unit_test(test_reasons),
      cmocka_unit_test(test_copy_credentials), cmocka_unit_test(test_apply_refusals),
      cmocka_unit_test(test_no_plain_fallback), cmocka_unit_test(test_io_redis_refusals),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
