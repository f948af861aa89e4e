/*
 * Connection state recovery through Redis, as @socket.io/redis-streams-adapter's persistSession and
 * restoreSession do it, so that a client recovers on any node of the cluster, wsio or Node:
 *
 *   persist: SET <sessionKeyPrefix><pid> <session> PX <the recovery window>;
 *   restore: only for an offset "<ms>-<seq>" (anything else: a fresh session at once, nothing asked);
 *            GETDEL of the session (used once, found or not) and XRANGE <stream> <offset> <offset>, since the
 *            offset must still be in the stream; then the entries after it, XRANGE <next id> + in pages:
 *            the broadcasts (type "3") of the client's namespace meant for its rooms (rsx_packet_for), each
 *            with its entry's id as its offset, are the missed packets.
 *
 * The answer goes to sio as a packed session (sio_restore_pack) with sio_cluster_restored, then
 * sio_cluster_done. The package's MULTI GET DEL is GETDEL here (Redis 6.2). Differences: an entry that does
 * not decode is skipped rather than failing the whole restore, and at most SIO_RESTORE_MAX_ROOMS rooms come
 * back, as with recovery on one server.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/redis_streams.h"
#include "sio/internal.h"
#include "util/log.h"

struct rds_restore_ctx {
  rds_restore_ctx *next;         /* on x->finished */
  rds *x;
  uint64_t rid;
  int waiting;               /* replies awaited (plus one while sending) */
  int failed, done, ok, have_offset, packing;
  unsigned pages;
  char *value;               /* the session as GETDEL gave it */
  size_t vlen;
  rsx_session s;
  sio_restore_pack pk;
  char from[RSX_ID_MAX];     /* the next page starts here */
  char nsp[256];
  char stream[];
};

static void end(rds_restore_ctx *c) {
  rds *x = c->x;
  rsx_session_free(&c->s);
  buf_free(&c->pk.b);
  free(c->value);
  free(c);
  x->restores--;
  rda_unref(x->a);
}

static void finish(rds_restore_ctx *c, int ok) {
  rds *x = c->x;
  c->done = 1;
  c->ok = ok;
  c->next = x->finished;
  x->finished = c;
  rds_drain_soon(x);
}

void rds_finish_restores(rds *x) {
  rda *a = x->a;
  while (x->finished) {
    rds_restore_ctx *c = x->finished;
    x->finished = c->next;
    if (!a->dead) {
      if (c->ok) {
        x->restored++;
        sio_cluster_restored(a->base.io, c->rid, (const char *)c->pk.b.data, c->pk.b.len);
      }
      sio_cluster_done(a->base.io, c->rid);
    }
    end(c);
  }
}

void rds_sessions_stop(rds *x) {
  while (x->finished) {
    rds_restore_ctx *c = x->finished;
    x->finished = c->next;
    end(c);
  }
}

/* ---- persist ---- */

void rds_persist(sio_adapter *base, const sio_session_info *s) {
  rda *a = (rda *)base;
  rds *x = a->xs;
  if (!x || a->dead) return;
  x->busy++;
  buf *key = &x->key;
  key->len = 0;
  int rc = buf_append(key, x->session_prefix, strlen(x->session_prefix));
  if (rc == 0) rc = buf_append(key, s->pid, strlen(s->pid));
  if (rc == 0) rc = rsx_session_encode(s, &x->tmp, &x->data);
  if (rc == 0) {
    char px[24];
    snprintf(px, sizeof px, "%u", a->base.io->cfg.recovery_ms);
    const char *argv[5] = {"SET", (const char *)key->data, (const char *)x->data.data, "PX", px};
    size_t lens[5] = {3, key->len, x->data.len, 2, strlen(px)};
    rc = rds_send(x, 5, argv, lens, NULL, NULL);
  }
  if (rc >= 0) x->saved++;
  else log_debug("redis: the session of %s was not saved: %s", s->sid, wsio_strerror(rc));
  x->busy--;
}

/* ---- restore ---- */

static void step(rds_restore_ctx *c);

static void got_session(void *ud, redisReply *r) {
  rds_restore_ctx *c = ud;
  c->waiting--;
  if (!r || r->type == REDIS_REPLY_ERROR) c->failed = 1;
  else if (r->type == REDIS_REPLY_STRING && r->len && (c->value = malloc(r->len))) {
    memcpy(c->value, r->str, r->len);
    c->vlen = r->len;
  }
  step(c);
}

static void got_offset(void *ud, redisReply *r) {
  rds_restore_ctx *c = ud;
  c->waiting--;
  if (!r || r->type == REDIS_REPLY_ERROR) c->failed = 1;
  else c->have_offset = r->type == REDIS_REPLY_ARRAY && r->elements > 0;
  step(c);
}

/* One missed entry, when it is for the client: packed with its id as its offset. 0, or WSIO_ELIMIT when
 * the pack is full. */
static int take_entry(rds_restore_ctx *c, const rsx_entry *e, buf *json, buf *bin, mpk_atts *atts, buf *text) {
  rda *a = c->x->a;
  if (e->nsp_len != strlen(c->nsp) || memcmp(e->nsp, c->nsp, e->nsp_len) != 0) return 0;
  if (!e->type || e->type_len != 1 || e->type[0] != '3') return 0; /* broadcasts only, as the package */
  sio_json_span data, pkt, opts;
  size_t first, count;
  char id[RSX_ID_MAX];
  memcpy(id, e->id, e->id_len);
  id[e->id_len] = 0;
  text->len = 0;
  if (rsx_data_decode(e->data, e->data_len, json, bin, atts, &data) < 0 || data.kind != SIO_JSON_OBJECT ||
      !sio_json_object_find(&data, "packet", 6, &pkt) ||
      mpk_packet_text_nsp(&pkt, atts->n, 0, c->nsp, text, &first, &count) < 0 ||
      sio_recovery_stamp_text(text, id) < 0) {
    a->st.malformed++;
    return 0;
  }
  if (!sio_json_object_find(&data, "opts", 4, &opts)) opts.kind = SIO_JSON_NULL;
  if (!rsx_packet_for(&opts, c->s.rooms, c->s.nrooms)) return 0;
  int rc = sio_restore_pack_packet(a->base.io, &c->pk, (const char *)text->data, text->len,
                                   count ? atts->v + first : NULL, count);
  return rc == WSIO_ELIMIT ? rc : 0;
}

static void got_page(void *ud, redisReply *r) {
  rds_restore_ctx *c = ud;
  c->waiting--;
  if (!r || r->type != REDIS_REPLY_ARRAY || c->x->a->dead) {
    c->failed = 1;
    step(c);
    return;
  }
  buf json = {0}, bin = {0}, text = {0};
  mpk_atts atts = {0};
  int full = 0;
  for (size_t i = 0; i < r->elements && !full; i++) {
    rsx_entry e;
    int rc = rsx_entry_read(r->element[i], &e);
    if (e.id && rsx_offset_next_n(e.id, e.id_len, c->from) != 0) c->failed = 1;
    if (rc == 0) full = take_entry(c, &e, &json, &bin, &atts, &text) == WSIO_ELIMIT;
  }
  buf_free(&json);
  buf_free(&bin);
  buf_free(&text);
  mpk_atts_free(&atts);
  if (full || r->elements < RDS_RESTORE_PAGE || ++c->pages >= RDS_RESTORE_PAGES) {
    if (!c->failed) finish(c, 1);
    else step(c);
    return;
  }
  step(c);
}

static void page(rds_restore_ctx *c) {
  rda *a = c->x->a;
  const char *argv[6] = {"XRANGE", c->stream, c->from, "+", "COUNT", NULL};
  char n[16];
  snprintf(n, sizeof n, "%d", RDS_RESTORE_PAGE);
  argv[5] = n;
  size_t lens[6];
  for (int i = 0; i < 6; i++) lens[i] = strlen(argv[i]);
  c->waiting++;
  if (rlink_command(a->link, c->stream, strlen(c->stream), got_page, c, 6, argv, lens) < 0) {
    c->waiting--;
    c->failed = 1;
    step(c);
  }
}

/* The session, found with its offset: the pack begins with its id, rooms (its own id left out) and data. */
static int unpack_session(rds_restore_ctx *c) {
  if (rsx_session_decode(c->value, c->vlen, &c->s) != 0) return -1;
  const char *rooms[SIO_RESTORE_MAX_ROOMS];
  size_t n = 0;
  for (size_t i = 0; i < c->s.nrooms && n < SIO_RESTORE_MAX_ROOMS; i++)
    if (strcmp(c->s.rooms[i], c->s.sid) != 0) rooms[n++] = c->s.rooms[i];
  /* {} is socket.data's default in socket.io: unset here */
  const char *data = c->s.data_json && strcmp(c->s.data_json, "{}") != 0 ? c->s.data_json : NULL;
  return sio_restore_pack_begin(&c->pk, c->s.sid, c->nsp, data, rooms, n) == 0 ? 0 : -1;
}

static void step(rds_restore_ctx *c) {
  if (c->waiting || c->done) return;
  if (c->x->a->dead) {
    end(c);
    return;
  }
  if (c->failed || !c->value || !c->have_offset) {
    finish(c, 0);
    return;
  }
  if (!c->packing) {
    c->packing = 1;
    if (unpack_session(c) != 0) {
      finish(c, 0);
      return;
    }
  }
  page(c);
}

int rds_restore(sio_adapter *base, uint64_t rid, const char *nsp, const char *pid, const char *offset) {
  rda *a = (rda *)base;
  rds *x = a->xs;
  size_t olen = strlen(offset);
  if (!x || olen >= RSX_ID_MAX || !rsx_offset_valid(offset, olen) || strlen(nsp) >= 256) return WSIO_ENOTFOUND;
  if (!rlink_up(a->link)) return WSIO_ECLOSED;
  if (rsx_stream_name(&x->key, x->stream_name, x->nstreams, nsp) != 0) return WSIO_ENOMEM;
  rds_restore_ctx *c = calloc(1, sizeof *c + x->key.len + 1);
  if (!c) return WSIO_ENOMEM;
  memcpy(c->stream, x->key.data, x->key.len + 1);
  snprintf(c->nsp, sizeof c->nsp, "%s", nsp);
  if (rsx_offset_next(offset, c->from) != 0) {
    free(c);
    return WSIO_ENOTFOUND;
  }
  c->x = x;
  c->rid = rid;
  a->nctx++;
  x->restores++;
  x->busy++;
  c->waiting = 1; /* held while sending: a reply that comes at once does not end it under us */
  buf key = {0};
  int sent = 0;
  if (buf_append(&key, x->session_prefix, strlen(x->session_prefix)) == 0 && buf_append(&key, pid, strlen(pid)) == 0) {
    const char *argv[2] = {"GETDEL", (const char *)key.data};
    size_t lens[2] = {6, key.len};
    c->waiting++;
    if (rlink_command(a->link, argv[1], lens[1], got_session, c, 2, argv, lens) == 0) sent++;
    else c->waiting--, c->failed = 1;
  }
  const char *argv[4] = {"XRANGE", c->stream, offset, offset};
  size_t lens[4] = {6, strlen(c->stream), olen, olen};
  c->waiting++;
  if (!c->failed && rlink_command(a->link, c->stream, lens[1], got_offset, c, 4, argv, lens) == 0) sent++;
  else c->waiting--, c->failed = 1;
  buf_free(&key);
  c->waiting--;
  int rc = 0;
  if (!sent) {
    c->done = 1;
    end(c);
    rc = WSIO_ECLOSED;
  } else {
    step(c);
  }
  x->busy--;
  return rc;
}
