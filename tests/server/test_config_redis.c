/* The program's [redis] settings for TLS and protected sentinels (src/server/config.c): read from a file,
 * flags and the environment, the secret kept out of dumps, and the combinations the URL does not allow
 * refused with the setting's place. The rest of the settings are tests/server/test_config.c's. */
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
#include "wsio.h"

static char tmpdir[256], ca[300];

static int setup(void **state) {
  (void)state;
  snprintf(tmpdir, sizeof tmpdir, "%s/wsio-config-redis-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  assert_non_null(mkdtemp(tmpdir));
  snprintf(ca, sizeof ca, "%s/ca.pem", tmpdir);
  FILE *f = fopen(ca, "w");
  assert_non_null(f);
  fputs("not checked here: wsio_io_redis reads it\n", f);
  fclose(f);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  unlink(ca);
  return rmdir(tmpdir);
}

static int parse(server_config *c, const char *text, char *err, size_t cap) {
  assert_int_equal(server_config_init(c), 0);
  int rc = server_config_parse(c, "t.conf", text, strlen(text), err, cap);
  if (rc == 0) rc = server_config_finish(c, err, cap);
  return rc;
}

static void test_file(void **state) {
  (void)state;
  char text[2048], err[512] = "";
  snprintf(text, sizeof text,
           "[redis]\n"
           "url = rediss+sentinel://:data@10.0.0.5,10.0.0.6/mymaster\n"
           "tls_ca = %s\n"
           "tls_cert = %s\n"
           "tls_key = %s\n"
           "tls_server_name = redis.internal\n"
           "sentinel_user = watcher\n"
           "sentinel_password = s3cret\n",
           ca, ca, ca);
  server_config c;
  if (parse(&c, text, err, sizeof err) != 0) fail_msg("%s", err);
  assert_string_equal(c.redis.tls_ca, ca);
  assert_string_equal(c.redis.tls_cert, ca);
  assert_string_equal(c.redis.tls_key, ca);
  assert_string_equal(c.redis.tls_server_name, "redis.internal");
  assert_int_equal(c.redis.tls_insecure, 0);
  assert_string_equal(c.redis.sentinel_user, "watcher");
  assert_string_equal(c.redis.sentinel_password, "s3cret");
  /* the dump hides the password, as it hides the URL */
  char *out = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&out, &len);
  server_config_dump(&c, f, 0);
  fclose(f);
  assert_non_null(strstr(out, "sentinel_user = watcher"));
  assert_null(strstr(out, "s3cret"));
  free(out);
  server_config_free(&c);
  /* unset: NULL, verification on */
  if (parse(&c, "[redis]\nurl = rediss://cache:6380\n", err, sizeof err) != 0) fail_msg("%s", err);
  assert_null(c.redis.tls_ca);
  assert_null(c.redis.sentinel_password);
  assert_int_equal(c.redis.tls_insecure, 0);
  server_config_free(&c);
}

static void test_flags_env(void **state) {
  (void)state;
  char *argv[] = {"wsio", "--redis", "rediss://127.0.0.1:6380", "--redis-tls-insecure", "true", NULL};
  char *envp[] = {"WSIO_REDIS_TLS_SERVER_NAME=redis.test", NULL};
  server_config c;
  char err[512] = "";
  if (server_config_load(&c, 5, argv, envp, err, sizeof err) != 0) fail_msg("%s", err);
  assert_int_equal(c.redis.tls_insecure, 1);
  assert_string_equal(c.redis.tls_server_name, "redis.test");
  server_config_free(&c);
  char *argv2[] = {"wsio", "--redis", "redis+sentinel://s1/m", NULL};
  char *envp2[] = {"WSIO_REDIS_SENTINEL_PASSWORD=from-env", NULL};
  if (server_config_load(&c, 3, argv2, envp2, err, sizeof err) != 0) fail_msg("%s", err);
  assert_string_equal(c.redis.sentinel_password, "from-env");
  server_config_free(&c);
}

/* What the URL does not use is refused, at the setting's line. */
static void test_refusals(void **state) {
  (void)state;
  char f1[600], f2[600];
  snprintf(f1, sizeof f1, "[redis]\nurl = redis://h\ntls_ca = %s\n", ca);
  snprintf(f2, sizeof f2, "[redis]\nurl = rediss://h\ntls_cert = %s\n", ca);
  static const char *const other[][2] = {
      {"[redis]\nurl = redis://h\ntls_insecure = true\n",
       "t.conf:3: [redis] tls_insecure: needs [redis] url to be rediss:// or rediss+sentinel:// (TLS)"},
      {"[redis]\ntls_server_name = h\n",
       "t.conf:2: [redis] tls_server_name: needs [redis] url to be rediss:// or rediss+sentinel:// (TLS)"},
      {"[redis]\nurl = rediss://h\nsentinel_password = x\n",
       "t.conf:3: [redis] sentinel_password: needs [redis] url to be redis+sentinel:// or rediss+sentinel://"},
      {"[redis]\nurl = redis+sentinel://s/m\nsentinel_user = u\n",
       "t.conf:3: [redis] sentinel_user: needs [redis] sentinel_password"},
      {"[redis]\nurl = rediss://h\ntls_server_name = a b\n", NULL},
  };
  const char *texts[] = {f1, f2, other[0][0], other[1][0], other[2][0], other[3][0], other[4][0]};
  const char *want[] = {"t.conf:3: [redis] tls_ca: needs [redis] url to be rediss:// or rediss+sentinel:// (TLS)",
                        "t.conf:3: [redis] tls_cert: [redis] tls_cert and tls_key go together (set both or neither)",
                        other[0][1], other[1][1], other[2][1], other[3][1], other[4][1]};
  for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
    server_config c;
    char err[512] = "";
    int rc = parse(&c, texts[i], err, sizeof err);
    if (rc != WSIO_EINVAL) fail_msg("expected an error for:\n%s", texts[i]);
    if (want[i] && strcmp(err, want[i]) != 0) fail_msg("for:\n%s\nexpected: %s\n     got: %s", texts[i], want[i], err);
    server_config_free(&c);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_file),
      cmocka_unit_test(test_flags_env),
      cmocka_unit_test(test_refusals),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
