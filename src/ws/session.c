#include "ws/session.h"

#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/log.h"
#include "ws/frame.h"
#include "util/utf8.h"
#include "wsio.h"

/* Everything that exists only while a message, a split control frame or the peer's close payload is held.
 * Allocated on first need and freed as soon as none of those is left, so an idle session is the struct. */
struct ws_aux {
  buf msg;          /* the data message so far: joined fragments, inflated */
  uint8_t ctl_len;  /* bytes in ctl */
  uint8_t ctl[125]; /* a control frame's payload split across reads; after the peer's close, its payload */
};

enum {
  F_PMD = 1u << 0,         /* permessage-deflate negotiated */
  F_COMPRESSED = 1u << 1,  /* the data message in progress has RSV1 */
  F_CLOSE_SENT = 1u << 2,
  F_FIN = 1u << 3,         /* the frame being read has FIN */
  F_PAYLOAD = 1u << 4      /* reading a frame's payload (otherwise a header) */
};

struct ws_session {
  const ws_session_cbs *cbs;
  void *ud;
  const ws_session_limits *limits;
  ws_deflate_shared *shared;
  ws_deflate *dfl;       /* created at the first compressed message in or out */
  struct ws_aux *aux;    /* NULL while idle */
  union {
    uint8_t hdr[WS_FRAME_HEADER_MAX];          /* a header split across reads (hdr_len bytes) */
    struct { uint64_t left; uint8_t mask[4]; } f; /* the frame whose payload is being read */
  } u;
  ws_pmd_params pmd;
  uint8_t flags;
  uint8_t hdr_len;
  uint8_t frame_op;
  uint8_t mask_off;      /* position in the masking key of the next payload byte */
  uint8_t msg_op;        /* opcode of the data message in progress; 0: none */
  uint8_t utf8;          /* validator state of the text message in progress */
  uint16_t result;       /* 0 while open; then what every feed returns */
  uint16_t peer_code;    /* 0: no close received; 1005: close without a code */
};

/* Handed to on_message for an empty message held nowhere else: never NULL, never read. */
static uint8_t empty_message[1];

static uint64_t max_message(const ws_session *s) {
  return s->limits ? s->limits->max_message : UINT64_MAX;
}

static int aux_get(ws_session *s) {
  if (!s->aux) {
    s->aux = calloc(1, sizeof *s->aux);
    if (!s->aux) return WSIO_ENOMEM;
  }
  return 0;
}

/* Drops the message buffer, and the aux block itself when nothing else lives in it. */
static void msg_release(ws_session *s) {
  struct ws_aux *a = s->aux;
  if (!a) return;
  buf_free(&a->msg);
  if (s->msg_op || a->ctl_len || s->peer_code) return;
  free(a);
  s->aux = NULL;
}

static int dfl_get(ws_session *s) {
  if (!s->dfl) s->dfl = ws_deflate_new(&s->pmd, s->shared);
  return s->dfl ? 0 : WSIO_ENOMEM;
}

/* One control frame in a single write: header and payload (<= 125 bytes). */
static void write_control(ws_session *s, int opcode, const uint8_t *p, size_t len) {
  uint8_t out[WS_FRAME_HEADER_MAX + 125];
  size_t n = ws_frame_header_encode(out, 1, 0, opcode, len, NULL);
  if (len) memcpy(out + n, p, len);
  s->cbs->write(s->ud, out, n + len);
}

static void write_close(ws_session *s, unsigned code, const char *reason, size_t reason_len) {
  uint8_t pl[125];
  size_t n = 0;
  if (code) {
    pl[0] = (uint8_t)(code >> 8);
    pl[1] = (uint8_t)code;
    if (reason_len) memcpy(pl + 2, reason, reason_len);
    n = 2 + reason_len;
  }
  s->flags |= F_CLOSE_SENT;
  write_control(s, WS_OP_CLOSE, pl, n);
}

/* Ends the session with a close code: writes the close frame unless one was sent already. */
static int fail(ws_session *s, unsigned code, const char *why) {
  log_debug("ws: closing with %u: %s", code, why);
  if (!(s->flags & F_CLOSE_SENT)) write_close(s, code, NULL, 0);
  s->result = (uint16_t)code;
  s->msg_op = 0;
  msg_release(s);
  return (int)code;
}

static int fail_errno(ws_session *s, int err) {
  if (err == WSIO_ETOOBIG) return fail(s, 1009, "message too big");
  if (err == WSIO_EPROTO) return fail(s, 1002, "corrupt deflate data");
  return fail(s, 1011, "out of memory");
}

/* The peer's close frame: validate, keep code and reason, answer unless we started the handshake. */
static int on_close(ws_session *s, const uint8_t *p, size_t len) {
  unsigned code = 1005;
  if (len == 1) return fail(s, 1002, "close payload of 1 byte");
  if (len >= 2) {
    code = (unsigned)p[0] << 8 | p[1];
    if (!ws_close_code_valid(code)) return fail(s, 1002, "invalid close code");
    if (!utf8_valid(p + 2, len - 2)) return fail(s, 1007, "close reason not UTF-8");
  }
  s->msg_op = 0;
  s->peer_code = (uint16_t)code;
  if (aux_get(s) == 0) {
    memmove(s->aux->ctl, p, len); /* p may already be ctl */
    s->aux->ctl_len = (uint8_t)len;
  }
  /* The answer echoes the code and the reason, as most peers expect to see their own words back. */
  if (!(s->flags & F_CLOSE_SENT))
    write_close(s, code == 1005 ? 0 : code, len > 2 ? (const char *)p + 2 : NULL, len > 2 ? len - 2 : 0);
  s->result = WS_SESSION_CLOSED;
  msg_release(s);
  return WS_SESSION_CLOSED;
}

static int on_control(ws_session *s, int op, uint8_t *p, size_t len) {
  if (op == WS_OP_CLOSE) return on_close(s, p, len);
  if (op == WS_OP_PING) {
    /* After our close frame nothing else may follow it on the wire. */
    if (!(s->flags & F_CLOSE_SENT)) write_control(s, WS_OP_PONG, p, len);
    if (s->cbs->on_ping) s->cbs->on_ping(s->ud, p, len);
  } else if (s->cbs->on_pong) {
    s->cbs->on_pong(s->ud, p, len);
  }
  return 0;
}

/* Data is only assembled while the session is open; after our close frame it is read and dropped. */
static int discarding(const ws_session *s) { return (s->flags & F_CLOSE_SENT) != 0; }

static int validate_text(ws_session *s, const uint8_t *p, size_t len) {
  if (s->msg_op != WS_OP_TEXT) return 0;
  s->utf8 = (uint8_t)utf8_validate(s->utf8, p, len);
  if (s->utf8 == UTF8_REJECT) return fail(s, 1007, "invalid UTF-8 in text message");
  return 0;
}

/* The last payload byte of the current frame (or its empty payload) has been read. */
static int frame_end(ws_session *s) {
  s->flags &= (uint8_t)~F_PAYLOAD;
  if (s->frame_op >= WS_OP_CLOSE) {
    struct ws_aux *a = s->aux;
    int rc = on_control(s, s->frame_op, a->ctl, a->ctl_len);
    if (rc) return rc;
    a->ctl_len = 0;
    if (!s->msg_op) msg_release(s);
    return 0;
  }
  if (!(s->flags & F_FIN)) return 0;
  if (discarding(s)) {
    s->msg_op = 0;
    msg_release(s);
    return 0;
  }
  int rc = aux_get(s);
  if (rc) return fail_errno(s, rc);
  buf *m = &s->aux->msg;
  if (s->flags & F_COMPRESSED) {
    size_t before = m->len;
    rc = ws_inflate_end(s->dfl, m, max_message(s));
    if (rc) return fail_errno(s, rc);
    if (m->len > before && validate_text(s, m->data + before, m->len - before)) return s->result;
  }
  if (s->msg_op == WS_OP_TEXT && s->utf8 != UTF8_ACCEPT)
    return fail(s, 1007, "text message ends inside a character");
  int op = s->msg_op;
  s->msg_op = 0;
  s->cbs->on_message(s->ud, op, m->data ? m->data : empty_message, m->len);
  msg_release(s);
  return 0;
}

/* A chunk of the current frame's payload, already unmasked. */
static int frame_chunk(ws_session *s, uint8_t *p, size_t n) {
  if (s->frame_op >= WS_OP_CLOSE) {
    struct ws_aux *a = s->aux;
    memcpy(a->ctl + a->ctl_len, p, n);
    a->ctl_len = (uint8_t)(a->ctl_len + n);
    return 0;
  }
  int rc = aux_get(s);
  if (rc) return fail_errno(s, rc);
  buf *m = &s->aux->msg;
  if (s->flags & F_COMPRESSED) {
    size_t before = m->len;
    rc = ws_inflate_chunk(s->dfl, p, n, m, max_message(s));
    if (rc) return fail_errno(s, rc);
    return m->len > before ? validate_text(s, m->data + before, m->len - before) : 0;
  }
  if (validate_text(s, p, n)) return s->result;
  rc = buf_append(m, p, n);
  return rc ? fail_errno(s, rc) : 0;
}

/* Applies the RFC 6455 rules to a parsed header and sets up reading its payload. *pp points past the
 * header; a frame that lies whole in [*pp, end) may be handled at once, advancing *pp. */
static int frame_begin(ws_session *s, const ws_frame_header *h, uint8_t **pp, uint8_t *end) {
  int op = h->opcode;
  if (!h->masked) return fail(s, 1002, "unmasked client frame");
  if (h->rsv & 3u) return fail(s, 1002, "RSV2/RSV3 set");
  if (op >= WS_OP_CLOSE) {
    if (op > WS_OP_PONG) return fail(s, 1002, "unknown control opcode");
    if (!h->fin || h->len > 125 || h->rsv) return fail(s, 1002, "bad control frame");
  } else if (op > WS_OP_BINARY) {
    return fail(s, 1002, "unknown data opcode");
  } else if (op == WS_OP_CONT) {
    if (!s->msg_op) return fail(s, 1002, "continuation without a message");
    if (h->rsv) return fail(s, 1002, "RSV1 on a continuation frame");
  } else {
    if (s->msg_op) return fail(s, 1002, "new message inside a fragmented one");
    if (h->rsv && !(s->flags & F_PMD)) return fail(s, 1002, "RSV1 without permessage-deflate");
  }

  uint8_t *p = *pp;
  size_t avail = (size_t)(end - p);
  s->frame_op = (uint8_t)op;
  s->mask_off = 0;
  s->u.f.left = h->len;
  memcpy(s->u.f.mask, h->mask, 4);
  s->flags = (uint8_t)((s->flags & ~F_FIN) | (h->fin ? F_FIN : 0) | F_PAYLOAD);

  if (op >= WS_OP_CLOSE) {
    if (h->len <= avail) {
      ws_mask(p, (size_t)h->len, h->mask, 0);
      *pp = p + h->len;
      s->flags &= (uint8_t)~F_PAYLOAD;
      return on_control(s, op, p, (size_t)h->len);
    }
    int rc = aux_get(s);
    if (rc) return fail_errno(s, rc);
    s->aux->ctl_len = 0;
    return 0;
  }

  if (op != WS_OP_CONT) {
    s->msg_op = (uint8_t)op;
    s->utf8 = UTF8_ACCEPT;
    s->flags = (uint8_t)((s->flags & ~F_COMPRESSED) | (h->rsv ? F_COMPRESSED : 0));
  }
  if (!discarding(s)) {
    if (!(s->flags & F_COMPRESSED)) {
      uint64_t held = s->aux ? s->aux->msg.len : 0;
      if (h->len > max_message(s) - held) return fail(s, 1009, "message too big");
    }
    if (op != WS_OP_CONT && (s->flags & F_COMPRESSED)) {
      int rc = aux_get(s);
      if (!rc) rc = dfl_get(s);
      if (!rc) rc = ws_inflate_begin(s->dfl);
      if (rc) return fail_errno(s, rc);
    }
    /* Zero-copy: a whole unfragmented plain message in the caller's buffer is unmasked and handed over
     * where it lies. */
    if (op != WS_OP_CONT && h->fin && !(s->flags & F_COMPRESSED) && h->len <= avail) {
      size_t n = (size_t)h->len;
      ws_mask(p, n, h->mask, 0);
      if (op == WS_OP_TEXT && !utf8_valid(p, n)) return fail(s, 1007, "invalid UTF-8 in text message");
      *pp = p + n;
      s->flags &= (uint8_t)~F_PAYLOAD;
      s->msg_op = 0;
      s->cbs->on_message(s->ud, op, p, n);
      return 0;
    }
  }
  return h->len == 0 ? frame_end(s) : 0;
}

/* Completes a header from s->u.hdr plus new bytes, or from the input directly. Returns the bytes taken
 * from p, or WS_NEED_MORE (all of them kept), or WS_ERROR. */
static ssize_t header_read(ws_session *s, const uint8_t *p, size_t avail, ws_frame_header *h) {
  if (s->hdr_len == 0) {
    ssize_t n = ws_frame_header_parse(p, avail, h);
    if (n == WS_NEED_MORE) {
      memcpy(s->u.hdr, p, avail); /* avail < WS_FRAME_HEADER_MAX here */
      s->hdr_len = (uint8_t)avail;
    }
    return n;
  }
  size_t have = s->hdr_len;
  size_t take = WS_FRAME_HEADER_MAX - have;
  if (take > avail) take = avail;
  memcpy(s->u.hdr + have, p, take);
  ssize_t n = ws_frame_header_parse(s->u.hdr, have + take, h);
  if (n == WS_NEED_MORE) {
    s->hdr_len = (uint8_t)(have + take);
    return n;
  }
  s->hdr_len = 0;
  return n < 0 ? n : n - (ssize_t)have;
}

int ws_session_feed(ws_session *s, uint8_t *data, size_t len) {
  if (s->result || len == 0) return s->result;
  uint8_t *p = data, *end = data + len;
  while (p < end && !s->result) {
    if (!(s->flags & F_PAYLOAD)) {
      ws_frame_header h;
      ssize_t n = header_read(s, p, (size_t)(end - p), &h);
      if (n == WS_NEED_MORE) break;
      if (n < 0) return fail(s, 1002, "frame length over 2^63");
      p += n;
      frame_begin(s, &h, &p, end);
      continue;
    }
    size_t n = (size_t)(end - p);
    if (n > s->u.f.left) n = (size_t)s->u.f.left;
    int data_frame = s->frame_op < WS_OP_CLOSE;
    if (!(data_frame && discarding(s))) {
      s->mask_off = (uint8_t)ws_mask(p, n, s->u.f.mask, s->mask_off);
      if (frame_chunk(s, p, n)) break;
    }
    p += n;
    s->u.f.left -= n;
    if (s->u.f.left == 0) frame_end(s);
  }
  return s->result;
}

size_t ws_session_size(void) { return sizeof(struct ws_session); }

ws_session *ws_session_init(void *mem, const ws_session_cbs *cbs, void *ud, const ws_session_limits *limits,
                            const ws_pmd_params *pmd, ws_deflate_shared *shared) {
  ws_session *s = mem;
  memset(s, 0, sizeof *s);
  s->cbs = cbs;
  s->ud = ud;
  s->limits = limits;
  s->shared = shared;
  if (pmd) {
    s->pmd = *pmd;
    s->flags |= F_PMD;
  }
  return s;
}

ws_session *ws_session_new(const ws_session_cbs *cbs, void *ud, const ws_session_limits *limits,
                           const ws_pmd_params *pmd, ws_deflate_shared *shared) {
  void *mem = malloc(sizeof(struct ws_session));
  return mem ? ws_session_init(mem, cbs, ud, limits, pmd, shared) : NULL;
}

void ws_session_release(ws_session *s) {
  if (!s) return;
  if (s->dfl) ws_deflate_free(s->dfl);
  s->dfl = NULL;
  if (s->aux) {
    buf_free(&s->aux->msg);
    free(s->aux);
    s->aux = NULL;
  }
}

void ws_session_free(ws_session *s) {
  ws_session_release(s);
  free(s);
}

int ws_session_send(ws_session *s, int opcode, const uint8_t *data, size_t len, int compress) {
  if (s->flags & F_CLOSE_SENT) return WSIO_ECLOSED;
  if (opcode != WS_OP_TEXT && opcode != WS_OP_BINARY) return WSIO_EINVAL;
  const uint8_t *payload = data;
  size_t plen = len;
  int rsv1 = 0;
  if ((s->flags & F_PMD) && compress && len >= WS_DEFLATE_MIN_SIZE) {
    if (dfl_get(s)) return WSIO_ENOMEM;
    long n = ws_deflate_message(s->dfl, data, len, &payload);
    if (n < 0) return (int)n;
    plen = (size_t)n;
    rsv1 = 1;
  }
  uint8_t hdr[WS_FRAME_HEADER_MAX];
  size_t hn = ws_frame_header_encode(hdr, 1, rsv1, opcode, plen, NULL);
  s->cbs->write(s->ud, hdr, hn);
  if (plen) s->cbs->write(s->ud, payload, plen);
  return 0;
}

int ws_session_ping(ws_session *s, const uint8_t *data, size_t len) {
  if (s->flags & F_CLOSE_SENT) return WSIO_ECLOSED;
  if (len > 125) return WSIO_EINVAL;
  write_control(s, WS_OP_PING, data, len);
  return 0;
}

int ws_session_close(ws_session *s, unsigned code, const char *reason, size_t reason_len) {
  if (s->flags & F_CLOSE_SENT) return WSIO_ECLOSED;
  if (code && !ws_close_code_valid(code)) return WSIO_EINVAL;
  if (!code || !reason) reason_len = 0;
  if (reason_len > 123) {
    /* Cut at a character boundary so the reason stays valid UTF-8. */
    reason_len = 123;
    while (reason_len && ((uint8_t)reason[reason_len] & 0xC0u) == 0x80u) reason_len--;
  }
  write_close(s, code, reason, reason_len);
  return 0;
}

int ws_session_close_sent(const ws_session *s) { return (s->flags & F_CLOSE_SENT) != 0; }

unsigned ws_session_peer_code(const ws_session *s, const char **reason, size_t *reason_len) {
  const char *r = "";
  size_t rl = 0;
  if (s->peer_code && s->aux && s->aux->ctl_len >= 2) {
    r = (const char *)s->aux->ctl + 2;
    rl = s->aux->ctl_len - 2u;
  }
  if (reason) *reason = r;
  if (reason_len) *reason_len = rl;
  return s->peer_code;
}

int ws_session_deflate(const ws_session *s) { return (s->flags & F_PMD) != 0; }

int ws_session_deflate_shared_ok(const ws_session *s) {
  return (s->flags & F_PMD) && (s->pmd.server_max_window_bits == 0 || s->pmd.server_max_window_bits == 15);
}

_Static_assert(sizeof(struct ws_session) <= 96, "an idle connection's memory is the session struct");
