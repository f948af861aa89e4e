/* The msgpack parser (npm socket.io-msgpack-parser) at the edge of the Socket.IO layer: see parser.h. */
#include "sio/parser.h"

#include <string.h>

#include "wsio.h"

int sio_mp_decode(const uint8_t *p, size_t len, const sio_packet_limits *lim, buf *json, mpk_atts *atts,
                  buf *text) {
  json->len = 0;
  text->len = 0;
  atts->n = 0;
  /* JSON can be longer than the msgpack it comes from (escapes, number text): bounded all the same. */
  mpk_limits ml = {.max_depth = lim && lim->max_depth ? lim->max_depth : SIO_PACKET_DEPTH_DEFAULT,
                   .max_atts = lim && lim->max_attachments ? lim->max_attachments : SIO_PACKET_ATTACHMENTS_DEFAULT,
                   .max_json = 8 * len + 1024};
  /* The packet object sits one level above its data. */
  ml.max_depth++;
  int rc = mpk_to_json(p, len, &ml, json, atts);
  if (rc < 0) return rc;
  sio_json_span obj = {(const char *)json->data, json->len, SIO_JSON_NONE}, type, nsp, data, id;
  if (json->len == 0 || json->data[0] != '{') return WSIO_EPROTO;
  obj.kind = SIO_JSON_OBJECT;
  /* The decoder's checks: type an integer 0..4, nsp a string, data as the type wants, id an integer. */
  uint64_t t;
  if (!sio_json_object_find(&obj, "type", 4, &type) || type.kind != SIO_JSON_NUMBER ||
      sio_json_uint(&type, SIO_CONNECT_ERROR, &t) < 0)
    return WSIO_EPROTO;
  char nspbuf[256];
  if (!sio_json_object_find(&obj, "nsp", 3, &nsp) || nsp.kind != SIO_JSON_STRING) return WSIO_EPROTO;
  ssize_t nn = sio_json_string_decode(&nsp, nspbuf, sizeof nspbuf);
  /* (Its slash, its lack of commas and its UTF-8 are checked by the text encoder below.) */
  if (nn <= 0 || memchr(nspbuf, 0, (size_t)nn)) return WSIO_EPROTO;
  int has_data = sio_json_object_find(&obj, "data", 4, &data);
  /* python-socketio's msgpack packets carry data: null where JavaScript leaves it undefined. */
  if (has_data && data.kind == SIO_JSON_NULL && (t == SIO_CONNECT || t == SIO_DISCONNECT)) has_data = 0;
  switch (t) {
  case SIO_CONNECT: if (has_data && data.kind != SIO_JSON_OBJECT) return WSIO_EPROTO; break;
  case SIO_DISCONNECT: if (has_data) return WSIO_EPROTO; break;
  case SIO_CONNECT_ERROR:
    if (!has_data || (data.kind != SIO_JSON_OBJECT && data.kind != SIO_JSON_STRING)) return WSIO_EPROTO;
    break;
  default: if (!has_data || data.kind != SIO_JSON_ARRAY) return WSIO_EPROTO;
  }
  uint64_t idv = 0;
  int has_id = sio_json_object_find(&obj, "id", 2, &id) && id.kind != SIO_JSON_NULL;
  if (has_id && (id.kind != SIO_JSON_NUMBER || sio_json_uint(&id, (uint64_t)SIO_PACKET_ID_MAX, &idv) < 0))
    return WSIO_EPROTO;
  /* Binaries travel inline: an event or ack holding any becomes the default parser's binary type, its
   * placeholders numbering the attachments in the order they came. */
  sio_packet pkt = {.type = (int)t, .attachments = (unsigned)atts->n, .nsp = nspbuf, .nsp_len = (size_t)nn,
                    .id = has_id ? (int64_t)idv : -1};
  if (atts->n && (t == SIO_EVENT || t == SIO_ACK)) pkt.type = t == SIO_EVENT ? SIO_BINARY_EVENT : SIO_BINARY_ACK;
  else if (atts->n) return WSIO_EPROTO; /* binaries where no packet type carries them */
  if (has_data) pkt.data = data;
  rc = sio_packet_encode(text, &pkt);
  return rc == WSIO_EINVAL ? WSIO_EPROTO : rc;
}

int sio_mp_encode(const char *text, size_t len, const sio_bin *atts, size_t natts, buf *tmp, buf *out) {
  out->len = 0;
  mpk_writer w;
  mpk_writer_init(&w, out);
  return mpk_pack_packet(&w, tmp, text, len, atts, natts, 1);
}
