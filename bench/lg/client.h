/* lg_client — the load generator's WebSocket client connections (RFC 6455, client side) on one epoll loop.
 *
 * Frames out are masked with a fresh key each (encoded with ws/frame.h). Frames in must be unmasked and well
 * formed; any other frame is a protocol error that closes the connection. Messages may come fragmented and
 * with control frames between the fragments; pings are answered. No extension is offered, so an accepted one
 * is an error too. Sockets close with RST so that back-to-back runs leave no TIME_WAIT behind. */
#ifndef WSIO_BENCH_LG_CLIENT_H
#define WSIO_BENCH_LG_CLIENT_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>

enum { LG_FREE, LG_CONNECTING, LG_HANDSHAKE, LG_OPEN, LG_CLOSED };

#define LG_PREFIX 128 /* first bytes of each message kept for the caller (packet type, a broadcast's stamp, ids) */

typedef struct lg_conn {
  int fd;
  uint8_t state;
  uint8_t pollout;     /* EPOLLOUT is registered */
  uint8_t dirty;       /* on the flush list */
  uint8_t in_frame;    /* header parsed, payload bytes pending */
  uint8_t in_msg;      /* inside a fragmented data message */
  uint8_t frame_op;
  uint8_t frame_fin;
  uint8_t hdr_len;
  uint8_t ctl_len;
  uint8_t bad;         /* the current message differs from the expected content */
  uint8_t sio;         /* Socket.IO handshake state, kept by lg/sio.c (0 on plain WebSocket) */
  uint8_t hdr[14];
  uint8_t ctl[125];    /* control frame payload (a ping's goes back in the pong) */
  uint8_t prefix[LG_PREFIX];
  uint64_t remaining;  /* payload bytes left in the current frame */
  uint64_t msg_len;    /* bytes of the current message seen so far; its length in on_message */
  char key[25];        /* Sec-WebSocket-Key */
  char *hs;            /* 101 response being read; freed once open */
  size_t hs_len;
  uint8_t *out;        /* unsent bytes are out[out_off..out_len) */
  size_t out_off, out_len, out_cap;
  void *data;          /* the caller's */
} lg_conn;

typedef struct lg_client lg_client;

typedef struct lg_client_cbs {
  /* The 101 response checked out. */
  void (*on_open)(lg_client *cl, lg_conn *c, uint64_t now);
  /* A whole data message arrived: c->msg_len, c->prefix and c->bad describe it. */
  void (*on_message)(lg_client *cl, lg_conn *c, uint64_t now);
  /* Optional, tried first: a whole unfragmented data message lying in one read, seen where it lies before any
   * copy or check. Returns 1 when it took the message, 0 to send it down the general path (c->prefix, the
   * content check, on_message). */
  int (*on_whole)(lg_client *cl, lg_conn *c, int opcode, const uint8_t *msg, size_t len, uint64_t now);
  /* Optional, tried before on_whole at each frame boundary outside a message: the bytes of one read from
   * there on, raw. Returns how many it took: whole frames it recognised and accounted for, so parsing resumes
   * after them (0: none, the frame goes down the usual path). Lets a caller that expects a stream of equal
   * frames check them in one tight loop. */
  size_t (*on_run)(lg_client *cl, lg_conn *c, const uint8_t *p, size_t n, uint64_t now);
  /* The connection is gone; was_open says whether it had opened. err is an errno value. */
  void (*on_close)(lg_client *cl, lg_conn *c, int was_open, int err);
} lg_client_cbs;

struct lg_client {
  int ep;
  struct sockaddr_in addr;
  const char *host;
  int port;
  const char *path;
  const char *headers;      /* more request header lines, each ending in CRLF; NULL: none */
  int sources;              /* > 1: bind to 127.0.0.1 + (index % sources) */
  lg_client_cbs cbs;
  /* Content check: bytes [check_from, expect_len) of every message must equal expect's. */
  const uint8_t *expect;
  size_t expect_len, check_from;
  uint64_t bytes_in;        /* counted by the caller's choice: it may reset it */
  uint64_t protocol_errors;
  uint64_t close_frames;    /* close frames received from the server */
  uint64_t rng;
  lg_conn **flush;
  int nflush;
  uint8_t *rbuf;
  void *data;               /* the caller's */
};

/* Sets up the epoll instance and buffers for up to max_conns connections. Returns 0 or -1 (errno set). */
int lg_client_init(lg_client *cl, int max_conns);

/* Starts a non-blocking connect; index picks the source address. c is zeroed, or closed (it starts afresh,
 * keeping its buffers and data). Returns 0, or -1 if no socket could be made (the descriptor limit). A
 * connect that fails later is reported through on_close. */
int lg_conn_start(lg_client *cl, lg_conn *c, int index);

/* Queues one masked frame; it is written by lg_client_flush. */
void lg_conn_send(lg_client *cl, lg_conn *c, int opcode, const uint8_t *data, size_t len);

/* Closes at once (RST) and calls on_close. No-op on a connection that is not open or opening. */
void lg_conn_close(lg_client *cl, lg_conn *c, int err);

/* Handles events from epoll_wait on cl->ep. */
void lg_client_dispatch(lg_client *cl, const struct epoll_event *evs, int n, uint64_t now);

/* Writes what each connection has queued since the last call. */
void lg_client_flush(lg_client *cl);

/* The xorshift64* stream behind the masking keys (they only need to differ per frame here). */
uint32_t lg_client_rand(lg_client *cl);

#endif
