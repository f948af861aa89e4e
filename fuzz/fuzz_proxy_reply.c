/* The event proxy's reply decoder on arbitrary backend replies. Checks, beyond memory safety: every text
 * value handed out is one valid JSON value lying inside the input; names are non-empty NUL-free strings; a
 * room comes with SRV_PROXY_ROOM only; the ack step runs exactly once after a successful decode and never
 * after a failed one; and base64 decoding stays within its stated output bound. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/proxy_reply.h"
#include "sio/json.h"

typedef struct state {
  const char *in;
  size_t len;
  int acks;
} state;

static void check_values(const state *st, const wsio_value *v, size_t n) {
  if (n > SRV_PROXY_MAX_VALUES) abort();
  for (size_t i = 0; i < n; i++) {
    if (v[i].binary) {
      if (v[i].len && !v[i].data) abort();
      continue;
    }
    const char *p = v[i].data;
    if (p < st->in || p + v[i].len > st->in + st->len) abort();
    if (sio_json_validate(p, v[i].len, SIO_JSON_DEPTH_MAX, NULL) != 0) abort();
  }
}

static void check_name(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > SRV_PROXY_NAME_MAX) abort();
}

static void on_emit(void *ud, const char *event, srv_proxy_to to, const char *room, const wsio_value *v, size_t n) {
  state *st = ud;
  if (st->acks) abort(); /* emits come before the ack */
  check_name(event);
  if ((to == SRV_PROXY_ROOM) != (room != NULL)) abort();
  if (room) check_name(room);
  check_values(st, v, n);
}

static void on_ack(void *ud, int has, const wsio_value *v, size_t n) {
  state *st = ud;
  st->acks++;
  if (!has && n) abort();
  check_values(st, v, n);
}

static void on_skip(void *ud, const char *why) {
  (void)ud;
  if (!why || !*why) abort();
}

static const srv_proxy_reply_ops ops = {on_emit, on_ack, on_skip};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *in = malloc(size ? size : 1); /* exact size: an over-read is caught */
  if (!in) return 0;
  memcpy(in, data, size);
  state st = {in, size, 0};
  int rc = srv_proxy_reply_parse(in, size, &ops, &st);
  if (rc == 0 && st.acks != 1) abort();
  if (rc != 0 && st.acks != 0) abort();

  unsigned char *out = malloc(size / 4 * 3 + 2);
  if (out) {
    long n = srv_proxy_base64_decode(in, size, out);
    if (n > (long)(size / 4 * 3 + 2)) abort();
    free(out);
  }
  free(in);
  return 0;
}
