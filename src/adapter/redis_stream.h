/*
 * rsx — the pure parts of @socket.io/redis-streams-adapter 0.3's format, sans-I/O: stream names, stream
 * entries, offsets, session records. redis_streams.c does the I/O.
 *
 * An entry (XADD <stream> MAXLEN ~ <maxLen> * ...) has the fields uid, nsp, type and data, in that order:
 * uid the node's id, nsp the namespace, type the ClusterAdapter message type in decimal ("3"), data the
 * message's data as JSON text, or, when it holds binaries, the base64 of its msgpack (Buffers as bins).
 * A reader takes data that starts with '{' as JSON and anything else as base64 msgpack, as the package does.
 *
 * A session (SET <sessionKeyPrefix><pid> <value> PX <window>) is the base64 of the msgpack map
 * {sid, pid, rooms, data}: rooms as socket.rooms, the socket's own id first; data as socket.data.
 *
 * Everything read here comes from Redis and is untrusted: lengths are checked, strings must be UTF-8 without
 * NUL, sizes are bounded by the caller's limits (RSX_*), and a failure is WSIO_EPROTO, never a crash.
 */
#ifndef WSIO_ADAPTER_REDIS_STREAM_H
#define WSIO_ADAPTER_REDIS_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "sio/adapter.h"
#include "sio/msgpack.h"
#include "util/buf.h"

/* An entry's data past this many bytes is refused (a broadcast that large has no business in a stream). */
#define RSX_DATA_MAX ((size_t)64 << 20)
/* Stream ids: "<ms>-<seq>", two 64-bit decimals. */
#define RSX_ID_MAX 48

/* The stream of namespace nsp: name itself when count is 1, else "name-i" with i the namespace's Java-style
 * string hash (over UTF-16 code units, 32-bit) modulo count as JavaScript computes it, negative when the
 * hash is. Written NUL-terminated into out (reset). Returns 0 or WSIO_ENOMEM. */
int rsx_stream_name(buf *out, const char *name, unsigned count, const char *nsp);

/* The fields of one entry, views into the reply (NULL and 0 when a field is absent). */
typedef struct rsx_entry {
  const char *id, *uid, *nsp, *type, *data;
  size_t id_len, uid_len, nsp_len, type_len, data_len;
} rsx_entry;

/* Reads an entry of an XREAD or XRANGE reply: [id, [field, value, ...]]. Returns 0, or WSIO_EPROTO when it
 * is not one (wrong types, an odd field count, an id that is not "<ms>-<seq>"); its id is still set when it
 * could be read, so that a reader can step past it. Other fields are ignored; a repeated one keeps its
 * last value. */
int rsx_entry_read(const redisReply *r, rsx_entry *e);

/* The message type of an entry's type field as parseInt reads it (leading decimal digits after optional
 * blanks); -1 when there are none. */
long long rsx_type(const char *p, size_t n);

/* An entry's data as JSON into json (reset): the text when it starts with '{' (validated), else base64 of
 * msgpack converted (bin holds the decoded bytes; atts, reset, views into bin for its bins). Sets *out to
 * the value. Returns 0 or WSIO_EPROTO (also past RSX_DATA_MAX). */
int rsx_data_decode(const char *p, size_t n, buf *json, buf *bin, mpk_atts *atts, sio_json_span *out);

/* An entry's data field for the JSON object data (and the attachments its placeholders name): the JSON
 * as it is without attachments, else base64 of its msgpack (tmp: scratch). Into out (reset). Returns 0,
 * WSIO_EPROTO or WSIO_ENOMEM. */
int rsx_data_encode(const char *json, size_t len, const sio_bin *atts, size_t natts, buf *tmp, buf *out);

/* 1 when s[0..n) is a stream id "<ms>-<seq>" (the only offsets the package restores from). */
int rsx_offset_valid(const char *s, size_t n);
/* The id right after id[0..n) (seq + 1), NUL-terminated into out[RSX_ID_MAX]: the start of an XRANGE that
 * leaves id out on any Redis version, as the package's nextOffset. Returns 0, or WSIO_EPROTO when id is not
 * one. rsx_offset_next takes a NUL-terminated id. */
int rsx_offset_next_n(const char *id, size_t n, char *out);
static inline int rsx_offset_next(const char *id, char *out) { return rsx_offset_next_n(id, strlen(id), out); }

/* A session's value for SET: base64 of msgpack {sid, pid, rooms: [sid, ...rooms], data} (data "{}" when
 * unset, socket.io's default). Into out (reset; tmp: scratch). Returns 0, WSIO_EPROTO (data is not JSON) or
 * WSIO_ENOMEM. */
int rsx_session_encode(const sio_session_info *s, buf *tmp, buf *out);

/* A session read back. Strings NUL-terminated in store; rooms are socket.rooms as saved, its own id
 * included, at most RSX_SESSION_ROOMS of them (more: refused); data the JSON of socket.data. */
#define RSX_SESSION_ROOMS 10000
typedef struct rsx_session {
  const char *sid;
  const char **rooms;
  size_t nrooms;
  const char *data_json;
  buf store;
  buf json, bin;
  mpk_atts atts;
} rsx_session;

/* Decodes a session value (GET's answer). Returns 0, WSIO_EPROTO or WSIO_ENOMEM. rsx_session_free frees
 * what it holds (also after a failure). */
int rsx_session_decode(const char *p, size_t n, rsx_session *s);
void rsx_session_free(rsx_session *s);

/* Whether a broadcast with these opts ({rooms, except}; NULL: none) was meant for a socket in rooms (its
 * own id among them), as the package decides for missed packets: no rooms or one of them shared, and none
 * of the except rooms. */
int rsx_packet_for(const sio_json_span *opts, const char *const *rooms, size_t nrooms);

#endif
