/*
 * fuzz_sio — a stream of Socket.IO messages through sio_packet_decode and the reassembler, as a connection
 * would deliver them: text packets, and binary attachments that must follow a binary header. Every packet
 * that decodes is re-encoded and must decode to the same fields; event and ack arguments are taken out and
 * re-encoded with sio_packet_encode_args, and must come back the same. Each message is also used as a raw
 * string for the encoding helpers, whose output must decode back to it.
 *
 * Input: byte 0 picks the limits; the rest is messages separated by 0xFF (never in UTF-8 text); a message
 * starting with 'B' is a binary attachment (the bytes after the 'B').
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sio/packet.h"
#include "wsio.h"
#include "util/utf8.h"

#define CHECK(x)                \
  do {                          \
    if (!(x)) __builtin_trap(); \
  } while (0)

#define MAX_ATTS 16

static sio_packet_limits lim;

static int same(const char *a, size_t an, const char *b, size_t bn) { return an == bn && (an == 0 || !memcmp(a, b, an)); }

/* Re-encodes the packet's arguments and checks they decode to the same list. */
static void check_args(const sio_packet *pkt, const sio_bin *atts) {
  sio_arg args[64], back[64];
  int n = sio_packet_args(pkt, atts, args, 64);
  CHECK(n >= 0);
  size_t total = sio_json_array_count(&pkt->data);
  int is_event = pkt->type == SIO_EVENT || pkt->type == SIO_BINARY_EVENT;
  CHECK((size_t)n + (is_event ? 1 : 0) == total);
  if (n > 64) return;
  for (int i = 0; i < n; i++) {
    CHECK(args[i].json.kind != SIO_JSON_NONE);
    if (args[i].kind == SIO_ARG_BINARY) {
      uint64_t num;
      CHECK(sio_json_placeholder(&args[i].json, pkt->attachments, &num) == 1);
      CHECK(args[i].bin.p == atts[num].p && args[i].bin.len == atts[num].len);
    }
  }
  char name[512];
  ssize_t nl = 0;
  if (is_event) {
    if (pkt->name.kind != SIO_JSON_STRING) return;
    nl = sio_json_string_decode(&pkt->name, name, sizeof name);
    if (nl < 0) return;
  }
  buf b = {0};
  sio_bin out_atts[64];
  int nb = sio_packet_encode_args(&b, is_event ? SIO_EVENT : SIO_ACK, pkt->nsp, pkt->nsp_len, pkt->id, name,
                                  (size_t)nl, args, (size_t)n, out_atts);
  CHECK(nb >= 0);
  sio_packet again;
  sio_packet_limits wide = {MAX_ATTS + 64, lim.max_depth};
  int rc = sio_packet_decode((const char *)b.data, b.len, &wide, &again);
  if (rc == 0) {
    CHECK((int)again.attachments == nb && again.id == pkt->id);
    CHECK(same(again.nsp, again.nsp_len, pkt->nsp, pkt->nsp_len));
    int m = sio_packet_args(&again, out_atts, back, 64);
    CHECK(m == n);
    for (int i = 0; i < n; i++) {
      CHECK(back[i].kind == args[i].kind);
      if (args[i].kind == SIO_ARG_JSON) CHECK(same(back[i].json.p, back[i].json.len, args[i].json.p, args[i].json.len));
      else CHECK(back[i].bin.p == args[i].bin.p && back[i].bin.len == args[i].bin.len);
    }
  } else {
    /* Only a nested placeholder numbered past the new attachment count can make it fail. */
    int nested = 0;
    for (int i = 0; i < n; i++) {
      sio_json_ph_iter it;
      sio_json_ph_init(&it, &args[i].json, UINT64_MAX);
      if (args[i].kind == SIO_ARG_JSON && sio_json_ph_next(&it, NULL, NULL) != 0) nested = 1;
    }
    CHECK(nb > 0 && nested);
  }
  buf_free(&b);
}

static void check_packet(const sio_packet *pkt, const sio_bin *atts) {
  CHECK(pkt->type >= SIO_CONNECT && pkt->type <= SIO_BINARY_ACK);
  CHECK(pkt->nsp_len >= 1 && pkt->nsp[0] == '/');
  CHECK(pkt->id >= -1 && pkt->id <= SIO_PACKET_ID_MAX);
  CHECK(pkt->attachments <= lim.max_attachments);
  buf b = {0};
  CHECK(sio_packet_encode(&b, pkt) == 0);
  sio_packet again;
  CHECK(sio_packet_decode((const char *)b.data, b.len, &lim, &again) == 0);
  CHECK(again.type == pkt->type && again.attachments == pkt->attachments && again.id == pkt->id);
  CHECK(same(again.nsp, again.nsp_len, pkt->nsp, pkt->nsp_len));
  CHECK(again.data.kind == pkt->data.kind && same(again.data.p, again.data.len, pkt->data.p, pkt->data.len));
  CHECK(again.name.kind == pkt->name.kind && same(again.name.p, again.name.len, pkt->name.p, pkt->name.len));
  buf_free(&b);
  if (pkt->type == SIO_EVENT || pkt->type == SIO_ACK || pkt->type == SIO_BINARY_EVENT ||
      pkt->type == SIO_BINARY_ACK)
    check_args(pkt, atts);
}

/* The message as a raw string through the helpers. */
static void check_helpers(const char *s, size_t n) {
  buf b = {0};
  sio_packet pkt;
  sio_json_span v;
  int utf8 = utf8_valid((const uint8_t *)s, n);

  int rc = sio_packet_encode_event(&b, NULL, 0, 7, s, n, NULL, 0);
  CHECK((rc == 0) == (utf8 && !sio_packet_name_reserved(s, n)));
  if (rc == 0) {
    CHECK(sio_packet_decode((const char *)b.data, b.len, NULL, &pkt) == 0 && pkt.id == 7);
    CHECK(sio_json_string_equals(&pkt.name, s, n));
  }
  b.len = 0;
  rc = sio_packet_encode_connect(&b, NULL, 0, s, n, "p", 1);
  CHECK((rc == 0) == utf8);
  if (rc == 0) {
    CHECK(sio_packet_decode((const char *)b.data, b.len, NULL, &pkt) == 0 && pkt.type == SIO_CONNECT);
    CHECK(sio_json_object_find(&pkt.data, "sid", 3, &v) == 1 && sio_json_string_equals(&v, s, n));
  }
  b.len = 0;
  sio_packet_limits deep = {0, SIO_JSON_DEPTH_MAX};
  rc = sio_packet_encode_connect_error(&b, NULL, 0, s, n, s, n);
  CHECK((rc == 0) == (utf8 && sio_json_validate(s, n, SIO_JSON_DEPTH_MAX, NULL) == 0));
  if (rc == 0 && sio_json_validate(s, n, SIO_JSON_DEPTH_MAX - 1, NULL) == 0) {
    CHECK(sio_packet_decode((const char *)b.data, b.len, &deep, &pkt) == 0);
    CHECK(sio_json_object_find(&pkt.data, "message", 7, &v) == 1 && sio_json_string_equals(&v, s, n));
    CHECK(sio_json_object_find(&pkt.data, "data", 4, &v) == 1);
  }
  b.len = 0;
  rc = sio_packet_encode_disconnect(&b, s, n);
  int nsp_ok = n == 0 || (s[0] == '/' && !memchr(s, ',', n) && utf8);
  CHECK((rc == 0) == nsp_ok);
  if (rc == 0) {
    CHECK(sio_packet_decode((const char *)b.data, b.len, NULL, &pkt) == 0 && pkt.type == SIO_DISCONNECT);
    CHECK(n == 0 ? same(pkt.nsp, pkt.nsp_len, "/", 1) : same(pkt.nsp, pkt.nsp_len, s, n));
  }
  b.len = 0;
  rc = sio_packet_encode_ack(&b, NULL, 0, 1, s, n);
  if (rc == 0) CHECK(sio_packet_decode((const char *)b.data, b.len, &deep, &pkt) == 0 && pkt.type == SIO_ACK);
  buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  lim.max_attachments = 1 + data[0] % MAX_ATTS;
  lim.max_depth = 1 + (data[0] >> 4) * 3;
  sio_packet_reasm r;
  sio_packet_reasm_init(&r);
  const uint8_t *p = data + 1, *end = data + size;
  while (p <= end) {
    const uint8_t *sep = memchr(p, 0xFF, (size_t)(end - p));
    const uint8_t *stop = sep ? sep : end;
    size_t n = (size_t)(stop - p);
    char *msg = malloc(n ? n : 1); /* exact size, and freed at once: the reassembler must copy */
    CHECK(msg);
    memcpy(msg, p, n);
    if (n && msg[0] == 'B') {
      int rc = sio_packet_reasm_add(&r, msg + 1, n - 1);
      CHECK(rc == 0 || rc == 1 || rc == WSIO_EPROTO);
      if (rc == 1) {
        sio_packet pkt;
        sio_bin atts[MAX_ATTS];
        CHECK(sio_packet_reasm_take(&r, &pkt, atts) == 0);
        check_packet(&pkt, atts);
      }
    } else {
      sio_packet pkt;
      int pending = sio_packet_reasm_pending(&r);
      int rc = sio_packet_decode(msg, n, &lim, &pkt);
      CHECK(rc == 0 || rc == WSIO_EPROTO);
      if (rc == 0 && (pkt.type == SIO_BINARY_EVENT || pkt.type == SIO_BINARY_ACK) && pkt.attachments) {
        rc = sio_packet_reasm_start(&r, msg, n, &pkt);
        CHECK(pending ? rc == WSIO_EPROTO : rc == 0);
      } else if (rc == 0) {
        check_packet(&pkt, NULL);
      }
      check_helpers(msg, n);
    }
    free(msg);
    if (!sep) break;
    p = sep + 1;
  }
  sio_packet_reasm_free(&r);
  return 0;
}
