/*
 * sio_adapter — how a Socket.IO server reaches the other servers of its cluster (other processes through
 * Redis: src/adapter/redis*.c; the other threads of this process: src/adapter/workers.c).
 *
 * The split is socket.io's: the sio layer always does the local part itself, then hands the operation to
 * the io's adapter (if any) to carry to the peers; an adapter that receives an operation from a peer calls
 * the sio_cluster_* functions below to apply it locally. The sio layer knows nothing of Redis or threads.
 *
 * Packets travel as the Socket.IO text encoding the clients get ("2/chat,[\"ev\",1]",
 * "51-[\"ev\",{\"_placeholder\":true,\"num\":0}]") plus the binary attachments, always with the namespace
 * in the text when it is not "/". An adapter that speaks another format (msgpack objects on Redis)
 * converts at its edge.
 *
 * Threading: every function here runs on the io's loop thread. An adapter that receives on another thread
 * hands the message to the loop first.
 *
 * Requests that expect answers (broadcast with acks, fetchSockets, serverSideEmit with ack, serverCount)
 * carry a request id allocated by sio (sio_cluster_request_id); the sio layer owns the timeout: answers
 * that arrive after it (or for an unknown id) are ignored. The adapter reports each peer's answers and,
 * when it knows every peer has answered, sio_cluster_done() so the caller need not wait for the timeout.
 */
#ifndef WSIO_SIO_ADAPTER_H
#define WSIO_SIO_ADAPTER_H

#include <stddef.h>
#include <stdint.h>

#include "sio/packet.h"
#include "util/buf.h"
#include "wsio.h"

/* The targets of an operation, without pointers to local objects (a wsio_op as it crosses servers):
 * socket.broadcast becomes an except of the sender's own room (its id). Strings are NUL-terminated and
 * borrowed for the call. */
typedef struct sio_targets {
  const char *nsp;                  /* "/" or "/chat" */
  const char *const *rooms;         /* empty: the whole namespace */
  size_t nrooms;
  const char *const *except;
  size_t nexcept;
  unsigned flags;                   /* WSIO_OP_VOLATILE, WSIO_OP_NOCOMPRESS (WSIO_OP_LOCAL never travels) */
} sio_targets;

/* A socket as another server sees it (fetchSockets). Strings borrowed for the call. */
typedef struct sio_socket_info {
  const char *id;
  const char *const *rooms;         /* the socket's id first, as socket.rooms */
  size_t nrooms;
  const char *handshake_json;       /* {"headers":{...},"time":"...","address":"...","xdomain":false,
                                       "secure":false,"issued":N,"url":"...","query":{...},"auth":{...}} */
  const char *data_json;            /* socket.data; "null" when unset */
} sio_socket_info;

/* A socket's state as connection state recovery keeps it when the socket leaves. Strings borrowed for the
 * call. */
typedef struct sio_session_info {
  const char *sid;
  const char *pid;                  /* the private id the client comes back with */
  const char *nsp;
  const char *const *rooms;         /* the socket's rooms, its own id not among them */
  size_t nrooms;
  const char *data_json;            /* socket.data; NULL when unset */
} sio_session_info;

typedef struct sio_adapter sio_adapter;

/* What an adapter implements. A function may be NULL when the adapter cannot do it (then the operation is
 * local only, and a request completes with what the local server has). Return values: 0 or a negative
 * WSIO_E* code; a failure is logged by the adapter and never fails the local part. */
typedef struct sio_adapter_vt {
  /* A broadcast already delivered locally. pkt is an EVENT or BINARY_EVENT packet without an ack id. */
  int (*broadcast)(sio_adapter *a, const sio_targets *t, const char *pkt, size_t len, const sio_bin *atts,
                   size_t natts);
  /* A broadcast with acks (pkt carries the ack id the clients answer to). Each peer reports how many of its
   * clients got it (sio_cluster_ack_count), then each client's answer (sio_cluster_ack_reply). */
  int (*broadcast_ack)(sio_adapter *a, uint64_t rid, const sio_targets *t, const char *pkt, size_t len,
                       const sio_bin *atts, size_t natts, uint32_t timeout_ms);
  int (*sockets_join)(sio_adapter *a, const sio_targets *t, const char *room);
  int (*sockets_leave)(sio_adapter *a, const sio_targets *t, const char *room);
  int (*disconnect_sockets)(sio_adapter *a, const sio_targets *t, int close);
  /* Each peer answers with its matching sockets (sio_cluster_sockets). */
  int (*fetch_sockets)(sio_adapter *a, uint64_t rid, const sio_targets *t, uint32_t timeout_ms);
  /* io.serverSideEmit: data is the JSON array ["event", ...args]. rid 0: no ack wanted; else each peer
   * answers with sio_cluster_server_ack. */
  int (*server_side_emit)(sio_adapter *a, uint64_t rid, const char *nsp, const char *data, size_t len,
                          uint32_t timeout_ms);
  /* The number of servers, this one included, answered with sio_cluster_server_count (now or later). */
  int (*server_count)(sio_adapter *a, uint64_t rid);
  /* The io is going away: stop, free everything. No sio_cluster_* call may follow. */
  void (*free)(sio_adapter *a);
  /* Optional (NULL: not wanted), called after the local change. A namespace now exists (io.of, or a
   * dynamic child created on demand); the main namespace "/" exists before the attach, so it is not told.
   * The Redis adapter subscribes per namespace (peers count servers by subscriptions). */
  void (*nsp_created)(sio_adapter *a, const char *nsp);
  /* Optional. A room of nsp got its first member (exists 1) or lost its last (exists 0); sid_room 1 for a
   * socket's own room (its id). The sharded Redis adapter subscribes to one channel per room with it. */
  void (*room_changed)(sio_adapter *a, const char *nsp, const char *room, int sid_room, int exists);
  /* Optional (NULL: recovery stays local). Connection state recovery: a client came back here to namespace
   * nsp with the private id pid (NUL-terminated) of a session this server does not hold, and offset (""
   * when none). Each peer answers once with sio_cluster_restored (len 0: not held there), and the adapter
   * calls sio_cluster_done(rid) once every peer has answered. The CONNECT waits meanwhile. A negative
   * return (nothing asked) connects it as a fresh session at once. */
  int (*restore)(sio_adapter *a, uint64_t rid, const char *nsp, const char *pid, const char *offset);
  /* Optional, both or neither: connection state recovery kept by the adapter for the whole cluster (the
   * Redis streams adapter: broadcasts in a stream, sessions in Redis), so that a client may come back to
   * any server. With recovery on, this server then keeps neither broadcasts nor sessions:
   *   - broadcast_offset takes this server's broadcasts that go to peers (not local, no acks) instead of
   *     broadcast, before their local part, which the adapter then does once with
   *     sio_cluster_broadcast_at(..., offset) when it knows the offset peers know the broadcast by (NULL:
   *     none), in the order the broadcasts were made. It returns 0 then; 1 when sio is to do the local
   *     part at once, without an offset (Redis away, say), the peers' part being done; or a negative code,
   *     nothing sent to peers (sio does the local part all the same);
   *   - persist takes the state of a socket that left for a reason recovery covers;
   *   - restore (above) is asked for every client that comes back with a pid. */
  int (*broadcast_offset)(sio_adapter *a, const sio_targets *t, const char *pkt, size_t len, const sio_bin *atts,
                          size_t natts);
  void (*persist)(sio_adapter *a, const sio_session_info *s);
} sio_adapter_vt;

/* An adapter embeds this first; the sio layer reads vt and io, never the rest. */
struct sio_adapter {
  const sio_adapter_vt *vt;
  wsio_io *io;
};

/* Attaches a to io (the io then owns it and calls vt->free when it goes). An io has at most one adapter:
 * WSIO_EEXISTS otherwise. */
int sio_adapter_attach(wsio_io *io, sio_adapter *a);
sio_adapter *sio_adapter_of(const wsio_io *io);

/* ---- applying a peer's operations locally (the adapter calls these) ---- */

/* Delivers a peer's broadcast to the local targets. Returns the number of local sockets it was queued to,
 * or WSIO_EPROTO when pkt does not decode (a broken peer: the caller logs it and drops the message). */
int sio_cluster_broadcast(wsio_io *io, const sio_targets *t, const char *pkt, size_t len, const sio_bin *atts,
                          size_t natts);

/* The same with the recovery offset the broadcast is known by on every server (an adapter with
 * broadcast_offset; NULL: none): appended to the packet's arguments as socket.io does (not to a volatile
 * broadcast), with recovery on. */
int sio_cluster_broadcast_at(wsio_io *io, const sio_targets *t, const char *pkt, size_t len, const sio_bin *atts,
                             size_t natts, const char *offset);

/* A peer's broadcast with acks: delivered locally; every local client's answer (the ACK packet's arguments
 * as a JSON array, plus attachments) goes to on_reply(ctx, ...), until the timeout; then on_end(ctx) once,
 * after which ctx is not used again. Returns the number of local clients it was queued to (the peer reports
 * it as its client count), or a negative code (then neither callback runs). */
typedef void (*sio_cluster_reply_fn)(void *ctx, const char *json, size_t len, const sio_bin *atts, size_t natts);
typedef void (*sio_cluster_end_fn)(void *ctx);
int sio_cluster_broadcast_ack(wsio_io *io, const sio_targets *t, const char *pkt, size_t len,
                              const sio_bin *atts, size_t natts, uint32_t timeout_ms,
                              sio_cluster_reply_fn on_reply, sio_cluster_end_fn on_end, void *ctx);

int sio_cluster_sockets_join(wsio_io *io, const sio_targets *t, const char *room);
int sio_cluster_sockets_leave(wsio_io *io, const sio_targets *t, const char *room);
int sio_cluster_disconnect_sockets(wsio_io *io, const sio_targets *t, int close);

/* Calls fn once per matching local socket. Returns the count or a negative code. */
typedef void (*sio_cluster_socket_fn)(void *ctx, const sio_socket_info *info);
int sio_cluster_fetch(wsio_io *io, const sio_targets *t, sio_cluster_socket_fn fn, void *ctx);

/* A peer's serverSideEmit for namespace nsp: runs the handlers registered with wsio_nsp_on_server_side().
 * reply is NULL when the peer wants no ack; else the handler's answer (a JSON array) goes to reply(ctx, ...)
 * exactly once (an empty answer "[]" when no handler answers). */
int sio_cluster_server_event(wsio_io *io, const char *nsp, const char *data, size_t len,
                             sio_cluster_reply_fn reply, void *ctx);

/* A peer's restore request: when the session pid is saved here it is removed (a session is used once) and
 * packed into *out (malloc'd, the caller frees it; *len bytes): its id, rooms, data and the retained
 * broadcasts it missed after offset. Returns 1 when packed, 0 when not held here, or a negative code. */
int sio_cluster_restore_take(wsio_io *io, const char *pid, const char *offset, char **out, size_t *len);

/* An answer to a restore request, packed by an adapter that keeps sessions itself (broadcast_offset): begin
 * with the session's id, namespace, socket.data (NULL: unset) and rooms (its id not among them; at most
 * SIO_RESTORE_MAX_ROOMS), add each missed packet in order (the text packet of an EVENT with its offset
 * already among its arguments, and its attachments), then hand p.b's bytes to sio_cluster_restored and
 * free them (buf_free). Each returns 0 or a negative code (WSIO_ENOMEM; WSIO_ELIMIT past
 * SIO_RESTORE_MAX_PACKETS, WSIO_EPROTO for a packet the io's parser cannot carry). */
#define SIO_RESTORE_MAX_ROOMS 64
#define SIO_RESTORE_MAX_PACKETS 100000
typedef struct sio_restore_pack {
  buf b;
  size_t count_at;
  uint32_t count;
} sio_restore_pack;
int sio_restore_pack_begin(sio_restore_pack *p, const char *sid, const char *nsp, const char *data_json,
                           const char *const *rooms, size_t nrooms);
int sio_restore_pack_packet(wsio_io *io, sio_restore_pack *p, const char *pkt, size_t len, const sio_bin *atts,
                            size_t natts);

/* ---- answers to this server's requests ---- */

/* A peer's answer to restore request rid: what its sio_cluster_restore_take packed (len 0: not there).
 * The first packed answer completes the waiting CONNECT as a recovered session. */
void sio_cluster_restored(wsio_io *io, uint64_t rid, const char *data, size_t len);

/* rid was issued by sio for a request it passed to the adapter; unknown or finished ids are ignored. */
void sio_cluster_ack_count(wsio_io *io, uint64_t rid, size_t clients);
void sio_cluster_ack_reply(wsio_io *io, uint64_t rid, const char *json, size_t len, const sio_bin *atts,
                           size_t natts);
void sio_cluster_sockets(wsio_io *io, uint64_t rid, const sio_socket_info *v, size_t n);
void sio_cluster_server_ack(wsio_io *io, uint64_t rid, const char *json, size_t len);
void sio_cluster_server_count(wsio_io *io, uint64_t rid, size_t servers);
/* Every peer has answered rid. For broadcast_ack: every peer has reported its client count; the request
 * then completes as soon as every counted client (local and remote) has answered. */
void sio_cluster_done(wsio_io *io, uint64_t rid);

#endif
