/* The Admin UI's pure parts: aggregated event buckets, dates, and a socket as the dashboard gets it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sio/admin.h"
#include "sio/json.h"

/* ---- aggregated events ---- */

static const char *const type_names[SIO_ADMIN_EVENT_TYPES] = {
    "rawConnection", "rawDisconnection", "packetsIn", "packetsOut", "bytesIn", "bytesOut",
};

static int bucket_is(const sio_admin_bucket *b, int type, const char *sub) {
  return b->type == type && strncmp(b->sub, sub, SIO_ADMIN_SUBTYPE_MAX - 1) == 0;
}

void sio_admin_events_push(sio_admin_events *e, int type, const char *sub, uint64_t count, int64_t now_ms) {
  if (type < 0 || type >= SIO_ADMIN_EVENT_TYPES || !count) return;
  if (!sub) sub = "";
  int64_t ts = now_ms - now_ms % 1000;
  /* The newest first: a bucket of this second is near the end. */
  for (size_t i = e->n; i-- > 0;) {
    sio_admin_bucket *b = &e->v[i];
    if (b->timestamp == ts && bucket_is(b, type, sub)) {
      b->count += count;
      return;
    }
  }
  if (e->n == SIO_ADMIN_BUCKETS) {
    for (size_t i = e->n; i-- > 0;) {
      if (bucket_is(&e->v[i], type, sub)) {
        e->v[i].count += count;
        return;
      }
    }
    return;
  }
  sio_admin_bucket *b = &e->v[e->n++];
  b->timestamp = ts;
  b->type = type;
  b->count = count;
  snprintf(b->sub, sizeof b->sub, "%s", sub);
}

static int put_cstr(buf *b, const char *s) { return sio_json_write_string_lossy(b, s, strlen(s)); }
static int put(buf *b, const char *s) { return buf_append(b, s, strlen(s)); }

int sio_admin_events_json(sio_admin_events *e, buf *out) {
  int rc = buf_append(out, "[", 1);
  for (size_t i = 0; rc == 0 && i < e->n; i++) {
    const sio_admin_bucket *b = &e->v[i];
    char line[96];
    snprintf(line, sizeof line, "%s{\"timestamp\":%lld,\"type\":\"%s\"", i ? "," : "", (long long)b->timestamp,
             type_names[b->type]);
    rc = put(out, line);
    if (rc == 0 && b->sub[0]) {
      rc = put(out, ",\"subType\":");
      if (rc == 0) rc = put_cstr(out, b->sub);
    }
    snprintf(line, sizeof line, ",\"count\":%llu}", (unsigned long long)b->count);
    if (rc == 0) rc = put(out, line);
  }
  if (rc == 0) rc = buf_append(out, "]", 1);
  e->n = 0;
  return rc;
}

/* ---- dates ---- */

size_t sio_admin_date(char *out, int64_t ms) {
  time_t secs = (time_t)(ms / 1000);
  struct tm tm;
  if (ms < 0 || !gmtime_r(&secs, &tm)) return (size_t)snprintf(out, SIO_ADMIN_DATE_LEN, "null");
  char day[24];
  strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
  return (size_t)snprintf(out, SIO_ADMIN_DATE_LEN, "\"%s.%03dZ\"", day, (int)(ms % 1000));
}

/* ---- a socket ---- */

static int span_put(buf *b, const sio_json_span *v) { return buf_append(b, v->p, v->len); }

/* A member of obj copied as it is, as "key":value (with a comma before unless first), when present. */
static int member_put(buf *b, const sio_json_span *obj, const char *key, int *first) {
  sio_json_span v;
  if (!sio_json_object_find(obj, key, strlen(key), &v)) return 0;
  int rc = *first ? 0 : buf_append(b, ",", 1);
  *first = 0;
  if (rc == 0) rc = put_cstr(b, key);
  if (rc == 0) rc = buf_append(b, ":", 1);
  return rc ? rc : span_put(b, &v);
}

/* handshake.address, as serialize() picks it: a proxy's header when it is a non-empty string (JavaScript's
 * truthiness), else the peer. */
static int address_of(const sio_json_span *hs, sio_json_span *out) {
  sio_json_span headers, v;
  static const char *const names[] = {"cf-connecting-ip", "x-forwarded-for"};
  if (sio_json_object_find(hs, "headers", 7, &headers) && headers.kind == SIO_JSON_OBJECT) {
    for (size_t i = 0; i < 2; i++) {
      if (sio_json_object_find(&headers, names[i], strlen(names[i]), &v) && v.kind == SIO_JSON_STRING && v.len > 2) {
        *out = v;
        return 1;
      }
    }
  }
  return sio_json_object_find(hs, "address", 7, out);
}

static int parse_object(const char *text, sio_json_span *out) {
  return text && sio_json_validate(text, strlen(text), SIO_JSON_DEPTH_MAX, out) == 0 && out->kind == SIO_JSON_OBJECT;
}

int sio_admin_socket_json(buf *out, const sio_admin_socket *in) {
  sio_json_span data = {0}, hs = {0}, admin = {0};
  int have_data = parse_object(in->data_json, &data);
  int have_hs = parse_object(in->handshake_json, &hs);
  if (in->handshake_json && !have_hs) return WSIO_EINVAL;
  int have_admin = have_data && sio_json_object_find(&data, "_admin", 6, &admin) && admin.kind == SIO_JSON_OBJECT;
  size_t start = out->len;
  int rc = put(out, "{\"id\":");
  if (rc == 0) rc = put_cstr(out, in->id);
  /* clientId and transport: ours, or what the socket's server put in data._admin. */
  const char *keys[2] = {"clientId", "transport"};
  const char *mine[2] = {in->client_id, in->transport};
  for (int k = 0; rc == 0 && k < 2; k++) {
    sio_json_span v;
    if (mine[k]) {
      rc = buf_append(out, ",", 1);
      if (rc == 0) rc = put_cstr(out, keys[k]);
      if (rc == 0) rc = buf_append(out, ":", 1);
      if (rc == 0) rc = put_cstr(out, mine[k]);
    } else if (have_admin && sio_json_object_find(&admin, keys[k], strlen(keys[k]), &v)) {
      rc = buf_append(out, ",", 1);
      if (rc == 0) rc = put_cstr(out, keys[k]);
      if (rc == 0) rc = buf_append(out, ":", 1);
      if (rc == 0) rc = span_put(out, &v);
    }
  }
  if (rc == 0) rc = put(out, ",\"nsp\":");
  if (rc == 0) rc = put_cstr(out, in->nsp);
  /* data without _admin: the members copied as they are. */
  if (rc == 0) rc = put(out, ",\"data\":{");
  if (have_data) {
    sio_json_iter it;
    sio_json_span key, val;
    int first = 1;
    sio_json_iter_init(&it, &data);
    while (rc == 0 && sio_json_object_next(&it, &key, &val)) {
      if (sio_json_string_equals(&key, "_admin", 6)) continue;
      if (!first) rc = buf_append(out, ",", 1);
      first = 0;
      if (rc == 0) rc = span_put(out, &key);
      if (rc == 0) rc = buf_append(out, ":", 1);
      if (rc == 0) rc = span_put(out, &val);
    }
  }
  if (rc == 0) rc = put(out, "},\"handshake\":{");
  if (have_hs) {
    int first = 1;
    sio_json_span addr;
    if (address_of(&hs, &addr)) {
      first = 0;
      rc = put(out, "\"address\":");
      if (rc == 0) rc = span_put(out, &addr);
    }
    static const char *const fields[] = {"headers", "query", "issued", "secure", "time", "url", "xdomain"};
    for (size_t i = 0; rc == 0 && i < sizeof fields / sizeof fields[0]; i++) rc = member_put(out, &hs, fields[i], &first);
  }
  if (rc == 0) rc = put(out, "},\"rooms\":[");
  for (size_t i = 0; rc == 0 && i < in->nrooms; i++) {
    if (i) rc = buf_append(out, ",", 1);
    if (rc == 0) rc = put_cstr(out, in->rooms[i]);
  }
  if (rc == 0) rc = put(out, "]}");
  if (rc) out->len = start;
  return rc;
}
