#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/map.h"

static void test_put_get_del(void **state) {
  (void)state;
  map m = {0};
  enum { N = 5000 };
  static char keys[N][16];
  for (int i = 0; i < N; i++) {
    snprintf(keys[i], sizeof keys[i], "k%d", i);
    assert_int_equal(map_put(&m, keys[i], strlen(keys[i]), (void *)(intptr_t)(i + 1)), 0);
  }
  assert_int_equal(m.count, N);
  for (int i = 0; i < N; i++) assert_int_equal((intptr_t)map_get(&m, keys[i], strlen(keys[i])), i + 1);
  assert_null(map_get(&m, "absent", 6));
  /* Delete every other key, then the rest must still be found past the tombstones. */
  for (int i = 0; i < N; i += 2) assert_int_equal((intptr_t)map_del(&m, keys[i], strlen(keys[i])), i + 1);
  assert_null(map_del(&m, keys[0], strlen(keys[0])));
  assert_int_equal(m.count, N / 2);
  for (int i = 1; i < N; i += 2) assert_int_equal((intptr_t)map_get(&m, keys[i], strlen(keys[i])), i + 1);
  for (int i = 0; i < N; i += 2) assert_null(map_get(&m, keys[i], strlen(keys[i])));
  /* Replace keeps the count. */
  assert_int_equal(map_put(&m, keys[1], strlen(keys[1]), (void *)7), 0);
  assert_int_equal(m.count, N / 2);
  assert_int_equal((intptr_t)map_get(&m, keys[1], strlen(keys[1])), 7);
  size_t it = 0, seen = 0;
  map_entry *e;
  while (map_next(&m, &it, &e)) seen++;
  assert_int_equal(seen, N / 2);
  map_free(&m);
}

static void test_churn_keeps_table_small(void **state) {
  (void)state;
  /* Insert/delete cycles leave tombstones; rebuilds must clear them instead of growing forever. */
  map m = {0};
  char key[16];
  for (int i = 0; i < 100000; i++) {
    snprintf(key, sizeof key, "%d", i);
    char *k = strdup(key);
    assert_int_equal(map_put(&m, k, strlen(k), k), 0);
    free(map_del(&m, k, strlen(k)));
  }
  assert_int_equal(m.count, 0);
  assert_true(m.cap <= 16);
  map_free(&m);
}

static void test_hash_is_keyed_and_spreads(void **state) {
  (void)state;
  assert_int_not_equal(map_hash("a", 1), map_hash("b", 1));
  assert_int_equal(map_hash("room", 4), map_hash("room", 4));
  assert_int_not_equal(map_hash("", 0), map_hash("\0", 1));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_put_get_del),
      cmocka_unit_test(test_churn_keeps_table_small),
      cmocka_unit_test(test_hash_is_keyed_and_spreads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
