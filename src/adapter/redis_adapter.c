/* The Redis adapter's common part: connections, subscriptions, requests, shared codecs, public functions. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/redis_internal.h"
#include "adapter/redis_streams.h"
#include "sio/internal.h"
#include "util/log.h"

/* How long a request is remembered after its timeout: answers later than that are unknown ids. */
#define RDA_REQ_GRACE_MS 1000
#define RDA_TICK_MS 1000
#define RDA_MAX_REQS 100000

/* ---- subscriptions ---- */

int rda_subscribe(rda *a, const char *name, size_t len, int kind) { return rlink_subscribe(a->link, name, len, kind); }

void rda_unsubscribe(rda *a, const char *name, size_t len) { rlink_unsubscribe(a->link, name, len); }

void rda_feed(rda *a, redisReply *r) { a->proto->on_push(a, r); }

static void link_push(void *ud, redisReply *r) { rda_feed(ud, r); }

static void link_up(void *ud) {
  rda *a = ud;
  if (!a->dead && a->proto->on_up) a->proto->on_up(a);
}

/* ---- publishing and requests ---- */

int rda_publish(rda *a, const char *channel, size_t clen, const void *msg, size_t len) {
  int rc = rlink_publish(a->link, channel, clen, msg, len);
  if (rc < 0) a->st.dropped++;
  else a->st.published++;
  return rc;
}

void rda_req_id(rda *a, char *out, size_t cap) { snprintf(out, cap, "%s-%" PRIu64, a->uid, ++a->seq); }

rda_req *rda_req_find(rda *a, const char *id, size_t len) { return map_get(&a->reqs, id, len); }

static void req_free(rda *a, rda_req *r) {
  map_del(&a->reqs, r->id, r->id_len);
  if (r->prev) r->prev->next = r->next;
  else a->rhead = r->next;
  if (r->next) r->next->prev = r->prev;
  free(r);
}

/* Every peer has answered: sio is told once. The entry stays until its due time, because client acks of a
 * broadcast keep coming after the counts (sio ignores what comes after the request ends). */
static void req_check(rda *a, rda_req *r) {
  if (r->expected < 0 || r->got < r->expected || r->done) return;
  r->done = 1;
  sio_cluster_done(a->base.io, r->rid);
}

void rda_req_answer(rda *a, rda_req *r) {
  r->got++;
  req_check(a, r);
}

typedef struct numsub_ctx {
  rda *a;
  uint64_t seq;
  size_t len;
  char channel[]; /* the count channel: is this node's own subscription among the count? */
} numsub_ctx;

static rda_req *req_by_seq(rda *a, uint64_t seq) {
  for (rda_req *r = a->rhead; r; r = r->next)
    if (r->seq == seq) return r;
  return NULL;
}

/* The PUBSUB NUMSUB / SHARDNUMSUB answer, [channel, count]; rep NULL when the connection went first. The
 * request may be gone by then (swept, or the adapter freed): it is looked up by sequence number. */
static void numsub_done(void *ud, long long n) {
  numsub_ctx *x = ud;
  rda *a = x->a;
  a->nctx--;
  rda_req *r = a->dead ? NULL : req_by_seq(a, x->seq);
  if (r) {
    /* Our own subscription is among them when its connection is up. */
    long others = (long)n - (rlink_holds(a->link, x->channel, x->len) ? 1 : 0);
    r->expected = others < 0 ? 0 : others;
    req_check(a, r);
  }
  free(x);
}

int rda_request(rda *a, uint64_t rid, int kind, const char *id, uint32_t timeout_ms, const char *numsub,
                const char *count_ch, const char *channel, const void *msg, size_t len) {
  if (!rlink_up(a->link)) {
    a->st.dropped++;
    return WSIO_ECLOSED;
  }
  if (a->reqs.count >= RDA_MAX_REQS) return WSIO_ELIMIT;
  size_t clen = strlen(count_ch);
  rda_req *r = calloc(1, sizeof *r);
  numsub_ctx *x = malloc(sizeof *x + clen + 1);
  if (!r || !x) {
    free(r);
    free(x);
    return WSIO_ENOMEM;
  }
  snprintf(r->id, sizeof r->id, "%s", id);
  r->id_len = strlen(r->id);
  r->rid = rid;
  r->seq = ++a->seq;
  r->kind = kind;
  r->expected = -1;
  r->due = uv_now(a->loop) + (timeout_ms ? timeout_ms : WSIO_CLUSTER_TIMEOUT_MS) + RDA_REQ_GRACE_MS;
  if (map_put(&a->reqs, r->id, r->id_len, r) != 0) {
    free(r);
    free(x);
    return WSIO_ENOMEM;
  }
  r->next = a->rhead;
  if (a->rhead) a->rhead->prev = r;
  a->rhead = r;
  x->a = a;
  x->seq = r->seq;
  x->len = clen;
  memcpy(x->channel, count_ch, clen + 1);
  a->nctx++; /* before: the count may complete at once when a connection fails while sending */
  int rc = rlink_numsub(a->link, numsub, count_ch, numsub_done, x);
  if (rc == 0) {
    rc = rda_publish(a, channel, strlen(channel), msg, len);
    /* Not published (output full): no one will answer. The count's reply finds no request and is ignored;
     * sio completes the request with this node's part. */
    if (rc < 0) req_free(a, r);
    return rc;
  }
  a->nctx--;
  free(x);
  req_free(a, r);
  a->st.dropped++;
  return rc;
}

static void on_tick(uv_timer_t *t) {
  rda *a = t->data;
  if (a->proto->tick) a->proto->tick(a);
  uint64_t now = uv_now(a->loop);
  for (rda_req *r = a->rhead, *next; r; r = next) {
    next = r->next;
    if (r->due <= now) req_free(a, r);
  }
}

/* ---- decoding ---- */

int rda_decode(rda *a, const char *p, size_t n, sio_json_span *root) {
  buf_reset(&a->in_json, 1 << 20); /* a large message's buffer is not kept */
  a->in_atts.n = 0;
  if (n && p[0] == '{') {
    if (sio_json_validate(p, n, MPK_DEPTH_DEFAULT, root) != 0) return WSIO_EPROTO;
    return 0;
  }
  int rc = mpk_to_json((const uint8_t *)p, n, NULL, &a->in_json, &a->in_atts);
  if (rc < 0) return WSIO_EPROTO;
  root->p = (const char *)a->in_json.data;
  root->len = a->in_json.len;
  root->kind = sio_json_kind_of(root->p[0]);
  return 0;
}

int rda_to_msgpack(const buf *json, const sio_bin *atts, size_t natts, buf *out) {
  out->len = 0;
  mpk_writer w;
  mpk_writer_init(&w, out);
  sio_json_span v = {(const char *)json->data, json->len, sio_json_kind_of((char)json->data[0])};
  return mpk_pack_json(&w, &v, atts, natts);
}

char *rda_json_strdup(const sio_json_span *obj, const char *key) {
  sio_json_span v;
  if (!sio_json_object_find(obj, key, strlen(key), &v) || v.kind != SIO_JSON_STRING) return NULL;
  char *s = malloc(v.len);
  if (!s) return NULL;
  ssize_t n = sio_json_string_decode(&v, s, v.len);
  if (n < 0 || memchr(s, 0, (size_t)n)) {
    free(s);
    return NULL;
  }
  s[n] = 0;
  return s;
}

int rda_json_is(const sio_json_span *obj, const char *key, const char *s) {
  sio_json_span v;
  return sio_json_object_find(obj, key, strlen(key), &v) && sio_json_string_equals(&v, s, strlen(s));
}

long long rda_json_int(const sio_json_span *obj, const char *key, long long def) {
  sio_json_span v;
  if (!sio_json_object_find(obj, key, strlen(key), &v) || v.kind != SIO_JSON_NUMBER) return def;
  char tmp[32];
  if (v.len >= sizeof tmp) return def;
  memcpy(tmp, v.p, v.len);
  tmp[v.len] = 0;
  char *end;
  double d = strtod(tmp, &end);
  /* in range before the cast (a peer's 1e300 is not a count); integral only */
  if (*end || !(d > -9.2e18 && d < 9.2e18) || d != (double)(long long)d) return def;
  return (long long)d;
}

/* ---- targets ---- */

/* Appends a room name (a JSON string, or a number as its text: socket.io rooms may be numbers) to the
 * store; its offset goes to *off. */
static int room_add(rda_targets *g, const sio_json_span *v, size_t *off) {
  *off = g->store.len;
  if (v->kind == SIO_JSON_NUMBER) {
    if (buf_append(&g->store, v->p, v->len) < 0) return WSIO_ENOMEM;
  } else if (v->kind == SIO_JSON_STRING) {
    if (buf_reserve(&g->store, v->len) < 0) return WSIO_ENOMEM;
    ssize_t n = sio_json_string_decode(v, (char *)g->store.data + g->store.len, v->len);
    if (n < 0 || memchr(g->store.data + g->store.len, 0, (size_t)n)) return WSIO_EPROTO;
    g->store.len += (size_t)n;
  } else {
    return WSIO_EPROTO;
  }
  return buf_append(&g->store, "", 1);
}

static int rooms_read(rda_targets *g, const sio_json_span *opts, const char *key, size_t *offs, size_t *n,
                      size_t cap) {
  sio_json_span arr, e;
  *n = 0;
  if (!opts || !sio_json_object_find(opts, key, strlen(key), &arr) || arr.kind == SIO_JSON_NULL) return 0;
  if (arr.kind != SIO_JSON_ARRAY) return WSIO_EPROTO;
  sio_json_iter it;
  sio_json_iter_init(&it, &arr);
  while (sio_json_array_next(&it, &e)) {
    if (*n >= cap) return WSIO_EPROTO;
    int rc = room_add(g, &e, &offs[*n]);
    if (rc < 0) return rc;
    (*n)++;
  }
  return 0;
}

int rda_targets_read(rda *a, const char *nsp, const sio_json_span *opts, uint32_t *timeout_ms) {
  rda_targets *g = &a->tg;
  g->store.len = 0;
  size_t nr = 0, ne = 0;
  size_t nrooms_max = 0;
  sio_json_span arr;
  if (opts && opts->kind != SIO_JSON_OBJECT && opts->kind != SIO_JSON_NULL) return WSIO_EPROTO;
  if (opts && opts->kind == SIO_JSON_NULL) opts = NULL;
  if (opts && sio_json_object_find(opts, "rooms", 5, &arr)) nrooms_max += sio_json_array_count(&arr);
  if (opts && sio_json_object_find(opts, "except", 6, &arr)) nrooms_max += sio_json_array_count(&arr);
  if (nrooms_max > RDA_MAX_ROOMS) return WSIO_EPROTO;
  size_t want = nrooms_max ? nrooms_max : 1; /* never a NULL array, even for no rooms */
  if (want > g->cap) {
    const char **p = realloc(g->ptrs, want * sizeof *p);
    if (!p) return WSIO_ENOMEM;
    g->ptrs = p;
    g->cap = want;
  }
  size_t *offs = malloc(want * sizeof *offs);
  if (!offs) return WSIO_ENOMEM;
  int rc = rooms_read(g, opts, "rooms", offs, &nr, nrooms_max);
  if (rc == 0) rc = rooms_read(g, opts, "except", offs + nr, &ne, nrooms_max - nr);
  if (rc == 0) {
    for (size_t i = 0; i < nr + ne; i++) g->ptrs[i] = (const char *)g->store.data + offs[i];
    memset(&g->t, 0, sizeof g->t);
    g->t.nsp = nsp;
    g->t.rooms = g->ptrs;
    g->t.nrooms = nr;
    g->t.except = g->ptrs + nr;
    g->t.nexcept = ne;
    sio_json_span flags, f;
    if (timeout_ms) *timeout_ms = 0;
    if (opts && sio_json_object_find(opts, "flags", 5, &flags) && flags.kind == SIO_JSON_OBJECT) {
      if (sio_json_object_find(&flags, "volatile", 8, &f) && f.kind == SIO_JSON_TRUE) g->t.flags |= WSIO_OP_VOLATILE;
      if (sio_json_object_find(&flags, "compress", 8, &f) && f.kind == SIO_JSON_FALSE)
        g->t.flags |= WSIO_OP_NOCOMPRESS;
      long long t = rda_json_int(&flags, "timeout", 0);
      if (timeout_ms && t > 0) *timeout_ms = t < RDA_PEER_TIMEOUT_MAX_MS ? (uint32_t)t : RDA_PEER_TIMEOUT_MAX_MS;
    }
  }
  free(offs);
  buf_reset(&g->store, 65536);
  return rc;
}

static int strings_write(buf *b, const char *const *v, size_t n) {
  int rc = buf_append(b, "[", 1);
  for (size_t i = 0; rc == 0 && i < n; i++) {
    if (i) rc = buf_append(b, ",", 1);
    if (rc == 0) rc = sio_json_write_string(b, v[i], strlen(v[i]));
  }
  if (rc == 0) rc = buf_append(b, "]", 1);
  return rc;
}

int rda_targets_write(buf *b, const sio_targets *t) {
  int rc = buf_append(b, "\"rooms\":", 8);
  if (rc == 0) rc = strings_write(b, t->rooms, t->nrooms);
  if (rc == 0) rc = buf_append(b, ",\"except\":", 10);
  if (rc == 0) rc = strings_write(b, t->except, t->nexcept);
  return rc;
}

int rda_flags_write(buf *b, const sio_targets *t, uint32_t timeout_ms) {
  char tmp[128];
  int k = snprintf(tmp, sizeof tmp, ",\"flags\":{%s%s%s", (t->flags & WSIO_OP_VOLATILE) ? "\"volatile\":true" : "",
                   (t->flags & WSIO_OP_VOLATILE) && (t->flags & WSIO_OP_NOCOMPRESS) ? "," : "",
                   (t->flags & WSIO_OP_NOCOMPRESS) ? "\"compress\":false" : "");
  if (timeout_ms)
    k += snprintf(tmp + k, sizeof tmp - (size_t)k, "%s\"timeout\":%u", (t->flags & (WSIO_OP_VOLATILE | WSIO_OP_NOCOMPRESS)) ? "," : "",
                  timeout_ms);
  k += snprintf(tmp + k, sizeof tmp - (size_t)k, "}");
  return buf_append(b, tmp, (size_t)k);
}

/* ---- sockets (fetchSockets answers) ---- */

void rda_socket_json(buf *b, const sio_socket_info *info, int *first, int *err) {
  int rc = *first ? 0 : buf_append(b, ",", 1);
  *first = 0;
  if (rc == 0) rc = buf_append(b, "{\"id\":", 6);
  if (rc == 0) rc = sio_json_write_string(b, info->id, strlen(info->id));
  if (rc == 0) rc = buf_append(b, ",\"handshake\":", 13);
  const char *hs = info->handshake_json ? info->handshake_json : "{}";
  if (rc == 0) rc = buf_append(b, hs, strlen(hs));
  if (rc == 0) rc = buf_append(b, ",\"rooms\":", 9);
  if (rc == 0) rc = strings_write(b, info->rooms, info->nrooms);
  if (rc == 0) rc = buf_append(b, ",\"data\":", 8);
  const char *data = info->data_json ? info->data_json : "null";
  if (rc == 0) rc = buf_append(b, data, strlen(data));
  if (rc == 0) rc = buf_append(b, "}", 1);
  if (rc < 0) *err = rc;
}

/* NUL-terminated copies of a JSON value's text (or a string's decoded bytes) in one store. */
static int store_text(buf *st, const sio_json_span *v, int decode, size_t *off) {
  *off = st->len;
  if (decode) {
    if (v->kind != SIO_JSON_STRING) return WSIO_EPROTO;
    if (buf_reserve(st, v->len) < 0) return WSIO_ENOMEM;
    ssize_t n = sio_json_string_decode(v, (char *)st->data + st->len, v->len);
    if (n < 0 || memchr(st->data + st->len, 0, (size_t)n)) return WSIO_EPROTO;
    st->len += (size_t)n;
  } else if (buf_append(st, v->p, v->len) < 0) {
    return WSIO_ENOMEM;
  }
  return buf_append(st, "", 1);
}

void rda_sockets_deliver(rda *a, uint64_t rid, const sio_json_span *arr) {
  if (arr->kind != SIO_JSON_ARRAY) return;
  sio_json_iter it;
  sio_json_span s;
  sio_json_iter_init(&it, arr);
  buf st = {0};
  while (sio_json_array_next(&it, &s)) {
    if (s.kind != SIO_JSON_OBJECT) continue;
    sio_json_span id, hs, rooms, data, e;
    if (!sio_json_object_find(&s, "id", 2, &id)) continue;
    int has_hs = sio_json_object_find(&s, "handshake", 9, &hs);
    int has_data = sio_json_object_find(&s, "data", 4, &data);
    size_t nrooms = sio_json_object_find(&s, "rooms", 5, &rooms) ? sio_json_array_count(&rooms) : 0;
    if (nrooms > RDA_MAX_ROOMS) continue;
    size_t offs[3];
    size_t *roffs = malloc((nrooms ? nrooms : 1) * sizeof *roffs);
    const char **rp = malloc((nrooms ? nrooms : 1) * sizeof *rp);
    st.len = 0;
    int rc = roffs && rp ? store_text(&st, &id, 1, &offs[0]) : WSIO_ENOMEM;
    if (rc == 0 && has_hs) rc = store_text(&st, &hs, 0, &offs[1]);
    if (rc == 0 && has_data) rc = store_text(&st, &data, 0, &offs[2]);
    size_t k = 0;
    if (rc == 0 && nrooms) {
      sio_json_iter ri;
      sio_json_iter_init(&ri, &rooms);
      while (rc == 0 && sio_json_array_next(&ri, &e))
        if (e.kind == SIO_JSON_STRING) rc = store_text(&st, &e, 1, &roffs[k++]);
    }
    if (rc == 0) {
      for (size_t i = 0; i < k; i++) rp[i] = (const char *)st.data + roffs[i];
      sio_socket_info info = {
          .id = (const char *)st.data + offs[0],
          .rooms = rp,
          .nrooms = k,
          .handshake_json = has_hs ? (const char *)st.data + offs[1] : "{}",
          .data_json = has_data ? (const char *)st.data + offs[2] : "null",
      };
      sio_cluster_sockets(a->base.io, rid, &info, 1);
    }
    free(roffs);
    free(rp);
  }
  buf_free(&st);
}

sio_json_span rda_first_arg(const char *json, size_t len, int *absent) {
  sio_json_span arr, e = {"null", 4, SIO_JSON_NULL};
  *absent = 1;
  if (json && sio_json_validate(json, len, SIO_JSON_DEPTH_MAX, &arr) == 0 && arr.kind == SIO_JSON_ARRAY) {
    sio_json_iter it;
    sio_json_iter_init(&it, &arr);
    sio_json_span first;
    if (sio_json_array_next(&it, &first)) {
      e = first;
      *absent = 0;
    }
  }
  return e;
}

int rda_channel_nsp(const char *ch, size_t len, size_t prefix_len, char *out, size_t cap, size_t *consumed) {
  if (len <= prefix_len || ch[prefix_len] != '/') return WSIO_EPROTO;
  const char *p = ch + prefix_len;
  const char *hash = memchr(p, '#', len - prefix_len);
  if (!hash || (size_t)(hash - p) >= cap) return WSIO_EPROTO;
  memcpy(out, p, (size_t)(hash - p));
  out[hash - p] = 0;
  *consumed = (size_t)(hash + 1 - ch);
  return 0;
}

/* ---- peers' requests answered later ---- */

static void rda_memfree(rda *a);

int rda_channel(buf *b, const rda *a, const char *mid, const char *nsp, const char *tail) {
  b->len = 0;
  int rc = buf_append(b, a->key, strlen(a->key));
  if (rc == 0) rc = buf_append(b, mid, strlen(mid));
  if (rc == 0) rc = buf_append(b, nsp, strlen(nsp));
  if (rc == 0) rc = buf_append(b, "#", 1);
  if (rc == 0 && tail) rc = buf_append(b, tail, strlen(tail));
  if (rc == 0 && tail) rc = buf_append(b, "#", 1);
  if (rc == 0) rc = buf_append(b, "", 1);
  if (rc == 0) b->len--;
  return rc;
}

int rda_sockets_op_write(buf *b, const char *room, int with_close, int close) {
  int rc = 0;
  if (room) {
    rc = buf_append(b, ",\"rooms\":[", 10);
    if (rc == 0) rc = sio_json_write_string(b, room, strlen(room));
    if (rc == 0) rc = buf_append(b, "]", 1);
  }
  if (rc == 0 && with_close) rc = buf_append(b, close ? ",\"close\":true" : ",\"close\":false", close ? 13 : 14);
  return rc;
}

int rda_rooms_apply(rda *a, const sio_json_span *msg, int join) {
  sio_json_span rooms, e;
  if (!sio_json_object_find(msg, "rooms", 5, &rooms) || rooms.kind != SIO_JSON_ARRAY) return WSIO_EPROTO;
  sio_json_iter it;
  sio_json_iter_init(&it, &rooms);
  char room[1024];
  while (sio_json_array_next(&it, &e)) {
    ssize_t k = e.kind == SIO_JSON_STRING ? sio_json_string_decode(&e, room, sizeof room - 1) : -1;
    if (e.kind == SIO_JSON_NUMBER && e.len < sizeof room) memcpy(room, e.p, (size_t)(k = (ssize_t)e.len));
    if (k < 0 || memchr(room, 0, (size_t)k)) continue;
    room[k] = 0;
    if (join) sio_cluster_sockets_join(a->base.io, &a->tg.t, room);
    else sio_cluster_sockets_leave(a->base.io, &a->tg.t, room);
  }
  return 0;
}

static void peer_ack_end(void *ctx) { rda_ctx_end(ctx); }

int rda_peer_broadcast_ack(rda *a, const char *nsp, const char *reqid, const char *uid, size_t first,
                           size_t count, uint32_t timeout_ms, sio_cluster_reply_fn reply, int *rc) {
  /* No such namespace here: no client, and nothing for sio to call back. */
  if (!map_get(&a->base.io->nsps, nsp, strlen(nsp))) return 0;
  rda_ctx *c = rda_ctx_new(a, RDA_REQ_ACK, reqid, uid, nsp);
  if (!c) return 0;
  int clients = sio_cluster_broadcast_ack(a->base.io, &a->tg.t, (const char *)a->tmp.data, a->tmp.len,
                                          rda_atts(a, first, count), count, timeout_ms, reply, peer_ack_end, c);
  if (clients < 0) {
    rda_ctx_end(c);
    *rc = clients;
    return 0;
  }
  return clients;
}

rda_ctx *rda_ctx_new(rda *a, int kind, const char *reqid, const char *uid, const char *nsp) {
  if (a->nctx >= RDA_MAX_CTX) return NULL;
  rda_ctx *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->a = a;
  c->kind = kind;
  c->reqid = strdup(reqid ? reqid : "");
  c->uid = strdup(uid ? uid : "");
  c->nsp = strdup(nsp ? nsp : "/");
  if (!c->reqid || !c->uid || !c->nsp) {
    free(c->reqid);
    free(c->uid);
    free(c->nsp);
    free(c);
    return NULL;
  }
  a->nctx++;
  return c;
}

void rda_ctx_end(rda_ctx *c) {
  if (!c) return;
  rda *a = c->a;
  free(c->reqid);
  free(c->uid);
  free(c->nsp);
  free(c);
  a->nctx--;
  if (a->dead && a->nctx == 0) rda_memfree(a);
}

/* ---- lifetime ---- */

static void rda_memfree(rda *a) {
  while (a->rhead) req_free(a, a->rhead);
  map_free(&a->reqs);
  buf_free(&a->in_json);
  buf_free(&a->out);
  buf_free(&a->out2);
  buf_free(&a->tmp);
  buf_free(&a->tg.store);
  free(a->tg.ptrs);
  mpk_atts_free(&a->in_atts);
  redis_url_free(&a->url);
  free(a->key);
  free(a);
}

void rda_unref(rda *a) {
  a->nctx--;
  if (a->dead && a->nctx == 0) rda_memfree(a);
}

static void tick_closed(uv_handle_t *h) { rda_unref(h->data); }

/* vt->free: the io is going away. Contexts still held by sio or by Redis callbacks keep the memory. */
void rda_free(sio_adapter *base) {
  rda *a = (rda *)base;
  a->dead = 1;
  a->nctx++; /* the timer's close: the memory goes after it */
  if (a->proto->stop) a->proto->stop(a);
  rlink_free(a->link); /* fails the server counts in flight: their contexts end */
  a->link = NULL;
  uv_close((uv_handle_t *)&a->tick, tick_closed);
}

static const char *mode_name(int m) {
  return m == WSIO_REDIS_STATIC ? "static" : m == WSIO_REDIS_DYNAMIC_PRIVATE ? "dynamic-private" : "dynamic";
}

int wsio_io_redis(wsio_io *io, const wsio_redis_config *cfg) {
  wsio_redis_config def = {0};
  if (!io) return WSIO_EINVAL;
  if (!cfg) cfg = &def;
  if ((unsigned)cfg->subscription_mode > WSIO_REDIS_DYNAMIC_PRIVATE) return WSIO_EINVAL;
  if (cfg->streams && cfg->stream_count > 1024) return WSIO_EINVAL; /* one connection per stream */
  if (sio_adapter_of(io)) return WSIO_EEXISTS;
  const char *key = cfg->key && *cfg->key ? cfg->key : "socket.io";
  redis_url url;
  char bad[300] = "";
  int rc = redis_url_parse_why(cfg->url ? cfg->url : "redis://127.0.0.1:6379", &url, bad, sizeof bad);
  if (rc < 0) {
    log_error("redis: invalid URL: %s (expected redis[s]://[[user]:password@]host[:port][/db], or "
              "redis[s]+sentinel://[[user]:password@]host[:port][,host[:port]...]/master-name[/db])",
              rc == WSIO_ENOMEM ? "out of memory" : bad);
    return rc;
  }
  if ((rc = redis_url_apply(&url, cfg)) < 0) {
    redis_url_free(&url);
    return rc;
  }
  uint32_t cto = cfg->connect_timeout_ms ? cfg->connect_timeout_ms : 2000;
  /* Degraded start: Redis may be away, and whether it is a cluster is asked at the first connection. */
  int mode = url.master ? RLINK_SENTINEL : RLINK_DETECT;
  if (!cfg->degraded_start) {
    char why[256] = "";
    int cluster = 0;
    if (url.master && (rc = redis_sentinel_resolve(&url, cto, why, sizeof why)) < 0) {
      log_error("redis: cannot find the master %s: %s", url.master, why);
      redis_url_free(&url);
      return rc;
    }
    rc = redis_probe(&url, cto, why, sizeof why, &cluster);
    if (rc == 0 && cluster && url.master) {
      snprintf(why, sizeof why, "a Redis Cluster node: Sentinel is for one master and its replicas");
      rc = WSIO_EINVAL;
    }
    if (!url.master) mode = cluster ? RLINK_CLUSTER : RLINK_SINGLE;
    if (rc < 0) {
      log_error("redis: cannot use %s:%d: %s", url.host, url.port, why);
      redis_url_free(&url);
      return rc;
    }
  }
  rda *a = calloc(1, sizeof *a);
  if (!a || !(a->key = strdup(key))) {
    free(a);
    redis_url_free(&url);
    return WSIO_ENOMEM;
  }
  a->url = url;
  a->sharded = cfg->sharded != 0;
  a->streams = cfg->streams != 0;
  a->mode = cfg->subscription_mode;
  a->proto = a->streams ? &rda_streams : a->sharded ? &rda_sharded : &rda_classic;
  a->base.vt = a->proto->vt;
  a->loop = wsio_server_loop(io->server);
  /* 16 hex digits: socket.io-adapter's ClusterAdapter uses 8 random bytes as hex too. */
  uv_random(NULL, NULL, &a->seq, sizeof a->seq, 0, NULL);
  snprintf(a->uid, sizeof a->uid, "%016" PRIx64, a->seq);
  a->seq = 0;
  rlink_config lc = {.url = &a->url, .sharded = a->sharded, .mode = mode, .connect_timeout_ms = cto,
                     .backoff_max_ms = cfg->reconnect_max_ms, .on_up = link_up};
  a->link = rlink_new(a->loop, &lc, link_push, a);
  uv_timer_init(a->loop, &a->tick);
  a->tick.data = a;
  if (!a->link) {
    rda_free(&a->base);
    return WSIO_ENOMEM;
  }
  rc = sio_adapter_attach(io, &a->base);
  if (rc == 0 && a->proto->start) {
    wsio_redis_config c = *cfg;
    c.connect_timeout_ms = cto;
    rc = a->proto->start(a, &c);
  }
  if (rc == 0) rc = a->proto->nsp_subscribe(a, "/");
  if (rc < 0) {
    if (sio_adapter_of(io) != &a->base) rda_free(&a->base);
    return rc;
  }
  uv_timer_start(&a->tick, on_tick, RDA_TICK_MS, RDA_TICK_MS);
  uv_unref((uv_handle_t *)&a->tick);
  char where[300];
  if (mode == RLINK_SENTINEL)
    snprintf(where, sizeof where, "master %s through %zu sentinel%s", a->url.master, a->url.nsentinels,
             a->url.nsentinels > 1 ? "s" : "");
  else
    snprintf(where, sizeof where, "%s:%d%s", a->url.host ? a->url.host : "?", a->url.port,
             mode == RLINK_CLUSTER ? " (Redis Cluster)" : "");
  const char *tls = a->url.tls ? " over TLS" : "";
  if (a->streams)
    log_info("redis: adapter on %s%s, streams (%s pub/sub), stream \"%s\"%s, key \"%s\", node %s", where, tls,
             a->sharded ? "sharded" : "classic", cfg->stream_name && *cfg->stream_name ? cfg->stream_name : "socket.io",
             cfg->stream_count > 1 ? " and its siblings" : "", a->key, a->uid);
  else
    log_info("redis: adapter on %s%s, %s pub/sub%s%s, key \"%s\", node %s", where, tls,
             a->sharded ? "sharded" : "classic", a->sharded ? ", subscription mode " : "",
             a->sharded ? mode_name(a->mode) : "", a->key, a->uid);
  return 0;
}

int wsio_io_redis_stats(const wsio_io *io, wsio_redis_stats *out) {
  sio_adapter *b = sio_adapter_of(io);
  if (!b || (b->vt != rda_classic.vt && b->vt != rda_sharded.vt && b->vt != rda_streams.vt)) return WSIO_ENOTFOUND;
  rda *a = (rda *)b;
  if (a->dead) return WSIO_ENOTFOUND;
  *out = a->st;
  rlink_stats ls;
  rlink_stats_get(a->link, &ls);
  out->connected = ls.up;
  out->connects = ls.connects;
  out->disconnects = ls.failures;
  out->dropped += ls.lost;
  out->cluster = ls.cluster;
  out->cluster_primaries = ls.primaries;
  out->cluster_refreshes = ls.refreshes;
  out->cluster_redirects = ls.redirects;
  out->sentinel = ls.sentinel;
  out->sentinel_switches = ls.switches;
  if (a->streams) rds_stats(a, out);
  return 0;
}
