/*
 * sio_admin — the Socket.IO Admin UI's server side (wsio_io_instrument), as npm @socket.io/admin-ui's
 * instrument() does it. admin.c reports, admin_actions.c acts, admin_auth.c checks logins and keeps sessions,
 * admin_json.c holds the pure parts (aggregated event buckets, dates, a socket as the dashboard sees it).
 *
 * The io calls the hooks below where socket.io emits what instrument() listens to; each caller tests
 * io->admin first, so an io without the Admin UI pays one branch. Hooks that report one socket or one event
 * (development mode) return at once in production mode.
 */
#ifndef WSIO_SIO_ADMIN_H
#define WSIO_SIO_ADMIN_H

#include <stddef.h>
#include <stdint.h>

#include "sio/packet.h"
#include "util/buf.h"
#include "wsio.h"

struct sio_client;
typedef struct sio_admin sio_admin;

/* ---- hooks (admin.c); all on the io's loop thread ---- */

/* Engine.IO sessions opened and closed (the aggregated rawConnection / rawDisconnection counts). */
void sio_admin_raw_open(wsio_io *io);
void sio_admin_raw_close(wsio_io *io, const char *reason);
/* A client's session moved to WebSocket: socket_updated for each of its sockets. */
void sio_admin_upgraded(struct sio_client *c);
/* s connected, before the namespace's connection handler runs: socket_connected. */
void sio_admin_connected(wsio_socket *s);
/* s is leaving (its rooms not yet left): socket_disconnected, before the room_left of its rooms. */
void sio_admin_disconnected(wsio_socket *s, const char *reason);
/* s joined (join 1) or left room: room_joined / room_left. */
void sio_admin_room(wsio_socket *s, int join, const char *room);
/* An event from s's client (before any handler): event_received. */
void sio_admin_event_in(wsio_socket *s, const sio_packet *pkt, const sio_bin *atts);
/* An EVENT packet queued to s (text as the clients get it, attachments after it): event_sent. */
void sio_admin_event_out(wsio_socket *s, const char *text, size_t len, const sio_bin *atts, size_t natts);
/* wsio_socket_set_data_json changed socket.data: socket_updated. */
void sio_admin_data_changed(wsio_socket *s);
/* socket.data as peers fetch it: the application's object with "_admin":{"clientId","transport"} first, as
 * instrument() keeps it there (other servers' dashboards read it from there). Appends to out. */
int sio_admin_peer_data(const wsio_socket *s, buf *out);
/* A dashboard's action (its event and arguments), applied (admin_actions.c). */
void sio_admin_action(wsio_io *io, const wsio_args *args);
/* The io is going (after its clients, before its handles close): stops reporting, frees what it can;
 * logins being checked on the thread pool finish later and free the rest. */
void sio_admin_free(wsio_io *io);

/* ---- aggregated events (admin_json.c): instrument()'s EventBuffer ---- */

enum {
  SIO_ADMIN_RAW_CONNECTION = 0,
  SIO_ADMIN_RAW_DISCONNECTION,
  SIO_ADMIN_PACKETS_IN,
  SIO_ADMIN_PACKETS_OUT,
  SIO_ADMIN_BYTES_IN,
  SIO_ADMIN_BYTES_OUT,
  SIO_ADMIN_EVENT_TYPES
};

/* One (second, type, subType) count. The subtype (a disconnection's reason) is copied, cut to fit. */
#define SIO_ADMIN_SUBTYPE_MAX 32
typedef struct sio_admin_bucket {
  int64_t timestamp;          /* ms since the epoch, truncated to the second */
  uint64_t count;
  int type;
  char sub[SIO_ADMIN_SUBTYPE_MAX]; /* "" when none */
} sio_admin_bucket;

/* Bounded: the buffer is emptied every stats interval; when it is full, counts go to the latest bucket of
 * the same type and subtype (or are dropped when there is none), so memory never grows. */
#define SIO_ADMIN_BUCKETS 512
typedef struct sio_admin_events {
  sio_admin_bucket v[SIO_ADMIN_BUCKETS];
  size_t n;
} sio_admin_events;

/* Adds count to the bucket of (now_ms's second, type, sub); sub may be NULL. */
void sio_admin_events_push(sio_admin_events *e, int type, const char *sub, uint64_t count, int64_t now_ms);
/* Appends the buckets as aggregatedEvents' JSON array ([{"timestamp","type","subType"?,"count"}, ...], in
 * the order they were made) and empties the buffer. Returns 0 or WSIO_ENOMEM. */
int sio_admin_events_json(sio_admin_events *e, buf *out);

/* ---- dates and sockets (admin_json.c) ---- */

/* ms since the epoch as JSON.stringify(new Date(ms)) writes it, with its quotes:
 * "2024-05-01T12:34:56.789Z". out has room for SIO_ADMIN_DATE_LEN bytes (NUL included). */
#define SIO_ADMIN_DATE_LEN 32
size_t sio_admin_date(char *out, int64_t ms);


/* A socket as the dashboard gets it (instrument()'s serialize): id, clientId, transport, nsp, data,
 * handshake (address, headers, query, issued, secure, time, url, xdomain; never auth, which may hold the
 * password), rooms. Inputs as fetchSockets gives them: handshake_json as wsio builds it, data_json the
 * socket.data text (possibly holding "_admin"). client_id and transport NULL: taken from data's "_admin"
 * (a socket of another server); still unknown, they are left out as JSON leaves out undefined. data that
 * is not an object becomes {}; "_admin" never shows. Appends to out; 0, WSIO_ENOMEM, or WSIO_EINVAL (an
 * input that is not JSON; out is then unchanged). */
typedef struct sio_admin_socket {
  const char *id;
  const char *client_id;
  const char *transport;
  const char *nsp;
  const char *data_json;
  const char *handshake_json;
  const char *const *rooms;
  size_t nrooms;
} sio_admin_socket;
int sio_admin_socket_json(buf *out, const sio_admin_socket *in);

/* ---- logins (admin_auth.c) ---- */

/* 1 when hash looks like a bcrypt hash: $2a$, $2b$ or $2y$, a cost of 04..31, 53 characters of bcrypt's
 * base64. */
int sio_admin_hash_valid(const char *hash);
/* 1 when password matches the bcrypt hash (libxcrypt's crypt_rn, compared in constant time). Blocking:
 * tens of milliseconds at the usual costs, so the io runs it on the thread pool. */
int sio_admin_password_check(const char *password, const char *hash);

/* The process's sessions: ids handed to dashboards that logged in, valid for 24 hours for the same
 * credentials (realm: a digest of username and hash), shared by every io of the process (the workers of
 * wsio_workers_run) under a mutex. At most SIO_ADMIN_SESSIONS; the oldest goes first. Thread-safe. */
#define SIO_ADMIN_SESSIONS 1024
#define SIO_ADMIN_SESSION_TTL_MS (24ull * 3600 * 1000)
#define SIO_ADMIN_SESSION_LEN 16
typedef struct sio_admin_realm {
  unsigned char digest[32];
} sio_admin_realm;
void sio_admin_realm_of(sio_admin_realm *r, const char *username, const char *hash);
/* Makes a session (16 hex digits from 8 random bytes, as instrument()'s) into id (17 bytes with the NUL).
 * Returns 0 or WSIO_EIO (no randomness). */
int sio_admin_session_new(const sio_admin_realm *r, char *id, uint64_t now_ms);
/* 1 when id (len bytes) is a live session of realm r. */
int sio_admin_session_valid(const sio_admin_realm *r, const char *id, size_t len, uint64_t now_ms);

#endif
