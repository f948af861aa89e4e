/*
 * permessage-deflate (RFC 7692): offer negotiation, then the deflate and inflate streams.
 *
 * Stream ownership. A direction without context takeover needs no state between messages, so when the
 * loop's ws_deflate_shared is given, such a direction runs on the shared stream (reset per message) and costs
 * the connection nothing:
 *   - deflate: a message is compressed in one call, so the shared deflater is never held across calls. One
 *     shared deflater exists per window size actually negotiated (9..15).
 *   - inflate: a message arrives frame by frame over several reads, interleaved with other connections. The
 *     shared inflater belongs to one connection between ws_inflate_begin and ws_inflate_end; when another
 *     connection begins a message meanwhile, the holder's state is moved to a private copy (inflateCopy)
 *     that it keeps until its message ends. So only a connection caught mid-message pays for zlib state.
 * With context takeover, a connection's streams are private, created on first use and kept.
 *
 * Every zlib allocation goes through counting hooks, so ws_deflate_memory() reports real figures.
 */
#define ZLIB_CONST
#include "ws/deflate.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "util/buf.h"
#include "wsio.h"

/* Per message, level 1: on JSON-like text (2 KB to 200 KB) it ran 1.2-5x faster than level 6 for 6-22% more
 * output.
 * With context takeover, level 3: level 1's short hash chains mostly miss the previous message (a repeated
 * 2 KB JSON message: 493 then 298 bytes at level 1, 463 then 58 at level 3, 443 then 30 at level 6). */
#define LEVEL_MESSAGE 1
#define LEVEL_CONTEXT 3
/* Compression scratch above this size is freed when a small message comes, so one huge message does not
 * pin memory for the loop's life. */
#define SCRATCH_KEEP (256u * 1024)
/* First allocation when inflating into an empty buffer. */
#define INFLATE_FIRST_CAP 4096u

enum { INF_IDLE, INF_ACTIVE, INF_DONE }; /* DONE: a BFINAL block ended the data; the rest is ignored */
enum { RESTART_NONE, RESTART_KEEP, RESTART_RESET };

struct ws_deflate_shared {
  z_stream *def[7];      /* by window bits 9..15, created on first use */
  z_stream *inf;         /* window 15, created on first use */
  ws_deflate *inf_owner; /* connection whose message is in the shared inflater, or NULL */
  buf out;               /* compressed output of the last ws_deflate_message on this loop */
  size_t zmem;           /* bytes zlib holds for the shared streams */
};

struct ws_deflate {
  ws_deflate_shared *shared;
  z_stream *def; /* private deflater (context takeover, or no shared given) */
  z_stream *inf; /* private inflater, or a message moved off the shared inflater */
  buf own_out;   /* scratch when no shared is given */
  size_t zmem;   /* bytes zlib holds for this connection */
  ws_pmd_params p;
  uint8_t inf_state;
  uint8_t inf_restart; /* what the private inflater needs before the next message */
};

/* ---- Counting allocator --------------------------------------------------------------------------- */

#define ZHDR (_Alignof(max_align_t) > sizeof(size_t) ? _Alignof(max_align_t) : sizeof(size_t))

static voidpf z_alloc(voidpf opaque, uInt items, uInt size) {
  if (size && items > (SIZE_MAX - ZHDR) / size) return Z_NULL;
  size_t n = (size_t)items * size;
  unsigned char *p = malloc(n + ZHDR);
  if (!p) return Z_NULL;
  memcpy(p, &n, sizeof n);
  *(size_t *)opaque += n;
  return p + ZHDR;
}

static void z_free(voidpf opaque, voidpf ptr) {
  unsigned char *p = (unsigned char *)ptr - ZHDR;
  size_t n;
  memcpy(&n, p, sizeof n);
  *(size_t *)opaque -= n;
  free(p);
}

/* A small window is asked for to save memory: scale the hash and block buffers with it (memLevel 8 alone
 * is 128 KiB). Window 10 at memLevel 4 takes 18 KB instead of 141 KB for about 4% more output. */
static int mem_level(int wbits) {
  return wbits >= 14 ? 8 : wbits - 6;
}

static z_stream *deflater_new(size_t *zmem, int wbits, int level) {
  z_stream *z = calloc(1, sizeof *z);
  if (!z) return NULL;
  z->zalloc = z_alloc;
  z->zfree = z_free;
  z->opaque = zmem;
  if (deflateInit2(z, level, Z_DEFLATED, -wbits, mem_level(wbits), Z_DEFAULT_STRATEGY) != Z_OK) {
    free(z);
    return NULL;
  }
  return z;
}

/* The inflater always takes window 15: any smaller window the peer uses decodes with it. */
static z_stream *inflater_new(size_t *zmem) {
  z_stream *z = calloc(1, sizeof *z);
  if (!z) return NULL;
  z->zalloc = z_alloc;
  z->zfree = z_free;
  z->opaque = zmem;
  if (inflateInit2(z, -15) != Z_OK) {
    free(z);
    return NULL;
  }
  return z;
}

static void deflater_free(z_stream **z) {
  if (!*z) return;
  deflateEnd(*z);
  free(*z);
  *z = NULL;
}

static void inflater_free(z_stream **z) {
  if (!*z) return;
  inflateEnd(*z);
  free(*z);
  *z = NULL;
}

/* ---- Handles -------------------------------------------------------------------------------------- */

ws_deflate_shared *ws_deflate_shared_new(void) {
  return calloc(1, sizeof(ws_deflate_shared));
}

void ws_deflate_shared_free(ws_deflate_shared *d) {
  if (!d) return;
  for (size_t i = 0; i < sizeof d->def / sizeof d->def[0]; i++) deflater_free(&d->def[i]);
  inflater_free(&d->inf);
  buf_free(&d->out);
  free(d);
}

size_t ws_deflate_shared_memory(const ws_deflate_shared *d) {
  size_t n = d->zmem + (d->inf ? sizeof(z_stream) : 0);
  for (size_t i = 0; i < sizeof d->def / sizeof d->def[0]; i++)
    if (d->def[i]) n += sizeof(z_stream);
  return n;
}

ws_deflate *ws_deflate_new(const ws_pmd_params *p, ws_deflate_shared *shared) {
  ws_pmd_params q = *p;
  if (q.server_max_window_bits == 0) q.server_max_window_bits = 15;
  if (q.client_max_window_bits == 0) q.client_max_window_bits = 15;
  /* zlib cannot deflate raw data with an 8-bit window; negotiation never agrees to it. */
  if (q.server_max_window_bits < 9 || q.server_max_window_bits > 15) return NULL;
  ws_deflate *d = calloc(1, sizeof *d);
  if (!d) return NULL;
  d->p = q;
  d->shared = shared;
  return d;
}

static int shared_inflate(const ws_deflate *d) {
  return d->shared && d->p.client_no_context_takeover;
}

/* Ends the current message's hold on inflate state: the shared inflater, or a private copy of it. */
static void inf_release(ws_deflate *d) {
  if (shared_inflate(d)) {
    inflater_free(&d->inf);
    if (d->shared->inf_owner == d) d->shared->inf_owner = NULL;
  }
  d->inf_state = INF_IDLE;
}

void ws_deflate_free(ws_deflate *d) {
  if (!d) return;
  inf_release(d);
  inflater_free(&d->inf);
  deflater_free(&d->def);
  buf_free(&d->own_out);
  free(d);
}

size_t ws_deflate_memory(const ws_deflate *d) {
  return d->zmem + (d->def ? sizeof(z_stream) : 0) + (d->inf ? sizeof(z_stream) : 0);
}

/* ---- Compression ---------------------------------------------------------------------------------- */

static long deflate_run(z_stream *z, buf *scratch, const uint8_t *in, size_t len, const uint8_t **out) {
  /* An empty stored block's first byte: the peer appends 00 00 ff ff and gets an empty message. Valid in
   * any stream state since every message ends byte-aligned; zlib itself would emit nothing here after a
   * previous sync flush. */
  static const uint8_t empty[1] = {0};
  if (len == 0) {
    *out = empty;
    return 1;
  }
  size_t bound = (size_t)deflateBound(z, len > ULONG_MAX ? ULONG_MAX : (uLong)len) + 16;
  if (scratch->cap > SCRATCH_KEEP && bound <= SCRATCH_KEEP) buf_free(scratch);
  scratch->len = 0;
  if (buf_reserve(scratch, bound) != 0) return WSIO_ENOMEM;
  z->next_in = in;
  z->avail_in = 0; /* a failed call may have left some */
  size_t left = len;
  for (;;) {
    if (z->avail_in == 0) {
      z->avail_in = left > UINT_MAX ? UINT_MAX : (uInt)left;
      left -= z->avail_in;
    }
    /* More than 6 bytes of room, or zlib may repeat the flush marker. */
    if (scratch->cap - scratch->len < 64 && buf_reserve(scratch, 64 * 1024) != 0) return WSIO_ENOMEM;
    size_t room = scratch->cap - scratch->len;
    if (room > UINT_MAX) room = UINT_MAX;
    z->next_out = scratch->data + scratch->len;
    z->avail_out = (uInt)room;
    int rc = deflate(z, left ? Z_NO_FLUSH : Z_SYNC_FLUSH);
    scratch->len += room - z->avail_out;
    if (rc != Z_OK && rc != Z_BUF_ERROR) return WSIO_ENOMEM;
    if (left == 0 && z->avail_in == 0 && z->avail_out != 0) break;
  }
  /* A sync flush always ends in an empty stored block, 00 00 ff ff; the peer puts it back (7.2.1). */
  if (scratch->len < 4 || memcmp(scratch->data + scratch->len - 4, "\x00\x00\xff\xff", 4) != 0)
    return WSIO_ENOMEM;
  *out = scratch->data;
  return (long)(scratch->len - 4);
}

static z_stream *shared_deflater(ws_deflate_shared *sh, int wbits) {
  z_stream **z = &sh->def[wbits - 9];
  if (!*z) *z = deflater_new(&sh->zmem, wbits, LEVEL_MESSAGE);
  else deflateReset(*z);
  return *z;
}

long ws_deflate_shared_message(ws_deflate_shared *d, const uint8_t *in, size_t len, const uint8_t **out) {
  z_stream *z = shared_deflater(d, 15);
  if (!z) return WSIO_ENOMEM;
  return deflate_run(z, &d->out, in, len, out);
}

long ws_deflate_message(ws_deflate *d, const uint8_t *in, size_t len, const uint8_t **out) {
  int wbits = d->p.server_max_window_bits;
  buf *scratch = d->shared ? &d->shared->out : &d->own_out;
  z_stream *z;
  if (d->shared && d->p.server_no_context_takeover) {
    z = shared_deflater(d->shared, wbits);
  } else {
    if (!d->def)
      d->def = deflater_new(&d->zmem, wbits, d->p.server_no_context_takeover ? LEVEL_MESSAGE : LEVEL_CONTEXT);
    else if (d->p.server_no_context_takeover) deflateReset(d->def);
    z = d->def;
  }
  if (!z) return WSIO_ENOMEM;
  long n = deflate_run(z, scratch, in, len, out);
  /* The peer never saw this message, but our window holds part of it: forget the context, which the peer
   * always accepts (a deflater may choose not to refer back). */
  if (n < 0) deflateReset(z);
  return n;
}

/* ---- Inflate -------------------------------------------------------------------------------------- */

/* Doubles dst's storage but never past lim (> dst->len), so a bomb costs at most max bytes. */
static int grow_capped(buf *dst, size_t lim) {
  size_t cap = dst->cap ? dst->cap : INFLATE_FIRST_CAP;
  if (dst->cap) cap = dst->cap > SIZE_MAX / 2 ? SIZE_MAX : dst->cap * 2;
  if (cap > lim) cap = lim;
  uint8_t *p = realloc(dst->data, cap);
  if (!p) return WSIO_ENOMEM;
  dst->data = p;
  dst->cap = cap;
  return 0;
}

/* Inflates in into dst until the input is used up, the output would pass max, or the deflate data ends
 * (*ended; the rest of the input is then ignored). */
static int inflate_run(z_stream *z, const uint8_t *in, size_t len, buf *dst, uint64_t max, int *ended) {
  size_t lim = max >= SIZE_MAX ? SIZE_MAX : (size_t)max;
  size_t left = len;
  z->next_in = in;
  z->avail_in = 0;
  for (;;) {
    if (z->avail_in == 0) {
      z->avail_in = left > UINT_MAX ? UINT_MAX : (uInt)left;
      left -= z->avail_in;
    }
    uint8_t probe;
    size_t room;
    if (dst->len >= lim) {
      /* Full: one more byte of output means the message is too big. */
      z->next_out = &probe;
      room = 1;
    } else {
      if (dst->cap == dst->len && grow_capped(dst, lim) != 0) return WSIO_ENOMEM;
      room = (dst->cap < lim ? dst->cap : lim) - dst->len;
      if (room > UINT_MAX) room = UINT_MAX;
      z->next_out = dst->data + dst->len;
    }
    z->avail_out = (uInt)room;
    int rc = inflate(z, Z_SYNC_FLUSH);
    size_t got = room - z->avail_out;
    if (dst->len >= lim) {
      if (got) return WSIO_ETOOBIG;
    } else {
      dst->len += got;
    }
    if (rc == Z_STREAM_END) {
      *ended = 1;
      return 0;
    }
    if (rc == Z_MEM_ERROR) return WSIO_ENOMEM;
    if (rc != Z_OK && rc != Z_BUF_ERROR) return WSIO_EPROTO;
    if (z->avail_out == 0) continue; /* maybe more output pending */
    if (z->avail_in == 0 && left == 0) return 0;
    if (rc == Z_BUF_ERROR) return WSIO_EPROTO; /* no progress with input and room: cannot happen */
  }
}

/* Starts a new raw stream after a BFINAL block, keeping the window for context takeover. */
static int inf_restart_keep(z_stream *z) {
  uInt n = 0;
  inflateGetDictionary(z, Z_NULL, &n);
  Bytef *dict = n ? malloc(n) : NULL;
  if (n && !dict) return WSIO_ENOMEM;
  if (n) inflateGetDictionary(z, dict, &n);
  inflateReset(z);
  int rc = n ? inflateSetDictionary(z, dict, n) : Z_OK;
  free(dict);
  return rc == Z_OK ? 0 : WSIO_ENOMEM;
}

/* Moves the shared inflater's current message to a private copy held by its connection. */
static int inf_evict(ws_deflate_shared *sh) {
  ws_deflate *o = sh->inf_owner;
  sh->inf_owner = NULL;
  if (o->inf_state != INF_ACTIVE) return 0;
  z_stream *z = calloc(1, sizeof *z);
  if (!z) return WSIO_ENOMEM;
  size_t before = sh->zmem;
  if (inflateCopy(z, sh->inf) != Z_OK) {
    free(z);
    sh->inf_owner = o;
    return WSIO_ENOMEM;
  }
  /* The copy was counted on the loop: move it, and its future window allocation, to the connection. */
  size_t moved = sh->zmem - before;
  sh->zmem -= moved;
  o->zmem += moved;
  z->opaque = &o->zmem;
  o->inf = z;
  return 0;
}

int ws_inflate_begin(ws_deflate *d) {
  if (d->inf_state == INF_ACTIVE && !shared_inflate(d)) d->inf_restart = RESTART_RESET; /* abandoned */
  if (d->inf_state != INF_IDLE) inf_release(d);
  if (shared_inflate(d)) {
    ws_deflate_shared *sh = d->shared;
    if (!sh->inf && !(sh->inf = inflater_new(&sh->zmem))) return WSIO_ENOMEM;
    if (sh->inf_owner && sh->inf_owner != d) {
      int rc = inf_evict(sh);
      if (rc) return rc;
    }
    sh->inf_owner = d;
    inflateReset(sh->inf);
  } else if (!d->inf) {
    if (!(d->inf = inflater_new(&d->zmem))) return WSIO_ENOMEM;
  } else if (d->p.client_no_context_takeover || d->inf_restart == RESTART_RESET) {
    inflateReset(d->inf);
  } else if (d->inf_restart == RESTART_KEEP) {
    int rc = inf_restart_keep(d->inf);
    if (rc) return rc;
  }
  d->inf_restart = RESTART_NONE;
  d->inf_state = INF_ACTIVE;
  return 0;
}

static z_stream *inf_stream(ws_deflate *d) {
  if (d->inf_state != INF_ACTIVE) return NULL;
  if (d->inf) return d->inf;
  if (d->shared && d->shared->inf_owner == d) return d->shared->inf;
  return NULL;
}

/* Common tail of chunk and end: on error the message is over and, with context takeover, the window is
 * lost (the connection is being failed anyway). */
static int inf_after(ws_deflate *d, int rc, int ended) {
  if (rc < 0) {
    inf_release(d);
    if (!shared_inflate(d)) d->inf_restart = RESTART_RESET;
    return rc;
  }
  if (ended) {
    inf_release(d);
    d->inf_state = INF_DONE;
    if (!shared_inflate(d)) d->inf_restart = RESTART_KEEP;
  }
  return 0;
}

int ws_inflate_chunk(ws_deflate *d, const uint8_t *in, size_t len, struct buf *dst, uint64_t max) {
  if (d->inf_state == INF_DONE) return 0;
  z_stream *z = inf_stream(d);
  if (!z) return WSIO_EINVAL;
  int ended = 0;
  int rc = inflate_run(z, in, len, dst, max, &ended);
  return inf_after(d, rc, ended);
}

int ws_inflate_end(ws_deflate *d, struct buf *dst, uint64_t max) {
  static const uint8_t tail[4] = {0x00, 0x00, 0xff, 0xff};
  if (d->inf_state == INF_DONE) {
    d->inf_state = INF_IDLE;
    return 0;
  }
  z_stream *z = inf_stream(d);
  if (!z) return WSIO_EINVAL;
  int ended = 0;
  int rc = inflate_run(z, tail, sizeof tail, dst, max, &ended);
  /* The tail completes an empty stored block, so a well-formed message leaves the inflater between
   * blocks (data_type bit 128). Anything else is truncated data that would corrupt the next message. */
  if (rc == 0 && !ended && !(z->data_type & 128)) rc = WSIO_EPROTO;
  rc = inf_after(d, rc, ended);
  if (rc == 0) inf_release(d);
  return rc;
}

/* ---- Negotiation ---------------------------------------------------------------------------------- */

/* RFC 6455 9.1 with RFC 7230 tokens: extension = token *( ";" param ), param = token [ "=" value ],
 * value = token / quoted-string whose unescaped content is a token. Whitespace is allowed around every
 * separator. Empty list elements are skipped (RFC 7230 7). */

enum { P_SNCT, P_CNCT, P_SMWB, P_CMWB, P_UNKNOWN };

static const char *const pmd_param_names[] = {"server_no_context_takeover", "client_no_context_takeover",
                                              "server_max_window_bits", "client_max_window_bits"};

typedef struct pmd_offer {
  int invalid;
  unsigned seen;     /* bit per known parameter */
  int smwb;          /* server_max_window_bits value, 0 absent */
  int cmwb;          /* client_max_window_bits value, 0 absent or without value */
} pmd_offer;

static int is_tchar(unsigned char c) {
  if ((c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')) return 1;
  return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static const char *skip_ows(const char *p, const char *end) {
  while (p < end && (*p == ' ' || *p == '\t')) p++;
  return p;
}

static const char *scan_token(const char *p, const char *end) {
  while (p < end && is_tchar((unsigned char)*p)) p++;
  return p;
}

static int ieq(const char *a, size_t n, const char *lit) {
  size_t m = strlen(lit);
  if (n != m) return 0;
  for (size_t i = 0; i < n; i++) {
    char c = a[i] >= 'A' && a[i] <= 'Z' ? (char)(a[i] + 32) : a[i];
    if (c != lit[i]) return 0; /* lit is lower case */
  }
  return 1;
}

/* Scans a parameter value at *pp. Copies up to cap - 1 bytes of it (unescaped) into val and sets *n to its
 * full length. Returns 0, or -1 for malformed syntax. */
static int scan_value(const char **pp, const char *end, char *val, size_t cap, size_t *n) {
  const char *p = *pp;
  *n = 0;
  if (p < end && *p == '"') {
    for (p++;; p++) {
      if (p >= end) return -1;
      unsigned char c = (unsigned char)*p;
      if (c == '"') break;
      if (c == '\\') {
        if (++p >= end) return -1;
        c = (unsigned char)*p;
      }
      if (!is_tchar(c)) return -1;
      if (*n < cap - 1) val[*n] = (char)c;
      (*n)++;
    }
    if (*n == 0) return -1;
    *pp = p + 1;
    return 0;
  }
  const char *t = scan_token(p, end);
  if (t == p) return -1;
  for (; p < t; p++, (*n)++)
    if (*n < cap - 1) val[*n] = *p;
  *pp = t;
  return 0;
}

/* "8".."15", decimal without leading zeros (RFC 7692 7.1.2.1); -1 otherwise. */
static int window_bits(const char *v, size_t n) {
  if (n == 1 && (v[0] == '8' || v[0] == '9')) return v[0] - '0';
  if (n == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5') return 10 + v[1] - '0';
  return -1;
}

static void offer_param(pmd_offer *o, const char *name, size_t nlen, int has_val, const char *val, size_t vlen) {
  int k = P_UNKNOWN;
  for (int i = 0; i < P_UNKNOWN; i++)
    if (ieq(name, nlen, pmd_param_names[i])) k = i;
  if (k == P_UNKNOWN || (o->seen & (1u << k))) {
    o->invalid = 1;
    return;
  }
  o->seen |= 1u << k;
  int bits = has_val ? window_bits(val, vlen) : -1;
  switch (k) {
  case P_SNCT:
  case P_CNCT:
    if (has_val) o->invalid = 1;
    break;
  case P_SMWB:
    /* 8 is valid, but zlib cannot deflate raw data with an 8-bit window: decline rather than break it. */
    if (bits < 9) o->invalid = 1;
    else o->smwb = bits;
    break;
  default: /* P_CMWB */
    if (has_val && bits < 0) o->invalid = 1;
    else if (has_val) o->cmwb = bits;
    break;
  }
}

static int pmd_accept(const pmd_offer *o, int mode, ws_pmd_params *out, char *resp, size_t cap) {
  ws_pmd_params p = {0, 0, 15, 15};
  p.server_no_context_takeover = mode == 1 || (o->seen & (1u << P_SNCT));
  p.client_no_context_takeover = mode == 1 || (o->seen & (1u << P_CNCT));
  if (o->smwb) p.server_max_window_bits = (uint8_t)o->smwb;
  if (o->cmwb) p.client_max_window_bits = (uint8_t)o->cmwb;
  char tmp[WS_PMD_RESP_MAX];
  size_t n = (size_t)snprintf(tmp, sizeof tmp, "permessage-deflate%s%s",
                              p.server_no_context_takeover ? "; server_no_context_takeover" : "",
                              p.client_no_context_takeover ? "; client_no_context_takeover" : "");
  if (o->smwb) n += (size_t)snprintf(tmp + n, sizeof tmp - n, "; server_max_window_bits=%d", o->smwb);
  if (o->cmwb) n += (size_t)snprintf(tmp + n, sizeof tmp - n, "; client_max_window_bits=%d", o->cmwb);
  if (n >= cap) return 0; /* caller's buffer too small: go on without compression */
  memcpy(resp, tmp, n + 1);
  *out = p;
  return 1;
}

int ws_pmd_negotiate(const char *value, size_t len, int mode, ws_pmd_params *out, char *resp, size_t resp_cap) {
  if (mode != 1 && mode != 2) return 0;
  const char *p = value, *end = value + len;
  int accepted = 0;
  for (;;) {
    p = skip_ows(p, end);
    if (p == end) break;
    if (*p == ',') {
      p++;
      continue;
    }
    const char *name = p;
    p = scan_token(p, end);
    if (p == name) return WSIO_EPROTO;
    int is_pmd = ieq(name, (size_t)(p - name), "permessage-deflate");
    pmd_offer o = {0, 0, 0, 0};
    p = skip_ows(p, end);
    while (p < end && *p == ';') {
      p = skip_ows(p + 1, end);
      const char *pname = p;
      p = scan_token(p, end);
      if (p == pname) return WSIO_EPROTO;
      size_t plen = (size_t)(p - pname);
      p = skip_ows(p, end);
      char val[8];
      size_t vlen = 0;
      int has_val = p < end && *p == '=';
      if (has_val) {
        p = skip_ows(p + 1, end);
        if (scan_value(&p, end, val, sizeof val, &vlen) != 0) return WSIO_EPROTO;
        p = skip_ows(p, end);
      }
      if (is_pmd) offer_param(&o, pname, plen, has_val, val, vlen);
    }
    if (p < end && *p != ',') return WSIO_EPROTO;
    /* Keep scanning after a match so a malformed header is refused whatever its order. */
    if (is_pmd && !o.invalid && !accepted) accepted = pmd_accept(&o, mode, out, resp, resp_cap);
  }
  return accepted;
}
