/*
 * fuzz_sio_msgpack — one binary message through the msgpack parser's decoder (sio_mp_decode), as a client
 * of a server with WSIO_PARSER_MSGPACK would send it. Whatever decodes is a text packet and attachments;
 * when the text is a valid packet it is encoded back (sio_mp_encode), and that message must decode again,
 * to a text that is then a fixed point: encoding and decoding it once more gives the same text and bytes.
 *
 * Input: byte 0 picks the limits; the rest is the message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sio/parser.h"
#include "wsio.h"

#define CHECK(x)                \
  do {                          \
    if (!(x)) __builtin_trap(); \
  } while (0)

static buf json, text, text2, text3, out, out2;
static mpk_atts atts, atts2, atts3;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  sio_packet_limits lim = {.max_attachments = (data[0] & 0x0F) + 1u, .max_depth = (data[0] >> 4) + 2u};
  data++;
  size--;
  if (sio_mp_decode(data, size, &lim, &json, &atts, &text) != 0) return 0;
  for (size_t i = 0; i < atts.n; i++) CHECK(atts.v[i].p >= data && atts.v[i].p + atts.v[i].len <= data + size);
  sio_packet pkt;
  sio_packet_limits wide = {.max_attachments = 100000, .max_depth = SIO_JSON_DEPTH_MAX};
  if (sio_packet_decode((const char *)text.data, text.len, &wide, &pkt) != 0) return 0;
  CHECK(pkt.attachments == atts.n);
  int rc = sio_mp_encode((const char *)text.data, text.len, atts.v, atts.n, &json, &out);
  if (rc == WSIO_ENOMEM) return 0;
  CHECK(rc == 0);
  CHECK(sio_mp_decode(out.data, out.len, &wide, &json, &atts2, &text2) == 0);
  CHECK(sio_packet_decode((const char *)text2.data, text2.len, &wide, &pkt) == 0);
  CHECK(sio_mp_encode((const char *)text2.data, text2.len, atts2.v, atts2.n, &json, &out2) == 0);
  CHECK(sio_mp_decode(out2.data, out2.len, &wide, &json, &atts3, &text3) == 0);
  CHECK(text3.len == text2.len && memcmp(text3.data, text2.data, text2.len) == 0);
  CHECK(out2.len == out.len || atts.n != atts2.n); /* unreferenced binaries drop out on the first pass only */
  CHECK(atts3.n == atts2.n);
  for (size_t i = 0; i < atts2.n; i++)
    CHECK(atts3.v[i].len == atts2.v[i].len && !memcmp(atts3.v[i].p, atts2.v[i].p, atts2.v[i].len));
  return 0;
}
