/*
 * Admin UI logins (src/sio/admin_auth.c): bcrypt hashes as bcryptjs makes them ($2a$) and as htpasswd and
 * Python's bcrypt make them ($2y$, $2b$) are checked by libxcrypt; malformed hashes are refused before any
 * hashing; sessions are bound to their credentials, expire, and the table never grows past its size.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sio/admin.h"

/* bcryptjs.hashSync("s3cret", 4) */
static const char HASH_2A[] = "$2a$04$D/3kNZZejFKrfbIkF8Yf/u7MZHcbUVgxqcAhGc4a67r.s5HOfO7/W";

static void test_hash_valid(void **state) {
  (void)state;
  assert_true(sio_admin_hash_valid(HASH_2A));
  char h[61];
  memcpy(h, HASH_2A, sizeof h);
  h[2] = 'b';
  assert_true(sio_admin_hash_valid(h));
  h[2] = 'y';
  assert_true(sio_admin_hash_valid(h));
  h[2] = 'x';
  assert_false(sio_admin_hash_valid(h));
  assert_false(sio_admin_hash_valid(NULL));
  assert_false(sio_admin_hash_valid(""));
  assert_false(sio_admin_hash_valid("$2a$04$short"));
  assert_false(sio_admin_hash_valid("$2a$03$D/3kNZZejFKrfbIkF8Yf/u7MZHcbUVgxqcAhGc4a67r.s5HOfO7/W")); /* cost < 4 */
  assert_false(sio_admin_hash_valid("$2a$32$D/3kNZZejFKrfbIkF8Yf/u7MZHcbUVgxqcAhGc4a67r.s5HOfO7/W")); /* > 31 */
  assert_false(sio_admin_hash_valid("$2a$04$D/3kNZZejFKrfbIkF8Yf/u7MZHcbUVgxqcAhGc4a67r.s5HOfO7/!"));
  assert_false(sio_admin_hash_valid("$1$04$D/3kNZZejFKrfbIkF8Yf/u7MZHcbUVgxqcAhGc4a67r.s5HOfO7/Wq"));
}

static void test_password_check(void **state) {
  (void)state;
  assert_true(sio_admin_password_check("s3cret", HASH_2A));
  assert_false(sio_admin_password_check("s3cres", HASH_2A));
  assert_false(sio_admin_password_check("", HASH_2A));
  assert_false(sio_admin_password_check(NULL, HASH_2A));
  assert_false(sio_admin_password_check("s3cret", "$2a$04$notahash"));
  /* The same hash as $2b$ (what libxcrypt makes) still matches: the variants agree on ASCII passwords. */
  char h[61];
  memcpy(h, HASH_2A, sizeof h);
  h[2] = 'b';
  assert_true(sio_admin_password_check("s3cret", h));
}

static void test_sessions(void **state) {
  (void)state;
  sio_admin_realm r1, r2;
  sio_admin_realm_of(&r1, "admin", HASH_2A);
  sio_admin_realm_of(&r2, "admin2", HASH_2A);
  char id[SIO_ADMIN_SESSION_LEN + 1];
  assert_int_equal(sio_admin_session_new(&r1, id, 1000), 0);
  assert_int_equal(strlen(id), 16);
  assert_int_equal(strspn(id, "0123456789abcdef"), 16);
  assert_true(sio_admin_session_valid(&r1, id, 16, 1000));
  assert_false(sio_admin_session_valid(&r2, id, 16, 1000));  /* other credentials */
  assert_false(sio_admin_session_valid(&r1, id, 15, 1000));
  assert_false(sio_admin_session_valid(&r1, "0000000000000000", 16, 1000));
  assert_false(sio_admin_session_valid(&r1, id, 16, 1000 + SIO_ADMIN_SESSION_TTL_MS)); /* expired */
  /* A full table's worth of new sessions pushes the oldest out. */
  char later[SIO_ADMIN_SESSION_LEN + 1];
  for (int i = 0; i < SIO_ADMIN_SESSIONS; i++) assert_int_equal(sio_admin_session_new(&r1, later, 2000), 0);
  assert_false(sio_admin_session_valid(&r1, id, 16, 2000));
  assert_true(sio_admin_session_valid(&r1, later, 16, 2000));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hash_valid),
      cmocka_unit_test(test_password_check),
      cmocka_unit_test(test_sessions),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
