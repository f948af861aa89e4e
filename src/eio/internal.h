/* Internals shared by the files of src/eio. */
#ifndef WSIO_EIO_INTERNAL_H
#define WSIO_EIO_INTERNAL_H

#include <uv.h>

#include "eio/server.h"

/* A time-ordered list of sessions: every entry is appended with a due time no earlier than the tail's,
 * so the head is always the next to expire. One uv_timer serves all lists of a server. */
typedef struct eio_link {
  eio_socket *next, *prev;
  uint64_t due;
  const struct eio_queue *in; /* the queue it is in: one link serves two queues (pings, pongs) */
} eio_link;

typedef struct eio_queue {
  eio_socket *head, *tail;
  size_t link_off; /* offset of the eio_link inside eio_socket */
} eio_queue;

enum { EIO_S_OPEN = 0, EIO_S_CLOSING = 1, EIO_S_CLOSED = 2 };

struct eio_socket {
  eio_server *srv;
  char sid[EIO_SID_LEN + 1];
  uint8_t transport;       /* EIO_POLLING or EIO_WEBSOCKET */
  uint8_t state;
  uint8_t awaiting_pong;
  uint8_t dirty;           /* on the flush list */
  uint8_t get_keep_alive;
  uint8_t get_enc;         /* what the held GET accepts: 0 identity, 1 gzip, 2 deflate */
  uint8_t close_queued;    /* a CLOSE packet is in out */
  uint8_t probed;          /* the probe's ping arrived: every GET now gets a NOOP at once */
  uint8_t overflowed;      /* past max_buffer: sends are refused, the session ends at the next flush */
  uint8_t protocol;        /* 3 or 4, from the handshake's EIO */
  uint8_t v3_b64;          /* v3 polling: the client asked for b64 (no binary payloads) */
  uint8_t jsonp;           /* v3 polling: JSONP (the handshake had j) */
  char jsonp_j[EIO_QUERY_J_MAX + 1]; /* the JSONP callback index */
  eio_socket *next_overflow;
  http_conn *get;          /* the held GET of the polling transport */
  buf get_headers;         /* extra header lines for the held GET's response (CORS) */
  ws_conn *ws;             /* the WebSocket transport once active */
  ws_conn *probe;          /* a WebSocket being upgraded to */
  buf out;                 /* packets queued for the next GET, as a v4 polling payload (whatever the protocol:
                            * v3 sessions' responses are converted as they leave) */
  eio_link hb;             /* in srv->pings or srv->pongs */
  eio_link up;             /* in srv->upgrades while probing */
  eio_socket *next_dirty;
  eio_socket *next_dead;
  void *data;
};

/* The ext area of every WebSocket the server drives. */
typedef struct eio_ws {
  eio_server *srv;
  eio_socket *sock;        /* NULL once the session let go */
} eio_ws;

struct eio_server {
  net_loop *loop;
  eio_config cfg;
  char *path, *cors_origins, *cookie;
  size_t path_len;
  const eio_handler *h;
  map sessions;
  eio_queue pings;         /* open sessions waiting to send their next ping */
  eio_queue pongs;         /* sessions whose ping is unanswered, and closing polling sessions */
  eio_queue upgrades;      /* sessions with a probe in progress */
  eio_queue v3_pings;      /* v3 sessions waiting for their client's next ping (pingInterval + pingTimeout) */
  int allow_eio3;          /* Engine.IO v3 handshakes are served */
  uv_timer_t timer;
  uint64_t timer_due;      /* 0: not armed */
  uv_check_t flush;
  uv_prepare_t flush_early;  /* the flush before the loop blocks, for what timers queued */
  eio_socket *dirty;
  eio_socket *dead;        /* closed sessions freed at the next flush */
  eio_socket *overflow;    /* sessions past max_buffer, ended at the next flush */
  ws_session_limits ws_limits;
  ws_conn_params ws_params;
  ws_handshake_config ws_hs;
  buf scratch;             /* encoding space, reused */
  buf bin;                 /* base64-decoded binary packets */
  buf bin_out;             /* the same for what is sent in a v3 form: never where a received packet lives */
  eio_error_fn on_error;   /* connection_error; NULL: none */
  void *on_error_ud;
  eio_headers_fn on_headers; /* initial_headers / headers; NULL: none */
  void *headers_ud;
  eio_allow_fn allow;      /* NULL: every open is allowed */
  void *allow_ud;
  eio_traffic traffic;
  uint64_t slow_closes;    /* sessions ended past max_buffer */
  size_t gz_threshold;     /* polling responses this long or longer are compressed; 0: never */
  void *gz[2];             /* the loop's gzip and deflate streams (z_stream), made on first use, reset per use */
  buf gz_out;
  void *data;
};

/* server.c */
void eio_queue_push(eio_server *srv, eio_queue *q, eio_socket *s, uint64_t due);
void eio_queue_remove(eio_queue *q, eio_socket *s);
int eio_queue_has(const eio_queue *q, const eio_socket *s);
void eio_mark_dirty(eio_socket *s);
void eio_handle_packet(eio_socket *s, const eio_packet *p);
eio_socket *eio_session_new(eio_server *srv, int transport);
void eio_session_opened(eio_socket *s, const http_request *req, const char *remote);
/* Ends the session at once (no close packet), reason to on_close. */
void eio_session_end(eio_socket *s, const char *reason);
uint64_t eio_now(const eio_server *srv);

/* Tells the connection_error hook, if any, about an error answer to req on hc. */
void eio_report_error(eio_server *srv, http_conn *hc, const http_request *req, int code, const char *message);

/* polling.c */
void eio_polling_request(eio_server *srv, http_conn *hc, const http_request *req, const eio_query *q);
void eio_polling_flush(eio_socket *s);
void eio_polling_release(eio_socket *s);
/* Frees the compression streams. */
void eio_polling_free(eio_server *srv);
/* Answers a held GET with a NOOP, leaving queued packets for the WebSocket. */
void eio_release_get_with_noop(eio_socket *s);
/* Appends the CORS lines for req to out. */
void eio_cors_headers(const eio_server *srv, const http_request *req, buf *out);
/* Answers with an Engine.IO error body. */
void eio_reply_error(eio_server *srv, http_conn *hc, const http_request *req, int code);
/* The same with a message of the caller's in the body (NULL: the code's own). */
void eio_reply_error_msg(eio_server *srv, http_conn *hc, const http_request *req, int code, const char *message);

/* The v3 wire form of a v4 payload (what a session's out holds) into out: a binary payload when the
 * session's client takes one and a packet is binary (*binary set), else a text payload; JSONP sessions get
 * it wrapped in their callback. Returns 0 or WSIO_ENOMEM / WSIO_EINVAL. */
int eio_v3_body(eio_socket *s, const uint8_t *v4, size_t len, buf *out, int *binary);

/* websocket.c */
void eio_ws_request(eio_server *srv, http_conn *hc, const http_request *req, const eio_query *q, uint8_t *rest,
                    size_t rest_len);
int eio_ws_send_packet(eio_socket *s, const eio_packet *p);
void eio_ws_release(eio_socket *s, unsigned code);

/* The headers hook for the response to req (nothing without one). remote: the peer when the caller has it
 * already, NULL to have it read from hc. */
void eio_headers_fill(eio_server *srv, http_conn *hc, const http_request *req, const char *remote, int initial,
                      buf *extra);

#endif
