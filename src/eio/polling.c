/* The HTTP long-polling transport: the handshake, held GETs, POSTed payloads, CORS and error replies. */
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "eio/internal.h"
#include "http/response.h"
#include "util/log.h"
#include "wsio.h"

enum { M_GET = 1, M_POST = 3, M_OPTIONS = 6 }; /* llhttp's method numbers */

static int origin_allowed(const char *list, const char *origin, size_t len) {
  for (const char *p = list; *p;) {
    while (*p == ' ' || *p == ',') p++;
    const char *e = p;
    while (*e && *e != ',') e++;
    const char *t = e;
    while (t > p && t[-1] == ' ') t--;
    if ((size_t)(t - p) == len && strncasecmp(p, origin, len) == 0) return 1;
    p = e;
  }
  return 0;
}

void eio_cors_headers(const eio_server *srv, const http_request *req, buf *out) {
  if (!srv->cors_origins) return;
  const http_header *o = http_request_header(req, "Origin");
  char origin[256];
  if (o && o->value_len < sizeof origin) {
    memcpy(origin, o->value, o->value_len);
    origin[o->value_len] = 0;
    int any = strcmp(srv->cors_origins, "*") == 0;
    if (any && srv->cfg.cors_credentials) {
      /* Any origin with credentials would let every site act with the user's cookies: "*" literally, which
       * browsers refuse for credentialed requests. Credentials need listed origins. */
      http_response_header(out, "Access-Control-Allow-Origin", "*");
    } else if (any || origin_allowed(srv->cors_origins, o->value, o->value_len)) {
      /* Reflected, so a listed origin's credentials work; http_response_header refuses CR/LF in it. */
      http_response_header(out, "Access-Control-Allow-Origin", origin);
      http_response_header(out, "Vary", "Origin");
    }
  } else if (!o && strcmp(srv->cors_origins, "*") == 0) {
    http_response_header(out, "Access-Control-Allow-Origin", "*");
  }
  if (srv->cfg.cors_credentials) http_response_header(out, "Access-Control-Allow-Credentials", "true");
}

static void reply(eio_server *srv, http_conn *hc, const http_request *req, int status, const char *type,
                  const void *body, size_t len, const buf *extra) {
  int keep_alive = http_conn_keep_alive(hc, req);
  buf out = {0};
  http_response_start(&out, status);
  if (type) http_response_header(&out, "Content-Type", type);
  eio_cors_headers(srv, req, &out);
  if (extra && extra->len) buf_append(&out, extra->data, extra->len);
  http_response_end(&out, body, len, keep_alive);
  http_conn_respond(hc, out.data, out.len, keep_alive);
  buf_free(&out);
}

void eio_reply_error_msg(eio_server *srv, http_conn *hc, const http_request *req, int code, const char *message) {
  eio_report_error(srv, hc, req, code, message);
  buf body = {0};
  eio_error_json(&body, code, message);
  reply(srv, hc, req, eio_error_status(code), "application/json", body.data, body.len, NULL);
  buf_free(&body);
}

/* A POST taken: "ok", with the headers hook's. */
static void reply_ok(eio_server *srv, http_conn *hc, const http_request *req) {
  buf extra = {0};
  eio_headers_fill(srv, hc, req, NULL, 0, &extra);
  reply(srv, hc, req, 200, "text/html", "ok", 2, &extra);
  buf_free(&extra);
}

void eio_reply_error(eio_server *srv, http_conn *hc, const http_request *req, int code) {
  eio_reply_error_msg(srv, hc, req, code, NULL);
}

/* ---- HTTP compression of GET responses (engine.io's httpCompression) ---- */

/* Larger responses go uncompressed: deflate runs on the loop, and a payload of many megabytes would hold
 * every other client of the loop up for its whole run. */
#define EIO_HTTP_COMPRESSION_MAX ((size_t)1 << 20)

/* Compresses p[0..len) into srv->gz_out with the loop's stream for enc. Returns 0, or -1 when zlib has no
 * memory (the response then goes uncompressed). */
static int compress_body(eio_server *srv, int enc, const uint8_t *p, size_t len) {
  z_stream **zs = (z_stream **)&srv->gz[enc - 1];
  if (!*zs) {
    z_stream *z = calloc(1, sizeof *z);
    /* windowBits 15 (+16: the gzip wrapper), zlib's default level and memory, as Node's zlib defaults */
    if (!z || deflateInit2(z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, enc == EIO_ENC_GZIP ? 15 + 16 : 15, 8,
                           Z_DEFAULT_STRATEGY) != Z_OK) {
      free(z);
      return -1;
    }
    *zs = z;
  } else if (deflateReset(*zs) != Z_OK) {
    return -1;
  }
  z_stream *z = *zs;
  uLong bound = deflateBound(z, (uLong)len);
  srv->gz_out.len = 0;
  if (len > UINT32_MAX || buf_reserve(&srv->gz_out, bound) != 0) return -1;
  z->next_in = (Bytef *)p;
  z->avail_in = (uInt)len;
  z->next_out = srv->gz_out.data;
  z->avail_out = (uInt)bound;
  if (deflate(z, Z_FINISH) != Z_STREAM_END) return -1;
  srv->gz_out.len = bound - z->avail_out;
  return 0;
}

void eio_polling_free(eio_server *srv) {
  for (int i = 0; i < 2; i++) {
    if (!srv->gz[i]) continue;
    deflateEnd(srv->gz[i]);
    free(srv->gz[i]);
    srv->gz[i] = NULL;
  }
  buf_free(&srv->gz_out);
}

/* Packets per GET response at most: python-engineio clients refuse a payload of more than 16 by default
 * (max_decode_packets), and the rest simply waits for the next GET. */
#define EIO_POLL_MAX_PACKETS 16

/* ---- Engine.IO v3 bodies ---- */

/* JSON.stringify of the payload, then U+2028 and U+2029 escaped as engine.io's JSONP transport does (a
 * script, not JSON): the callback's argument. */
static int jsonp_wrap(const eio_socket *s, const uint8_t *p, size_t n, buf *out) {
  int rc = buf_append(out, "___eio[", 7);
  if (!rc) rc = buf_append(out, s->jsonp_j, strlen(s->jsonp_j));
  if (!rc) rc = buf_append(out, "](\"", 3);
  for (size_t i = 0, run = 0; !rc && i <= n; i++) {
    char esc[8];
    size_t el = 0, skip = 1;
    if (i == n) {
      el = 0;
    } else if (p[i] == '"' || p[i] == '\\') {
      esc[0] = '\\', esc[1] = (char)p[i], el = 2;
    } else if (p[i] < 0x20) {
      static const char short_esc[] = {['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't'};
      if (p[i] < sizeof short_esc && short_esc[p[i]]) esc[0] = '\\', esc[1] = short_esc[p[i]], el = 2;
      else el = (size_t)snprintf(esc, sizeof esc, "\\u%04x", p[i]);
    } else if (p[i] == 0xe2 && i + 2 < n && p[i + 1] == 0x80 && (p[i + 2] == 0xa8 || p[i + 2] == 0xa9)) {
      el = (size_t)snprintf(esc, sizeof esc, "\\u%04x", p[i + 2] == 0xa8 ? 0x2028u : 0x2029u);
      skip = 3;
    } else {
      continue;
    }
    rc = buf_append(out, p + run, i - run);
    if (!rc && el) rc = buf_append(out, esc, el);
    run = i + skip;
    i += skip - 1;
  }
  if (!rc) rc = buf_append(out, "\");", 3);
  return rc ? WSIO_ENOMEM : 0;
}

int eio_v3_body(eio_socket *s, const uint8_t *v4, size_t len, buf *out, int *binary) {
  eio_server *srv = s->srv;
  /* engine.io answers in binary only when the client can take it and a packet needs it. JSONP is text:
   * its clients always ask for b64. */
  int bin = !s->v3_b64 && !s->jsonp && len && (v4[0] == 'b' || memmem(v4, len, "\x1e" "b", 2));
  buf text = {0}, *dst = s->jsonp ? &text : out;
  eio_payload_iter it;
  eio_packet p;
  int rc;
  eio_payload_iter_init(&it, v4, len, 0, 0);
  while ((rc = eio_payload_next(&it, &srv->bin_out, &p)) == 1) {
    rc = bin ? eio_v3_payload_append_binary(dst, &p) : eio_v3_payload_append_text(dst, &p);
    if (rc) break;
  }
  buf_reset(&srv->bin_out, 65536);
  if (rc == 0 && s->jsonp) rc = jsonp_wrap(s, text.data, text.len, out);
  buf_free(&text);
  *binary = bin;
  return rc;
}

/* Answers the held GET with the first len bytes of out (whole packets) and drops them from out. */
static void respond_get_part(eio_socket *s, size_t len) {
  http_conn *hc = s->get;
  s->get = NULL;
  buf out = {0}, v3 = {0};
  eio_server *srv = s->srv;
  const uint8_t *body = s->out.data;
  size_t body_len = len;
  int binary = 0;
  if (s->protocol == 3 && eio_v3_body(s, body, len, &v3, &binary) == 0) {
    body = v3.data;
    body_len = v3.len;
  }
  http_response_start(&out, 200);
  http_response_header(&out, "Content-Type", binary ? "application/octet-stream" : "text/plain; charset=UTF-8");
  buf_append(&out, s->get_headers.data, s->get_headers.len);
  if (srv->gz_threshold && body_len >= srv->gz_threshold && body_len <= EIO_HTTP_COMPRESSION_MAX) {
    /* Whatever the client accepts, caches must not give one client's form to another. */
    http_response_header(&out, "Vary", "Accept-Encoding");
    if (s->get_enc && compress_body(srv, s->get_enc, body, body_len) == 0) {
      http_response_header(&out, "Content-Encoding", s->get_enc == EIO_ENC_GZIP ? "gzip" : "deflate");
      body = srv->gz_out.data;
      body_len = srv->gz_out.len;
    }
  }
  http_response_end(&out, body, body_len, s->get_keep_alive);
  buf_reset(&srv->gz_out, 65536); /* the body is in out now: keep no large buffer for the next one */
  http_conn_respond(hc, out.data, out.len, s->get_keep_alive);
  buf_free(&out);
  buf_free(&v3);
  if (len < s->out.len) buf_consume(&s->out, len + 1); /* and the separator */
  else buf_reset(&s->out, 4096);
  buf_free(&s->get_headers);
}

static void respond_get(eio_socket *s) { respond_get_part(s, s->out.len); }

/* Bytes of the first max packets of a payload (separators never occur inside a packet). */
static size_t payload_prefix(const buf *b, size_t max) {
  size_t n = 0;
  for (size_t i = 0; i < b->len; i++)
    if (b->data[i] == EIO_SEPARATOR && ++n == max) return i;
  return b->len;
}

void eio_polling_flush(eio_socket *s) {
  if (!s->get || !s->out.len) return;
  respond_get_part(s, payload_prefix(&s->out, EIO_POLL_MAX_PACKETS));
  if (s->out.len) return; /* more for the next GET */
  if (s->state != EIO_S_CLOSING) return;
  if (s->close_queued) {
    eio_session_end(s, NULL);
    return;
  }
  /* Closing with packets that were queued before the close: they just left; the CLOSE takes the next GET. */
  eio_packet p = {.type = EIO_CLOSE};
  eio_payload_append(&s->out, &p);
  s->close_queued = 1;
}

/* The held GET of a session being upgraded gets a NOOP so the client's polling loop ends cleanly; what is
 * queued in out stays for the WebSocket. */
void eio_release_get_with_noop(eio_socket *s) {
  if (!s->get) return;
  buf queued = s->out;
  s->out = (buf){0};
  eio_packet noop = {.type = EIO_NOOP};
  eio_payload_append(&s->out, &noop);
  respond_get(s); /* not eio_polling_flush: a closing session's state must not move on for a NOOP */
  buf_free(&s->out);
  s->out = queued;
}

void eio_polling_release(eio_socket *s) {
  if (!s->get) return;
  if (!s->close_queued) {
    eio_packet p = {.type = EIO_CLOSE};
    eio_payload_append(&s->out, &p);
    s->close_queued = 1;
  }
  respond_get(s);
}

static void on_get_abort(http_conn *hc, void *owner) {
  (void)hc;
  eio_socket *s = owner;
  s->get = NULL;
  buf_free(&s->get_headers);
  /* The client went away mid-poll, unless it is moving to WebSocket. */
  if (s->state == EIO_S_OPEN && s->transport == EIO_POLLING && !s->probe) eio_session_end(s, "transport close");
  else if (s->state == EIO_S_CLOSING) eio_session_end(s, NULL);
}

static void handshake(eio_server *srv, http_conn *hc, const http_request *req, const eio_query *q) {
  eio_socket *s = eio_session_new(srv, EIO_POLLING);
  if (!s) {
    eio_reply_error(srv, hc, req, EIO_ERR_BAD_REQUEST);
    return;
  }
  if (q->eio != 4) {
    s->protocol = 3;
    s->v3_b64 = (uint8_t)q->b64;
    s->jsonp = (uint8_t)q->has_j;
    memcpy(s->jsonp_j, q->j, sizeof s->jsonp_j);
  }
  buf body = {0}, extra = {0};
  int upgrades = !srv->cfg.no_upgrades && (srv->cfg.transports & EIO_WEBSOCKET);
  buf_append(&body, "0", 1);
  eio_open_json(&body, s->sid, upgrades, srv->cfg.ping_interval_ms, srv->cfg.ping_timeout_ms, srv->cfg.max_payload);
  if (s->protocol == 3) { /* v3 answers with a payload, even of one packet */
    buf v3 = {0};
    int binary;
    eio_v3_body(s, body.data, body.len, &v3, &binary);
    buf_free(&body);
    body = v3;
  }
  if (srv->cookie) {
    char cookie[128];
    snprintf(cookie, sizeof cookie, "%s=%s; Path=/; HttpOnly; SameSite=Lax", srv->cookie, s->sid);
    http_response_header(&extra, "Set-Cookie", cookie);
  }
  char remote[80] = "";
  net_conn_peer(http_conn_net(hc), remote, sizeof remote);
  eio_headers_fill(srv, hc, req, remote, 1, &extra);
  reply(srv, hc, req, 200, "text/plain; charset=UTF-8", body.data, body.len, &extra);
  srv->traffic.packets_out++; /* the OPEN packet, counted without its type as engine.io's packetCreate does */
  srv->traffic.bytes_out += body.len - 1;
  buf_free(&body);
  buf_free(&extra);
  eio_session_opened(s, req, remote);
}

static void preflight(eio_server *srv, http_conn *hc, const http_request *req) {
  if (!srv->cors_origins) {
    eio_reply_error(srv, hc, req, EIO_ERR_BAD_HANDSHAKE_METHOD);
    return;
  }
  buf extra = {0};
  http_response_header(&extra, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
  const http_header *h = http_request_header(req, "Access-Control-Request-Headers");
  if (h && h->value_len < 512) {
    char v[512];
    memcpy(v, h->value, h->value_len);
    v[h->value_len] = 0;
    http_response_header(&extra, "Access-Control-Allow-Headers", v);
  }
  reply(srv, hc, req, 204, NULL, NULL, 0, &extra);
  buf_free(&extra);
}

/* A JSONP POST's form body: the payload is the field d (percent-decoded, '+' a space), its newlines
 * escaped by the client as \n and its \n as \\n. Into out, NUL-terminated. Returns 0, or -1 when there is
 * no d (engine.io then takes nothing from the body). */
static int jsonp_payload(const http_request *req, buf *out) {
  if (buf_reserve(out, req->body_len + 1)) return -1;
  int n = eio_query_get((const char *)req->body, req->body_len, "d", (char *)out->data, req->body_len + 1);
  if (n < 0) return -1;
  uint8_t *p = out->data, *o = p;
  for (size_t i = 0; i < (size_t)n; i++) {
    if (p[i] == '\\' && i + 2 < (size_t)n && p[i + 1] == '\\' && p[i + 2] == 'n') {
      *o++ = '\\', *o++ = 'n';
      i += 2;
    } else if (p[i] == '\\' && i + 1 < (size_t)n && p[i + 1] == 'n') {
      *o++ = '\n';
      i++;
    } else {
      *o++ = p[i];
    }
  }
  out->len = (size_t)(o - p);
  return 0;
}

/* A v3 POST: either payload form, by its Content-Type; JSONP sessions post a form. */
static void post_v3(eio_socket *s, http_conn *hc, const http_request *req) {
  eio_server *srv = s->srv;
  const http_header *ct = http_request_header(req, "content-type");
  int binary = !s->jsonp && ct && ct->value_len == 24 && !strncasecmp(ct->value, "application/octet-stream", 24);
  buf form = {0};
  const uint8_t *body = req->body;
  size_t len = req->body_len;
  if (s->jsonp) {
    if (jsonp_payload(req, &form) != 0) {
      buf_free(&form);
      reply_ok(srv, hc, req);
      return;
    }
    body = form.data;
    len = form.len;
  }
  if (eio_v3_payload_check(body, len, binary, 0) < 0) {
    buf_free(&form);
    eio_reply_error(srv, hc, req, EIO_ERR_BAD_REQUEST);
    eio_session_end(s, "parse error");
    return;
  }
  reply_ok(srv, hc, req);
  eio_v3_iter it;
  eio_v3_payload_iter_init(&it, body, len, binary, 0);
  eio_packet p;
  while (s->state == EIO_S_OPEN && eio_v3_payload_next(&it, &srv->bin, &p) == 1) eio_handle_packet(s, &p);
  buf_reset(&srv->bin, 65536);
  buf_free(&form);
}

static void post(eio_socket *s, http_conn *hc, const http_request *req) {
  eio_server *srv = s->srv;
  if (req->body_len > srv->cfg.max_payload) {
    reply(srv, hc, req, 413, "text/plain; charset=UTF-8", "payload too large", 17, NULL);
    eio_session_end(s, "transport error");
    return;
  }
  if (s->protocol == 3) {
    post_v3(s, hc, req);
    return;
  }
  int n = eio_payload_check(req->body, req->body_len, 0, srv->cfg.max_payload);
  if (n < 0) {
    eio_reply_error(srv, hc, req, EIO_ERR_BAD_REQUEST);
    eio_session_end(s, "parse error");
    return;
  }
  reply_ok(srv, hc, req);
  eio_payload_iter it;
  eio_payload_iter_init(&it, req->body, req->body_len, 0, srv->cfg.max_payload);
  eio_packet p;
  while (s->state == EIO_S_OPEN && eio_payload_next(&it, &srv->bin, &p) == 1) eio_handle_packet(s, &p);
  buf_reset(&srv->bin, 65536);
}

void eio_polling_request(eio_server *srv, http_conn *hc, const http_request *req, const eio_query *q) {
  if (req->method == M_OPTIONS) {
    preflight(srv, hc, req);
    return;
  }
  if (!q->has_sid) {
    if (req->method != M_GET) eio_reply_error(srv, hc, req, EIO_ERR_BAD_HANDSHAKE_METHOD);
    else handshake(srv, hc, req, q);
    return;
  }
  eio_socket *s = eio_server_find(srv, q->sid);
  if (!s || (s->state == EIO_S_CLOSING && req->method != M_GET)) {
    eio_reply_error(srv, hc, req, EIO_ERR_UNKNOWN_SID);
    return;
  }
  /* A request of the other protocol than the session's: engine.io's PROTOCOL_MISMATCH. */
  if (s->transport != EIO_POLLING || s->protocol != (q->eio == 4 ? 4 : 3)) {
    eio_reply_error(srv, hc, req, EIO_ERR_BAD_REQUEST);
    return;
  }
  if (req->method == M_POST) {
    post(s, hc, req);
    return;
  }
  if (req->method != M_GET) {
    eio_reply_error(srv, hc, req, EIO_ERR_BAD_REQUEST);
    return;
  }
  if (s->get) {
    /* Two GETs at once break packet order: the protocol says 400 and close the session. */
    eio_reply_error(srv, hc, req, EIO_ERR_BAD_REQUEST);
    eio_session_end(s, "transport error");
    return;
  }
  s->get = hc;
  s->get_keep_alive = (uint8_t)http_conn_keep_alive(hc, req);
  const http_header *ae = http_request_header(req, "accept-encoding");
  s->get_enc = (uint8_t)(ae ? eio_accept_encoding(ae->value, ae->value_len) : EIO_ENC_IDENTITY);
  buf_free(&s->get_headers);
  eio_cors_headers(srv, req, &s->get_headers);
  eio_headers_fill(srv, hc, req, NULL, 0, &s->get_headers);
  http_conn_hold(hc, on_get_abort, s);
  if (s->probed) eio_release_get_with_noop(s);
  else if (s->out.len) eio_mark_dirty(s);
}
