/* The proxy's reply decoder: what a backend's answer turns into, step by step. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "server/proxy_reply.h"

/* Every callback, written out as one line: "emit EVENT TO[:ROOM] v1|v2" / "ack -" / "ack v1|v2" /
 * "skip WHY". Binary values are written as bin:HEX. */
typedef struct trace {
  char text[8192];
  size_t nvalues;
} trace;

static void put_values(trace *t, const wsio_value *v, size_t n) {
  t->nvalues = n;
  for (size_t i = 0; i < n; i++) {
    size_t l = strlen(t->text);
    if (i) t->text[l++] = '|';
    if (v[i].binary) {
      l += (size_t)snprintf(t->text + l, sizeof t->text - l, "bin:");
      for (size_t k = 0; k < v[i].len; k++)
        l += (size_t)snprintf(t->text + l, sizeof t->text - l, "%02x", ((const unsigned char *)v[i].data)[k]);
    } else {
      snprintf(t->text + l, sizeof t->text - l, "%.*s", (int)v[i].len, (const char *)v[i].data);
    }
  }
}

static void on_emit(void *ud, const char *event, srv_proxy_to to, const char *room, const wsio_value *v, size_t n) {
  trace *t = ud;
  static const char *names[] = {"self", "others", "all", "room"};
  size_t l = strlen(t->text);
  snprintf(t->text + l, sizeof t->text - l, "emit %s %s%s%s ", event, names[to], room ? ":" : "", room ? room : "");
  put_values(t, v, n);
  l = strlen(t->text);
  snprintf(t->text + l, sizeof t->text - l, "\n");
  if ((to == SRV_PROXY_ROOM) != (room != NULL)) fail_msg("room given for a target that is not a room");
}

static void on_ack(void *ud, int has, const wsio_value *v, size_t n) {
  trace *t = ud;
  size_t l = strlen(t->text);
  snprintf(t->text + l, sizeof t->text - l, "ack ");
  if (!has) {
    assert_int_equal(n, 0);
    strcat(t->text, "-");
  }
  put_values(t, v, n);
  strcat(t->text, "\n");
}

static void on_skip(void *ud, const char *why) {
  trace *t = ud;
  size_t l = strlen(t->text);
  snprintf(t->text + l, sizeof t->text - l, "skip %.12s\n", why);
}

static const srv_proxy_reply_ops ops = {on_emit, on_ack, on_skip};

/* Decodes reply from an exact-size copy (so that an over-read is caught under the sanitizers). */
static int decode(const char *reply, trace *t) {
  memset(t, 0, sizeof *t);
  size_t n = strlen(reply);
  char *copy = malloc(n ? n : 1);
  memcpy(copy, reply, n);
  int rc = srv_proxy_reply_parse(copy, n, &ops, t);
  free(copy);
  return rc;
}

static void expect(const char *reply, const char *want) {
  trace t;
  assert_int_equal(decode(reply, &t), 0);
  assert_string_equal(t.text, want);
}

static void test_empty(void **state) {
  (void)state;
  expect("", "ack -\n");
  expect(" \r\n\t", "ack -\n");
  expect("{}", "ack -\n");
  expect("{\"ack\":[]}", "ack \n");
}

static void test_not_an_object(void **state) {
  (void)state;
  const char *bad[] = {"[]", "\"ok\"", "1", "null", "{", "{\"ack\":[1,]}", "{} {}", "{\"ack\":[1]}x", "\xff"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    trace t;
    assert_int_equal(decode(bad[i], &t), WSIO_EPROTO);
    assert_string_equal(t.text, ""); /* nothing ran */
  }
}

/* Values pass as written: no re-encoding of numbers, strings or nesting. */
static void test_values_verbatim(void **state) {
  (void)state;
  expect("{\"ack\":[1.0e2, \"a\\u00e9\\n\", {\"k\" : [true,null]}, -0]}",
         "ack 1.0e2|\"a\\u00e9\\n\"|{\"k\" : [true,null]}|-0\n");
  expect("{\"ack\":\"one\"}", "ack \"one\"\n");
  expect("{\"ack\":{\"a\":1}}", "ack {\"a\":1}\n");
}

static void test_emits_in_order_then_ack(void **state) {
  (void)state;
  expect("{\"ack\":[1],\"emit\":[{\"event\":\"a\",\"data\":[1,2]},{\"event\":\"b\",\"to\":\"others\",\"data\":3},"
         "{\"event\":\"c\",\"to\":\"all\"},{\"to\":\"room:lobby 1\",\"event\":\"d\",\"data\":[[]]},"
         "{\"event\":\"e\",\"to\":\"self\",\"data\":[]}]}",
         "emit a self 1|2\nemit b others 3\nemit c all \nemit d room:lobby 1 []\nemit e self \nack 1\n");
}

static void test_bad_emits_are_skipped(void **state) {
  (void)state;
  expect("{\"emit\":[1,{},{\"event\":\"\"},{\"event\":7},{\"event\":\"x\\u0000y\"},{\"event\":\"a\",\"to\":\"room:\"},"
         "{\"event\":\"a\",\"to\":\"everyone\"},{\"event\":\"a\",\"to\":5},{\"event\":\"ok\"}]}",
         "skip an emit with\nskip an emit with\nskip an emit with\nskip an emit with\nskip an emit with\n"
         "skip an emit whos\nskip an emit whos\nskip an emit whos\nemit ok self \nack -\n");
  /* "emit" that is not an array is ignored. */
  expect("{\"emit\":{\"event\":\"a\"}}", "ack -\n");
}

static void test_binary(void **state) {
  (void)state;
  expect("{\"ack\":[{\"_binary\":\"AQID\"},{\"_binary\":\"\"},{\"_binary\":\"/w==\"},{\"_binary\":\"/+8\"}]}",
         "ack bin:010203|bin:|bin:ff|bin:ffef\n");
  expect("{\"emit\":[{\"event\":\"f\",\"data\":{\"_binary\":\"aGk=\"}}]}", "emit f self bin:6869\nack -\n");
  /* Not base64, not a string, or nested: passed on as the object it is. */
  expect("{\"ack\":[{\"_binary\":\"A\"},{\"_binary\":\"a\\u0041==\"},{\"_binary\":1},[{\"_binary\":\"AQID\"}]]}",
         "ack {\"_binary\":\"A\"}|{\"_binary\":\"a\\u0041==\"}|{\"_binary\":1}|[{\"_binary\":\"AQID\"}]\n");
}

static void test_duplicate_keys_last_wins(void **state) {
  (void)state;
  expect("{\"ack\":[1],\"ack\":[2]}", "ack 2\n");
}

static void test_value_cap(void **state) {
  (void)state;
  size_t n = SRV_PROXY_MAX_VALUES + 10;
  char *reply = malloc(n * 2 + 16);
  strcpy(reply, "{\"ack\":[");
  for (size_t i = 0; i < n; i++) strcat(reply, i ? ",1" : "1");
  strcat(reply, "]}");
  trace t;
  assert_int_equal(decode(reply, &t), 0);
  assert_int_equal(t.nvalues, SRV_PROXY_MAX_VALUES);
  free(reply);
}

static void test_base64(void **state) {
  (void)state;
  static const struct {
    const char *in;
    long len;
    const char *out;
  } cases[] = {
      {"", 0, ""},           {"Zg==", 1, "f"},      {"Zg", 1, "f"},        {"Zm8=", 2, "fo"},
      {"Zm8", 2, "fo"},      {"Zm9v", 3, "foo"},    {"Zm9vYg==", 4, "foob"}, {"Zm9vYmE=", 5, "fooba"},
      {"Zm9vYmFy", 6, "foobar"}, {"Z", -1, NULL},   {"Zg=", -1, NULL},     {"Zg===", -1, NULL},
      {"Zm9v=", -1, NULL},   {"Z g=", -1, NULL},    {"Zm-v", -1, NULL},    {"=", -1, NULL},
      {"Zg==Zg==", -1, NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    unsigned char out[32];
    long n = srv_proxy_base64_decode(cases[i].in, strlen(cases[i].in), out);
    if (n != cases[i].len) fail_msg("base64 \"%s\": %ld, want %ld", cases[i].in, n, cases[i].len);
    if (n > 0) assert_memory_equal(out, cases[i].out, (size_t)n);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_empty),
      cmocka_unit_test(test_not_an_object),
      cmocka_unit_test(test_values_verbatim),
      cmocka_unit_test(test_emits_in_order_then_ack),
      cmocka_unit_test(test_bad_emits_are_skipped),
      cmocka_unit_test(test_binary),
      cmocka_unit_test(test_duplicate_keys_last_wins),
      cmocka_unit_test(test_value_cap),
      cmocka_unit_test(test_base64),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
