/* Internals of the Socket.IO server (src/sio), shared by its files only. */
#ifndef WSIO_SIO_INTERNAL_H
#define WSIO_SIO_INTERNAL_H

#include <uv.h>

#include "eio/server.h"
#include "sio/packet.h"
#include "util/map.h"
#include "wsio.h"

#define SIO_MAX_ARGS_STACK 16
#define SIO_MAX_MIDDLEWARES 16

typedef struct sio_handler {
  struct sio_handler *next;
  wsio_event_cb cb;
  void *ud;
  size_t event_len;          /* 0 with event[0] == 0: any event */
  char event[];
} sio_handler;

typedef struct sio_room sio_room;

typedef struct sio_member {
  wsio_socket *s;
  size_t slot;               /* index of this room in s->rooms */
} sio_member;

struct sio_room {
  char *name;
  size_t len;
  sio_member *members;
  size_t n, cap;
};

typedef struct sio_membership {
  sio_room *room;
  size_t index;              /* position in room->members */
} sio_membership;

struct wsio_nsp {
  wsio_io *io;
  char *name;
  size_t name_len;
  wsio_nsp *parent;          /* dynamic namespaces: handlers and middlewares come from the parent */
  wsio_nsp_matcher match;
  void *match_ud;
  wsio_connection_cb on_conn;
  void *on_conn_ud;
  struct { wsio_middleware fn; void *ud; } mw[SIO_MAX_MIDDLEWARES];
  unsigned nmw;
  sio_handler *handlers;     /* wsio_nsp_on */
  wsio_socket **sockets;     /* connected sockets, dense; s->nsp_index */
  size_t nsockets, cap;
  map by_id;                 /* socket id -> socket */
  map rooms;                 /* room name -> sio_room */
  wsio_nsp *next_dynamic;
};

typedef struct sio_client {
  wsio_io *io;
  eio_socket *eio;
  wsio_socket *sockets;      /* one per joined namespace (and pending ones) */
  sio_packet_reasm *reasm;   /* while a binary packet collects its attachments */
  char *hs_block;            /* handshake strings and headers, one allocation */
  const char *headers;       /* "name\0value\0...\0": names lowercased */
  wsio_handshake hs;
  uint64_t connect_due;      /* 0 once a namespace was joined */
  struct sio_client *cnext, *cprev; /* io->connecting */
} sio_client;

typedef struct sio_ack_wait sio_ack_wait;
typedef struct sio_recovery sio_recovery;

struct wsio_ack {
  wsio_socket *s;            /* NULL once the socket is gone */
  int64_t id;
  uint8_t answered;
  uint8_t kept;
  struct wsio_ack *next_kept;
};

struct wsio_next {
  wsio_socket *s;            /* NULL once the socket is gone */
  unsigned index;            /* the middleware that holds it */
};

struct wsio_socket {
  sio_client *client;
  wsio_nsp *nsp;
  char id[EIO_SID_LEN + 1];
  size_t nsp_index;
  sio_membership *rooms;
  size_t nrooms, rooms_cap;
  sio_handler *handlers;
  wsio_disconnect_cb on_disconnecting, on_disconnect;
  void *disconnecting_ud, *disconnect_ud;
  sio_ack_wait *waits;       /* acks this socket owes us */
  size_t nwaits;
  wsio_ack *kept;            /* acks the application kept */
  wsio_next *next;           /* pending middleware step */
  void *data;
  char *auth;
  uint64_t epoch;            /* broadcast de-duplication */
  char pid[EIO_SID_LEN + 1]; /* connection state recovery: the private session id, "" when off */
  uint64_t seq;              /* the last retained broadcast queued to it */
  void *restore;             /* a recovered session waiting to be applied */
  uint8_t connected, recovered, closing;
  wsio_socket *client_next;
  wsio_socket *dead_next;
};

typedef struct sio_bcast_wait {
  wsio_bcast_ack_cb cb;
  void *ud;
  size_t expected, got;
  size_t waits;              /* waits still pointing here: freed at 0 */
  wsio_args **responses;
  int done;
} sio_bcast_wait;

struct sio_ack_wait {
  wsio_socket *s;
  int64_t id;
  uint64_t due;
  wsio_ack_cb cb;
  void *ud;
  sio_bcast_wait *bcast;
  sio_ack_wait *next, *prev; /* io->waits */
  sio_ack_wait *snext;       /* s->waits */
};

struct wsio_args {
  const char *event;
  size_t n;
  sio_arg *v;
  const sio_bin *atts;       /* every attachment of the packet, nested placeholders' included */
  size_t natts;
};

struct wsio_io {
  wsio_server *server;
  net_loop *loop;
  eio_server *eio;
  wsio_io_config cfg;
  char *path, *cors, *cookie, *client_dir;
  map nsps;
  wsio_nsp *main;
  wsio_nsp *dynamic;         /* parents with matchers */
  uv_timer_t tick;
  uv_check_t reap;
  sio_ack_wait *waits;
  sio_client *connecting, *connecting_tail;
  wsio_socket *dead;
  int64_t next_id;           /* ack ids, shared by every socket as socket.io does */
  uint64_t epoch;
  buf scratch;
  sio_packet_limits limits;
  sio_recovery *rec;         /* NULL unless connection state recovery is on */
  uint64_t events_in, events_out, volatile_dropped, parse_errors;
};

/* io.c */
uint64_t sio_now(const wsio_io *io);
void sio_tick_arm(wsio_io *io);
/* Sends a text packet and its attachments to one socket's client. */
int sio_send(wsio_socket *s, const buf *text, const sio_bin *atts, size_t natts);
/* Encodes an EVENT/ACK from vals into io->scratch; *atts gets the binaries (borrowed from vals). */
int sio_encode_values(wsio_io *io, int type, const wsio_nsp *nsp, int64_t id, const char *event,
                      const wsio_value *vals, size_t n, sio_bin *atts, size_t *natts);
int sio_encode_json(wsio_io *io, int type, const wsio_nsp *nsp, int64_t id, const char *event, const char *json);
int sio_encode_args(wsio_io *io, int type, const wsio_nsp *nsp, int64_t id, const char *event, const wsio_args *a,
                    sio_bin *atts, size_t *natts);
wsio_nsp *sio_nsp_lookup(wsio_io *io, const char *name, size_t len);

/* socket.c */
wsio_socket *sio_socket_new(sio_client *c, wsio_nsp *nsp, const char *auth, size_t auth_len);
void sio_socket_start(wsio_socket *s);
/* Connects s now (after the middlewares, or directly for a recovered session). */
void sio_socket_connect(wsio_socket *s);
void sio_socket_event(wsio_socket *s, const sio_packet *pkt, const sio_bin *atts);
void sio_socket_ack_in(wsio_socket *s, const sio_packet *pkt, const sio_bin *atts);
/* Ends s: disconnecting, leave rooms, fail waits, disconnect, unlink, free later. notify: send DISCONNECT. */
void sio_socket_end(wsio_socket *s, const char *reason, int notify);
void sio_socket_free(wsio_socket *s);
void sio_handlers_free(sio_handler *h);
void sio_wait_fire(sio_ack_wait *w, int err, const wsio_args *args);
int sio_room_add(wsio_socket *s, const char *room, size_t len);
void sio_room_remove(wsio_socket *s, const char *room, size_t len);
/* emit.c: a wait for a broadcast's ack (no callback of its own). NULL at the limit or on ENOMEM. */
sio_ack_wait *sio_wait_add(wsio_socket *s, int64_t id, uint32_t timeout_ms, sio_bcast_wait *b);
/* wsio_args views of a packet's arguments (up to cap), the event name decoded into name. */
int sio_args_build(const sio_packet *pkt, const sio_bin *atts, sio_arg *v, size_t cap, wsio_args *out);
wsio_args *sio_args_copy(const wsio_args *a);
/* Which of a->atts the top-level binary argument v is; a->natts when none. */
size_t sio_args_att_index(const wsio_args *a, const sio_arg *v);

/* recovery.c */
int sio_recovery_init(wsio_io *io);
void sio_recovery_free(wsio_io *io);
void sio_recovery_purge(wsio_io *io);
int sio_recovery_pending(const wsio_io *io);
uint64_t sio_recovery_stamp(wsio_io *io);
uint64_t sio_recovery_current(const wsio_io *io);
void sio_recovery_store(wsio_io *io, const wsio_op *op, uint64_t seq, eio_msg *msg);
void sio_recovery_save(wsio_socket *s, const char *reason);
int sio_recovery_restore(wsio_socket *s, const char *auth, size_t auth_len);
void sio_recovery_apply(wsio_socket *s);
void sio_recovery_discard(wsio_socket *s);

#endif
