/*
 * fuzz_adapter — what the Redis adapter takes from Redis: message bodies from peers, through the three
 * protocols' inbound paths, stream entries and session records (the streams protocol), and the msgpack
 * codec on its own.
 *
 * The same body also goes through the Redis Cluster parsers (CLUSTER SLOTS replies, -MOVED/-ASK errors,
 * hash slots), a sentinel's master address, and the Redis URL parser.
 *
 * Input: byte 0 picks the path (bit 0: classic or sharded adapter; bits 1-2: the channel the message comes
 * on: broadcast, a room's broadcast, request, response), the rest is the message body. With bit 3 set the
 * body goes to the streams adapter instead (bits 1-2: the body as RESP, read as a stream entry; the data
 * field of a broadcast entry; the data field of an entry of type byte 0 >> 4; a session record, decoded).
 * Every input also goes through mpk_to_json, whose output must be valid JSON whose placeholders name the
 * attachments found; packing that JSON back and decoding again must give the same JSON and the same
 * attachments.
 *
 * The adapters run attached to a real io (no listener; Redis is never reached, the
 * adapter starts degraded: it keeps trying a closed loopback port), so the peers' operations are applied
 * to sio for real. The loops run between inputs, so timeouts fire as they would.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/redis_cluster.h"
#include "adapter/redis_internal.h"
#include "adapter/redis_streams.h"
#include "wsio.h"

#define CHECK(x)                \
  do {                          \
    if (!(x)) __builtin_trap(); \
  } while (0)

static rda *adapters[3];
static uv_loop_t *loops[3];

static void setup(void) {
  for (int i = 0; i < 3; i++) {
    wsio_server_config sc = {.log_level = 1};
    wsio_server *s = wsio_server_new(&sc);
    wsio_io_config ic = {.recovery_ms = i == 2 ? 60000 : 0}; /* streams: broadcasts get their entries' ids */
    wsio_io *io = wsio_io_new(s, &ic);
    CHECK(io);
    wsio_io_of(io, "/chat");
    wsio_redis_config rc = {.url = "redis://127.0.0.1:1", .sharded = i == 1, .streams = i == 2, .degraded_start = 1};
    CHECK(wsio_io_redis(io, &rc) == 0);
    adapters[i] = (rda *)sio_adapter_of(io);
    loops[i] = wsio_server_loop(s);
    /* A request of this node in flight, so that answers to it are followed too. */
    rda_req *r = calloc(1, sizeof *r);
    strcpy(r->id, "req1");
    r->id_len = 4;
    r->rid = 12345;
    r->kind = RDA_REQ_ACK;
    r->expected = 5;
    r->due = UINT64_MAX;
    map_put(&adapters[i]->reqs, r->id, r->id_len, r);
    r->next = adapters[i]->rhead;
    adapters[i]->rhead = r;
  }
}

static void check_codec(const uint8_t *p, size_t n) {
  buf j1 = {0}, mp = {0}, j2 = {0};
  mpk_atts a1 = {0}, a2 = {0};
  if (mpk_to_json(p, n, NULL, &j1, &a1) == 0) {
    sio_json_span v;
    CHECK(sio_json_validate((const char *)j1.data, j1.len, SIO_JSON_DEPTH_MAX, &v) == 0);
    sio_json_ph_iter it;
    sio_json_ph_init(&it, &v, a1.n);
    int rc;
    size_t count = 0;
    while ((rc = sio_json_ph_next(&it, NULL, NULL)) == 1) count++;
    /* a peer's own {"_placeholder":true,...} maps may add more, never fewer */
    CHECK(rc == 0 || rc == WSIO_EPROTO);
    if (rc == 0) {
      CHECK(count >= a1.n);
      mpk_writer w;
      mpk_writer_init(&w, &mp);
      if (mpk_pack_json(&w, &v, a1.v, a1.n) == 0) {
        /* numbers may change form once (2^62 as a double becomes an integer); after that it is stable */
        CHECK(mpk_to_json(mp.data, mp.len, NULL, &j2, &a2) == 0);
        buf mp2 = {0}, j3 = {0};
        mpk_atts a3 = {0};
        mpk_writer w2;
        mpk_writer_init(&w2, &mp2);
        sio_json_span v2;
        CHECK(sio_json_validate((const char *)j2.data, j2.len, SIO_JSON_DEPTH_MAX, &v2) == 0);
        CHECK(mpk_pack_json(&w2, &v2, a2.v, a2.n) == 0);
        CHECK(mpk_to_json(mp2.data, mp2.len, NULL, &j3, &a3) == 0);
        CHECK(j3.len == j2.len && memcmp(j3.data, j2.data, j2.len) == 0);
        CHECK(a3.n == a2.n && a2.n == a1.n);
        for (size_t i = 0; i < a1.n; i++)
          CHECK(a1.v[i].len == a3.v[i].len && memcmp(a1.v[i].p, a3.v[i].p, a1.v[i].len) == 0);
        buf_free(&mp2);
        buf_free(&j3);
        mpk_atts_free(&a3);
      }
    }
  }
  buf_free(&j1);
  buf_free(&mp);
  buf_free(&j2);
  mpk_atts_free(&a1);
  mpk_atts_free(&a2);
}

static redisReply *str_reply(const char *s, size_t n) {
  redisReply *r = calloc(1, sizeof *r);
  r->type = REDIS_REPLY_STRING;
  r->str = (char *)s;
  r->len = n;
  return r;
}

/* The cluster parsers on what a node could answer: the body as RESP (a CLUSTER SLOTS reply, every range
 * inside 0..16383 and a port in range), and as an error's text (-MOVED / -ASK). */
/* A sentinel's answer (host and port split at the first space) and the input as a Redis URL. */
static void check_sentinel(const uint8_t *p, size_t n) {
  const uint8_t *sp = memchr(p, ' ', n);
  size_t hl = sp ? (size_t)(sp - p) : n;
  redisReply h = {.type = REDIS_REPLY_STRING, .str = (char *)p, .len = hl};
  char port_s[32];
  size_t pl = sp ? n - hl - 1 : 0;
  if (pl >= sizeof port_s) pl = sizeof port_s - 1;
  if (pl) memcpy(port_s, sp + 1, pl);
  port_s[pl] = 0;
  redisReply pt = {.type = REDIS_REPLY_STRING, .str = port_s, .len = pl};
  redisReply *two[2] = {&h, &pt};
  redisReply arr = {.type = REDIS_REPLY_ARRAY, .elements = 2, .element = two};
  char host[64];
  int port = 0;
  if (redis_sentinel_reply(&arr, host, sizeof host, &port) == 0)
    CHECK(port > 0 && port <= 65535 && strlen(host) == hl && hl > 0 && hl < sizeof host);
  char *url = malloc(n + 1);
  if (!url) return;
  memcpy(url, p, n);
  url[n] = 0;
  redis_url u, c;
  if (redis_url_parse(url, &u) == 0) {
    CHECK(u.master ? u.nsentinels >= 1 && u.nsentinels <= REDIS_MAX_SENTINELS && !u.host : u.host != NULL);
    for (size_t i = 0; i < u.nsentinels; i++) CHECK(u.sentinels[i].port > 0 && u.sentinels[i].port <= 65535);
    CHECK(redis_url_copy(&c, &u) == 0);
    CHECK(c.nsentinels == u.nsentinels && !!c.master == !!u.master && c.db == u.db);
    redis_url_free(&c);
    redis_url_free(&u);
  }
  free(url);
}

static void check_cluster(const uint8_t *p, size_t n) {
  unsigned slot;
  const char *host;
  size_t hlen;
  int port;
  if (rcl_redirect_parse((const char *)p, n, &slot, &host, &hlen, &port))
    CHECK(slot < RCL_SLOTS && port > 0 && port <= 65535 && host >= (const char *)p &&
          host + hlen <= (const char *)p + n);
  redisReader *rd = redisReaderCreate();
  void *r = NULL;
  if (rd && redisReaderFeed(rd, (const char *)p, n) == REDIS_OK && redisReaderGetReply(rd, &r) == REDIS_OK && r) {
    rcl_range g[16];
    int k = rcl_slots_parse(r, g, 16);
    for (int i = 0; i < k; i++) CHECK(g[i].start <= g[i].end && g[i].end < RCL_SLOTS && g[i].port > 0);
    freeReplyObject(r);
  }
  if (rd) redisReaderFree(rd);
  CHECK(rcl_keyslot((const char *)p, n) < RCL_SLOTS);
}

/* The streams protocol: an entry (RESP, or the body as a data field) or a session record. */
static void check_streams(int path, unsigned type, const uint8_t *p, size_t n) {
  rda *a = adapters[2];
  if (path == 0) {
    redisReader *rd = redisReaderCreate();
    void *r = NULL;
    if (rd && redisReaderFeed(rd, (const char *)p, n) == REDIS_OK && redisReaderGetReply(rd, &r) == REDIS_OK && r) {
      rsx_entry e;
      if (rsx_entry_read(r, &e) == 0) CHECK(e.id && rsx_offset_valid(e.id, e.id_len));
      rds_feed_entry(a, r);
      freeReplyObject(r);
    }
    if (rd) redisReaderFree(rd);
  } else if (path < 3) {
    char t[8];
    snprintf(t, sizeof t, "%u", path == 1 ? 3u : type);
    redisReply *kv[8] = {str_reply("uid", 3), str_reply("peer", 4), str_reply("nsp", 3),
                         str_reply(type & 1 ? "/chat" : "/", type & 1 ? 5 : 1), str_reply("type", 4),
                         str_reply(t, strlen(t)), str_reply("data", 4), str_reply((const char *)p, n)};
    redisReply fields = {.type = REDIS_REPLY_ARRAY, .elements = 8, .element = kv};
    redisReply *id = str_reply("1700000000000-1", 15);
    redisReply *two[2] = {id, &fields};
    redisReply e = {.type = REDIS_REPLY_ARRAY, .elements = 2, .element = two};
    rds_feed_entry(a, &e);
    for (size_t i = 0; i < 8; i++) free(kv[i]);
    free(id);
  } else {
    rsx_session s;
    if (rsx_session_decode((const char *)p, n, &s) == 0) {
      CHECK(s.sid && s.nrooms <= RSX_SESSION_ROOMS);
      for (size_t i = 0; i < s.nrooms; i++) CHECK(s.rooms[i] != NULL);
      if (s.data_json) CHECK(sio_json_validate(s.data_json, strlen(s.data_json), SIO_JSON_DEPTH_MAX, NULL) == 0);
    }
    rsx_session_free(&s);
  }
  uv_run(loops[2], UV_RUN_NOWAIT);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!adapters[0]) setup();
  if (size < 1) return 0;
  check_codec(data + 1, size - 1);
  if (data[0] & 8) {
    check_streams((data[0] >> 1) & 3, data[0] >> 4, data + 1, size - 1);
    return 0;
  }
  check_cluster(data + 1, size - 1);
  check_sentinel(data + 1, size - 1);
  int sharded = data[0] & 1, path = (data[0] >> 1) & 3;
  rda *a = adapters[sharded];
  char ch[128];
  const char *kind;
  if (sharded) {
    kind = "smessage";
    static const char *const tails[4] = {"", "r1#", "", "%s#"};
    char tail[64];
    snprintf(tail, sizeof tail, tails[path], a->uid);
    snprintf(ch, sizeof ch, "socket.io#%s#%s", path == 2 ? "/chat" : "/", tail);
  } else if (path < 2) {
    kind = "pmessage";
    snprintf(ch, sizeof ch, "socket.io#/#%s", path ? "r1#" : "");
  } else {
    kind = "message";
    snprintf(ch, sizeof ch, "socket.io-%s#/#", path == 2 ? "request" : "response");
  }
  /* redisReply owns nothing here: the strings point into the input and the stack */
  redisReply *el[4];
  size_t n = 0;
  el[n++] = str_reply(kind, strlen(kind));
  if (!strcmp(kind, "pmessage")) el[n++] = str_reply("socket.io#/#*", 13);
  el[n++] = str_reply(ch, strlen(ch));
  el[n++] = str_reply((const char *)data + 1, size - 1);
  redisReply top = {.type = REDIS_REPLY_ARRAY, .elements = n, .element = el};
  rda_feed(a, &top);
  for (size_t i = 0; i < n; i++) free(el[i]);
  /* Timers due (sio's request timeouts, reconnection attempts to a closed loopback port) run now. */
  uv_run(loops[sharded], UV_RUN_NOWAIT);
  return 0;
}
