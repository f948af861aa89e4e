/* Internals of the Socket.IO server (src/sio), shared by its files only. */
#ifndef WSIO_SIO_INTERNAL_H
#define WSIO_SIO_INTERNAL_H

#include <uv.h>

#include "eio/server.h"
#include "net/iplimit.h"
#include "sio/adapter.h"
#include "sio/admin.h"
#include "sio/packet.h"
#include "sio/parser.h"
#include "util/map.h"
#include "wsio.h"

#define SIO_MAX_ARGS_STACK 16
#define SIO_MAX_MIDDLEWARES 16

typedef struct sio_handler {
  struct sio_handler *next;
  wsio_event_cb cb;
  void *ud;
  size_t event_len;          /* 0 in an onAny list */
  char event[];
} sio_handler;

/* An event middleware (use.c) with its argument. */
typedef struct sio_event_mw {
  wsio_event_middleware fn;
  void *ud;
} sio_event_mw;

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
  wsio_room_cb on_room;      /* the adapter's room events; NULL: none */
  void *on_room_ud;
  struct { wsio_middleware fn; void *ud; } mw[SIO_MAX_MIDDLEWARES];
  unsigned nmw;
  sio_handler *handlers;     /* wsio_nsp_on */
  sio_handler *any;          /* wsio_nsp_on_any */
  sio_handler *any_out;      /* wsio_nsp_on_any_outgoing */
  sio_event_mw emw[SIO_MAX_MIDDLEWARES]; /* wsio_nsp_use_events */
  unsigned nemw;
  wsio_socket_error_cb on_error;
  void *on_error_ud;
  wsio_socket **sockets;     /* connected sockets, dense; s->nsp_index */
  size_t nsockets, cap;
  map by_id;                 /* socket id -> socket */
  map rooms;                 /* room name -> sio_room */
  wsio_nsp *next_dynamic;
  struct sio_server_handler *server_handlers; /* wsio_nsp_on_server_side (cluster.c) */
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
  net_bucket rate;           /* packets received (wsio_io_config.packets_per_second) */
  uint8_t v3;                /* Socket.IO protocol v4 over Engine.IO v3 (socket.io-client 2.x) */
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

/* What a socket has only once it asks for it (socket.use, socket.on("error"), kept events): most sockets
 * never do, and an idle socket stays small. */
typedef struct sio_socket_ext {
  sio_event_mw mw[SIO_MAX_MIDDLEWARES];
  unsigned nmw;
  wsio_socket_error_cb on_error;
  void *on_error_ud;
  wsio_event_next *kept;     /* kept events, newest first */
  size_t nkept;
  sio_handler *any_out;      /* wsio_socket_on_any_outgoing */
} sio_socket_ext;

/* The next of an event middleware: on the stack while the middleware runs, on the heap once kept. */
struct wsio_event_next {
  wsio_socket *s;            /* NULL once the socket is gone */
  unsigned index;            /* the middleware that holds it, over the namespace's then the socket's */
  uint8_t state;             /* SIO_EVN_* */
  uint8_t kept;              /* a heap copy made by wsio_event_next_keep */
  const wsio_args *args;     /* borrowed; kept: owned (one allocation, sio_args_copy) */
  wsio_ack *ack;             /* borrowed, NULL: none; kept: unused */
  int64_t ack_id;            /* kept: the ack the handlers get, -1: none */
  size_t name_len;           /* the event name's length for matching named handlers; 0: none match */
  wsio_event_next *kept_next, **kept_prev;
};
enum { SIO_EVN_PENDING = 0, SIO_EVN_OK, SIO_EVN_ERROR, SIO_EVN_KEPT };

struct wsio_socket {
  sio_client *client;
  wsio_nsp *nsp;
  char *id;                  /* id_buf, or for a v3 client in another namespace than "/" "<nsp>#<engine id>" */
  size_t id_len;
  char id_buf[EIO_SID_LEN + 1];
  size_t nsp_index;
  sio_membership *rooms;
  size_t nrooms, rooms_cap;
  sio_handler *handlers;     /* wsio_socket_on */
  sio_handler *any;          /* wsio_socket_on_any */
  wsio_disconnect_cb on_disconnecting, on_disconnect;
  void *disconnecting_ud, *disconnect_ud;
  sio_ack_wait *waits;       /* acks this socket owes us */
  size_t nwaits;
  wsio_ack *kept;            /* acks the application kept */
  wsio_next *next;           /* pending middleware step */
  sio_socket_ext *ext;       /* NULL until socket.use, socket.on("error") or a kept event */
  void *data;
  char *data_json;           /* socket.data as peers see it; NULL: "null" */
  char *auth;
  uint64_t epoch;            /* broadcast de-duplication */
  char pid[EIO_SID_LEN + 1]; /* connection state recovery: the private session id, "" when off */
  uint64_t seq;              /* the last retained broadcast queued to it */
  void *restore;             /* a recovered session waiting to be applied */
  uint8_t connected, recovered, closing;
  uint8_t migrated;          /* recovered from another worker: the client's offset may be that worker's */
  wsio_socket *client_next;
  wsio_socket *dead_next;
};

/* A broadcast with acks: its local waits, and with an adapter the answers of other servers (counted in
 * expected and got like local ones). A peer's broadcast (on_end set) hands each answer to the adapter
 * instead of collecting it. */
typedef struct sio_bcast_wait {
  wsio_io *io;
  wsio_bcast_ack_cb cb;
  void *ud;
  size_t expected, got;
  size_t waits;              /* references (local waits, the caller, the cluster request): freed at 0 */
  wsio_args **responses;
  size_t cap;
  uint64_t rid;              /* its entry in the cluster request table; 0: none */
  int peers_pending;         /* other servers may still report clients (until sio_cluster_done) */
  int done;
  sio_cluster_reply_fn on_reply;
  sio_cluster_end_fn on_end;
  void *ctx;
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

/* Namespaces matchers may create (io.of(regex)): each lives as long as the io, and clients choose the
 * names, so their number is capped. */
#define SIO_MAX_DYNAMIC_DEFAULT 10000

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
  size_t dynamic_children, max_dynamic; /* namespaces made by matchers, and how many may be */
  int dynamic_full_told;     /* the cap was logged once */
  wsio_allow_request_cb allow; /* allowRequest; NULL: none */
  wsio_connection_error_cb on_error; /* connection_error; NULL: none */
  void *on_error_ud;
  void *allow_ud;
  wsio_headers_cb on_headers;  /* initial_headers / headers; NULL: none */
  void *headers_ud;
  int allow_eio3;            /* wsio_io_set_allow_eio3; served only with the default parser */
  uint8_t any_out;           /* an onAnyOutgoing handler was registered: broadcasts keep their text at hand */
  uint8_t in_outgoing;       /* onAnyOutgoing handlers running: what they send is not reported */
  wsio_parser parser;        /* how packets travel; WSIO_PARSER_MSGPACK: the buffers below convert them */
  buf mp_out, mp_json, mp_text; /* mp_json: scratch of both directions (a decode's is done with by dispatch) */
  mpk_atts mp_atts;
  sio_recovery *rec;         /* NULL unless connection state recovery is on */
  sio_adapter *adapter;      /* the cluster adapter, NULL: this server alone */
  struct sio_cluster *cluster; /* requests awaiting other servers (cluster.c); NULL until the first */
  uint64_t events_in, events_out, volatile_dropped, parse_errors;
  uint64_t rate_closes, rate_dropped, rooms_refused, acks_refused; /* abuse limits */
  struct sio_admin *admin;   /* wsio_io_instrument (admin.c); NULL: no Admin UI */
};

/* Targets of a broadcast or sockets operation: a wsio_op, or a peer's sio_targets. */
typedef struct sio_sel {
  wsio_nsp *nsp;
  const char *const *rooms;
  size_t nrooms;
  const char *const *except;
  size_t nexcept;
  const wsio_socket *except_socket;
  unsigned flags;
  uint32_t timeout_ms;       /* acks: 0 for the io's ack_timeout_ms */
  const char *offset;        /* the recovery offset an adapter named (broadcast_offset); NULL: none */
} sio_sel;

/* Connection state recovery is kept by the adapter for every server (sio/adapter.h: broadcast_offset). */
static inline int sio_recovery_shared(const wsio_io *io) { return io->adapter && io->adapter->vt->broadcast_offset; }

/* io.c */
uint64_t sio_now(const wsio_io *io);
void sio_tick_arm(wsio_io *io);
/* Sends a text packet and its attachments to one socket's client. */
int sio_send(wsio_socket *s, const buf *text, const sio_bin *atts, size_t natts);
/* The same to a client: as they are with the default parser, as one msgpack message with the msgpack one.
 * Returns 0 or a negative code (nothing sent). */
int sio_client_send(sio_client *c, const char *text, size_t len, const sio_bin *atts, size_t natts);
/* One eio_msg holding a packet for every receiver of a broadcast (encoded as the io's parser wants), or
 * NULL on ENOMEM or a packet the parser cannot carry. */
eio_msg *sio_msg_new(wsio_io *io, const char *text, size_t len, const sio_bin *atts, size_t natts);
/* Encodes an EVENT/ACK from vals into io->scratch; *atts gets the binaries (borrowed from vals). */
int sio_encode_values(wsio_io *io, int type, const wsio_nsp *nsp, int64_t id, const char *event,
                      const wsio_value *vals, size_t n, sio_bin *atts, size_t *natts);
int sio_encode_json(wsio_io *io, int type, const wsio_nsp *nsp, int64_t id, const char *event, const char *json);
int sio_encode_args(wsio_io *io, int type, const wsio_nsp *nsp, int64_t id, const char *event, const wsio_args *a,
                    sio_bin *atts, size_t *natts);
wsio_nsp *sio_nsp_lookup(wsio_io *io, const char *name, size_t len);
/* A header's value in a "name\0value\0...\0" block (names lowercased; name any case), or NULL. */
const char *sio_header_find(const char *headers, const char *name);

/* socket.c */
wsio_socket *sio_socket_new(sio_client *c, wsio_nsp *nsp, const char *auth, size_t auth_len);
void sio_socket_start(wsio_socket *s);
/* Connects s now (after the middlewares, or directly for a recovered session). */
void sio_socket_connect(wsio_socket *s);
void sio_socket_event(wsio_socket *s, const sio_packet *pkt, const sio_bin *atts);
/* An EVENT packet's name, decoded into stack (cap bytes) or, when longer, a malloc'd *name the caller frees
 * (*name != stack). Returns its length (NUL-terminated too), WSIO_EPROTO or WSIO_ENOMEM. */
ssize_t sio_event_name(const sio_packet *pkt, char *stack, size_t cap, char **name);
/* query.c: q[0..n) as a JSON object appended to b, keys and values percent-decoded ('+' a space).
 * sio_query_json is handshake.query, as Node's querystring.parse reads it: a repeated key becomes an array,
 * bytes that are not UTF-8 become '?', at most 1000 pairs. sio_query_auth_json is a v3 client's namespace
 * query as its auth, as socket.io reads it (URLSearchParams entries into an object): a repeated key keeps
 * its last value, a pair that is not UTF-8 once decoded is left out, at most 64 pairs. Both return 0 or
 * WSIO_ENOMEM. */
int sio_query_json(buf *b, const char *q, size_t n);
int sio_query_auth_json(buf *b, const char *q, size_t n);

/* The event's named handlers (after onAny and the event middlewares); name_len 0: none. */
void sio_socket_dispatch(wsio_socket *s, const wsio_args *a, size_t name_len, wsio_ack *ack);
/* use.c: runs the event middlewares of s from the first, then dispatches; 1 if s has any (0: none ran). */
int sio_event_mw_run(wsio_socket *s, const wsio_args *a, size_t name_len, wsio_ack *ack);
/* use.c: at the socket's end, kept events let go of it; sio_socket_ext_free frees the rest. */
void sio_socket_ext_end(wsio_socket *s);
/* use.c: an EVENT packet (text, and its attachments) queued to s, for the onAnyOutgoing handlers. */
void sio_socket_outgoing(wsio_socket *s, const char *text, size_t len, const sio_bin *atts, size_t natts);
void sio_socket_ext_free(wsio_socket *s);
void sio_socket_ack_in(wsio_socket *s, const sio_packet *pkt, const sio_bin *atts);
/* Ends s: disconnecting, leave rooms, fail waits, disconnect, unlink, free later. notify: send DISCONNECT. */
void sio_socket_end(wsio_socket *s, const char *reason, int notify);
void sio_socket_free(wsio_socket *s);
void sio_handlers_free(sio_handler *h);
/* Appends a handler for event (NULL: an onAny list). Returns 0, WSIO_EINVAL or WSIO_ENOMEM. */
int sio_handler_add(sio_handler **list, const char *event, wsio_event_cb cb, void *ud);
void sio_wait_fire(sio_ack_wait *w, int err, const wsio_args *args);
int sio_room_add(wsio_socket *s, const char *room, size_t len);
void sio_room_remove(wsio_socket *s, const char *room, size_t len);
/* emit.c: a wait for a broadcast's ack (no callback of its own). NULL at the limit or on ENOMEM. */
sio_ack_wait *sio_wait_add(wsio_socket *s, int64_t id, uint32_t timeout_ms, sio_bcast_wait *b);
/* wsio_args views of a packet's arguments (out->event ""): in stack (SIO_MAX_ARGS_STACK entries), or for a
 * packet with more of them in *heap, which the caller frees (NULL when unused, also on error). */
int sio_args_build(const sio_packet *pkt, const sio_bin *atts, sio_arg *stack, sio_arg **heap, wsio_args *out);
wsio_args *sio_args_copy(const wsio_args *a);
/* Which of a->atts the top-level binary argument v is; a->natts when none. */
size_t sio_args_att_index(const wsio_args *a, const sio_arg *v);

/* broadcast.c */
void sio_sel_of_op(sio_sel *sel, const wsio_op *op);
/* Calls fn once per target (fn must not change rooms or disconnect). Returns the count. */
size_t sio_each(const sio_sel *sel, void (*fn)(wsio_socket *s, void *arg), void *arg);
/* Sends the packet in io->scratch (and atts) to every target; with b, each target gets a wait for id. With
 * recovery on (and no b) the packet is stamped and retained; io->scratch is given back unstamped. Returns
 * the number of sockets it was queued to or a negative code. */
int sio_fan_out(const sio_sel *sel, const sio_bin *atts, size_t natts, sio_bcast_wait *b, int64_t id);
/* wsio_op_emit of the EVENT packet already in io->scratch (and atts): the local part, then the adapter's. */
int sio_op_emit_scratch(const wsio_op *op, const sio_bin *atts, size_t natts);
/* A local wait of b ended: err 0 with the answer, or WSIO_ETIMEDOUT / WSIO_ECLOSED. Drops the wait's
 * reference. */
void sio_bcast_settle(sio_bcast_wait *b, int err, const wsio_args *args);
/* Adds an answer (copied). Returns 0 or WSIO_ENOMEM. */
int sio_bcast_add(sio_bcast_wait *b, const wsio_args *args);
/* Completes b when nothing more is awaited. */
void sio_bcast_check(sio_bcast_wait *b);
/* Completes b now (once): the callback, or on_end for a peer's broadcast; leaves the request table. */
void sio_bcast_finish(sio_bcast_wait *b, int err);
void sio_bcast_release(sio_bcast_wait *b);

/* cluster.c: this server's side of the adapter contract (sio/adapter.h) */
void sio_cluster_forward_broadcast(const wsio_op *op, const sio_bin *atts, size_t natts);
/* The same to an adapter's broadcast_offset, before the local part: 0 when the adapter does the local part
 * later, else (1, or a negative code) it is the caller's, at once. */
int sio_cluster_forward_broadcast_offset(const wsio_op *op, const sio_bin *atts, size_t natts);
/* Hands b's broadcast (in io->scratch) to the adapter, or leaves b local. */
void sio_cluster_forward_broadcast_ack(const wsio_op *op, sio_bcast_wait *b);
void sio_cluster_forward_sockets(const wsio_op *op, int what, const char *room, int close);
/* Registers a broadcast with acks (b gains a reference) due in timeout_ms; returns its rid, 0 on ENOMEM. */
uint64_t sio_cluster_request_bcast(wsio_io *io, sio_bcast_wait *b, uint32_t timeout_ms);
/* Makes a request due now (it ends at the next tick). */
void sio_cluster_request_expire(wsio_io *io, uint64_t rid);
/* adapter.c: namespace and room changes the adapter may want (vt->nsp_created, vt->room_changed). */
void sio_cluster_nsp_created(wsio_nsp *n);
void sio_cluster_room_changed(wsio_nsp *n, const char *room, int sid_room, int exists);
void sio_targets_of_op(const wsio_op *op, sio_targets *t, const char **except /* WSIO_OP_MAX_ROOMS + 1 */);
/* broadcast.c: gathers sockets into a growing array (an sio_each callback; arg is an sio_collect_ctx,
 * zeroed first). On allocation failure oom is set and the rest are left out; the caller frees v. */
typedef struct sio_collect_ctx {
  wsio_socket **v;
  size_t n, cap;
  int oom;
} sio_collect_ctx;
void sio_collect(wsio_socket *s, void *arg);
/* The local sockets a peer's targets name (*out to free). Returns the count or a negative code. */
int sio_cluster_collect(wsio_io *io, const sio_targets *t, wsio_socket ***out);
/* A socket as other servers see it (fetchSockets), built into reusable storage. */
typedef struct sio_socket_view {
  const char **rooms;
  size_t cap;
  buf hs;                    /* the handshake JSON, NUL-terminated */
  buf data;                  /* socket.data with the Admin UI's "_admin" (instrumented io), NUL-terminated */
} sio_socket_view;
int sio_socket_view_build(sio_socket_view *view, wsio_socket *s, sio_socket_info *out);
void sio_socket_view_free(sio_socket_view *view);
/* A peer's broadcast: one local client's answer goes to the adapter. */
void sio_cluster_reply_args(sio_bcast_wait *b, const wsio_args *args);
/* Removes a finished broadcast's request. */
void sio_cluster_request_drop(wsio_io *io, uint64_t rid);
/* From the io's tick: times requests out. Returns 1 while requests are pending. */
int sio_cluster_tick(wsio_io *io, uint64_t now);
/* The io is going: pending requests end with WSIO_ECLOSED, the adapter is freed. */
void sio_cluster_shutdown(wsio_io *io);
void sio_cluster_nsp_free(wsio_nsp *n);
#define SIO_CLUSTER_JOIN 0
#define SIO_CLUSTER_LEAVE 1
#define SIO_CLUSTER_DISCONNECT 2

/* recovery.c */
int sio_recovery_init(wsio_io *io);
void sio_recovery_free(wsio_io *io);
void sio_recovery_purge(wsio_io *io);
int sio_recovery_pending(const wsio_io *io);
uint64_t sio_recovery_stamp(wsio_io *io);
/* Appends offset as the last argument of the EVENT text packet in b. Returns 0, WSIO_EPROTO (not an
 * array's end) or WSIO_ENOMEM (b unchanged). */
int sio_recovery_stamp_text(buf *b, const char *offset);
uint64_t sio_recovery_current(const wsio_io *io);
void sio_recovery_store(wsio_io *io, const wsio_op *op, uint64_t seq, eio_msg *msg);
void sio_recovery_save(wsio_socket *s, const char *reason);
int sio_recovery_restore(wsio_socket *s, const char *auth, size_t auth_len);
void sio_recovery_apply(wsio_socket *s);
void sio_recovery_discard(wsio_socket *s);
void sio_recovery_resume(wsio_next *hold, const char *data, size_t len, int err);
/* cluster.c: asks the peers for the session pid through the adapter; hold (its socket waiting) is handed
 * to sio_recovery_resume exactly once: with the first packed answer, or when every peer said no, at the
 * timeout, or at shutdown. 0, or a negative code (then hold is untouched). */
int sio_cluster_request_restore(wsio_io *io, wsio_next *hold, const char *pid, const char *offset);

#endif
