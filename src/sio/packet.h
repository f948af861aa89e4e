/*
 * sio_packet — the Socket.IO v5 packet codec (default parser), sans-I/O.
 *
 * Text form: <type>[<attachments>-][<nsp>,][<id>][<json>]; binary packets (BINARY_EVENT, BINARY_ACK) are
 * followed by `attachments` binary messages that replace the {"_placeholder":true,"num":N} objects in the
 * JSON. Each text form travels as one Engine.IO message, so decoding takes a complete message: there is no
 * "need more" state here. The reassembler below joins a binary packet with its attachments.
 *
 * Decoded packets are views: every pointer in a sio_packet or sio_arg points into the caller's text (or
 * into a reassembler's store), so they live as long as that.
 */
#ifndef WSIO_SIO_PACKET_H
#define WSIO_SIO_PACKET_H

#include <stddef.h>
#include <stdint.h>

#include "sio/json.h"
#include "util/buf.h"

enum sio_packet_type {
  SIO_CONNECT = 0,
  SIO_DISCONNECT = 1,
  SIO_EVENT = 2,
  SIO_ACK = 3,
  SIO_CONNECT_ERROR = 4,
  SIO_BINARY_EVENT = 5,
  SIO_BINARY_ACK = 6
};

/* Ack ids are JavaScript numbers on the other side: keep them exact integers. */
#define SIO_PACKET_ID_MAX INT64_C(9007199254740991) /* 2^53 - 1 */
/* Defaults: a binary packet announcing more attachments makes the peer buffer them all, so few are allowed;
 * 32 levels of JSON nesting is far beyond what event payloads use. */
#define SIO_PACKET_ATTACHMENTS_DEFAULT 10
#define SIO_PACKET_DEPTH_DEFAULT 32

/* Top-level elements of a packet's array noted while decoding: an event's name and its first arguments. */
#define SIO_PACKET_ELEMS 8

typedef struct sio_packet_limits {
  unsigned max_attachments; /* 0: SIO_PACKET_ATTACHMENTS_DEFAULT */
  unsigned max_depth;       /* JSON nesting; 0: SIO_PACKET_DEPTH_DEFAULT, clamped to SIO_JSON_DEPTH_MAX */
} sio_packet_limits;

typedef struct sio_packet {
  int type;             /* enum sio_packet_type */
  unsigned attachments; /* binary types only, else 0 */
  const char *nsp;      /* namespace, starts with '/'; "/" when the text has none */
  size_t nsp_len;
  int64_t id;           /* ack id 0..SIO_PACKET_ID_MAX, or -1 */
  sio_json_span data;   /* the payload; kind SIO_JSON_NONE (p NULL, len 0) when absent */
  sio_json_span name;   /* EVENT and BINARY_EVENT: data's first element (a STRING, or a NUMBER as JS allows) */
  /* Noted by sio_packet_decode while validating, so that reading the name and the arguments does not walk
   * the JSON again: when elems_ok, data is an array of nelems elements and elems holds the spans of the first
   * SIO_PACKET_ELEMS. A packet built or rebased any other way leaves elems_ok 0 (the readers then walk). */
  unsigned elems_ok;
  size_t nelems;
  sio_json_span elems[SIO_PACKET_ELEMS];
} sio_packet;

/* A binary attachment: bytes borrowed from whoever passed them. */
typedef struct sio_bin {
  const uint8_t *p;
  size_t len;
} sio_bin;

/* One argument of an event or ack, as the C API shows it: a JSON value or a binary. */
typedef enum sio_arg_kind { SIO_ARG_JSON = 0, SIO_ARG_BINARY = 1 } sio_arg_kind;

typedef struct sio_arg {
  sio_arg_kind kind;
  /* JSON: 1 when json was validated already (sio_packet_args sets it on what it decodes), so encoders do not
   * scan it again. 0 (as zero-initialised) makes the encoder validate it. Keep it 0 for any other text. */
  uint8_t checked;
  sio_json_span json; /* JSON: the value. BINARY, decoded: the placeholder object. Unused when encoding. */
  sio_bin bin;        /* BINARY only */
} sio_arg;

/* Decodes one complete text packet. lim may be NULL (defaults). Checks, each failing with WSIO_EPROTO:
 *   type is a digit 0..6; attachments (binary types only) are digits then '-', at most max_attachments;
 *   a namespace starts with '/', runs to ',' or the end, and is valid UTF-8; an id is digits, at most
 *   SIO_PACKET_ID_MAX, only on EVENT/ACK types and required on ACK types; the rest is one JSON text
 *   (strict, nesting <= max_depth, no leading whitespace) whose kind fits the type: CONNECT absent or object, DISCONNECT absent,
 *   EVENT types a non-empty array whose first element is a number or a string not reserved (see
 *   sio_packet_name_reserved; the reference parser rejects those too), ACK types an array, CONNECT_ERROR an
 *   object or a string; in binary types every placeholder's num is below attachments.
 * Returns 0 with *pkt filled (views into p), or WSIO_EPROTO: the peer is broken or hostile, close it. */
int sio_packet_decode(const char *p, size_t len, const sio_packet_limits *lim, sio_packet *pkt);

/* 1 if an event name (raw UTF-8) is one Socket.IO reserves: connect, connect_error, disconnect,
 * disconnecting, newListener, removeListener. Such names must not be emitted. */
int sio_packet_name_reserved(const char *name, size_t len);

/*
 * Encoders append to out and leave it unchanged on error. A namespace argument (nsp, nsp_len) of NULL or
 * length 0 means "/"; else it must start with '/', contain no ',' and be valid UTF-8. An id of -1 means
 * none. All return 0, WSIO_EINVAL for an argument out of the rules stated, or WSIO_ENOMEM.
 */

/* Writes pkt's header, then pkt->data copied as is (the caller vouches for it being valid JSON). Uses
 * type, attachments (binary types), nsp (omitted when "/"), id (EVENT/ACK types) and data; ignores name. */
int sio_packet_encode(buf *out, const sio_packet *pkt);

/* CONNECT reply: 0[nsp,]{"sid":"<sid>"}, or with pid (connection state recovery, pid non-NULL)
 * {"sid":"<sid>","pid":"<pid>"}. sid and pid are raw UTF-8, escaped here. */
int sio_packet_encode_connect(buf *out, const char *nsp, size_t nsp_len, const char *sid, size_t sid_len,
                              const char *pid, size_t pid_len);

/* CONNECT_ERROR: 4[nsp,]{"message":"<message>"} plus ,"data":<data> when data is non-NULL. message is raw
 * UTF-8; data is a JSON value, validated here (nesting <= SIO_JSON_DEPTH_MAX). */
int sio_packet_encode_connect_error(buf *out, const char *nsp, size_t nsp_len, const char *message,
                                    size_t message_len, const char *data, size_t data_len);

/* DISCONNECT: 1[nsp,]. */
int sio_packet_encode_disconnect(buf *out, const char *nsp, size_t nsp_len);

/* EVENT from a name and a JSON array of arguments: name "chat", args [1,"x"] -> 2["chat",1,"x"]. args NULL
 * (or length 0) means no arguments; else it must be a JSON array, validated here (nesting <=
 * SIO_JSON_DEPTH_MAX). name is raw UTF-8 and must not be reserved. id -1: no ack requested. */
int sio_packet_encode_event(buf *out, const char *nsp, size_t nsp_len, int64_t id, const char *name,
                            size_t name_len, const char *args, size_t args_len);

/* ACK for id (required) with a JSON array of arguments (NULL: none), validated as for events. */
int sio_packet_encode_ack(buf *out, const char *nsp, size_t nsp_len, int64_t id, const char *args,
                          size_t args_len);

/* EVENT or ACK (type SIO_EVENT or SIO_ACK) from a list of arguments, each a JSON value (validated here unless
 * its `checked` is set) or a
 * binary. With no binary the packet is plain. Otherwise it becomes BINARY_EVENT / BINARY_ACK: each binary
 * argument is written as {"_placeholder":true,"num":i}, i counting binaries in order, and the caller sends
 * the binaries after the text, in that order; atts (NULL, or room for nargs entries) receives them. name is
 * used for events only (rules as in sio_packet_encode_event); ACK requires id >= 0. Returns the number of
 * attachments (>= 0) or WSIO_EINVAL / WSIO_ENOMEM. */
int sio_packet_encode_args(buf *out, int type, const char *nsp, size_t nsp_len, int64_t id, const char *name,
                           size_t name_len, const sio_arg *args, size_t nargs, sio_bin *atts);

/* Arguments of a decoded EVENT or ACK packet (for events, the name is not an argument). In binary packets a
 * top-level placeholder becomes a BINARY argument holding atts[num] (atts has pkt->attachments entries);
 * placeholders nested deeper stay in the JSON for the caller to resolve with sio_json_ph_next. Writes up to
 * cap arguments to out and returns how many there are (which may exceed cap), or WSIO_EINVAL for other
 * packet types. */
int sio_packet_args(const sio_packet *pkt, const sio_bin *atts, sio_arg *out, size_t cap);

/*
 * Reassembler: holds a binary packet until its attachments have arrived. The header text and every
 * attachment arrive in separate transport messages whose buffers are reused, so it copies them into one
 * store it owns (kept between packets: no allocation per packet once it has grown). A text packet arriving
 * while one is pending is a protocol error for the caller to act on.
 */
typedef struct sio_packet_reasm {
  buf store;       /* header text, then each attachment as a size_t length and its bytes */
  sio_packet pkt;  /* the header; take() points its views into store, at these offsets */
  size_t text_len; /* header text length: attachments follow it */
  size_t nsp_off;  /* SIZE_MAX: the namespace is the default "/", not in the text */
  size_t data_off;
  size_t name_off;
  unsigned have;   /* attachments received */
  int held;        /* a packet has been started and not taken */
} sio_packet_reasm;

/* Zeroes r: no storage, nothing pending. */
void sio_packet_reasm_init(sio_packet_reasm *r);
/* Frees the store. */
void sio_packet_reasm_free(sio_packet_reasm *r);
/* Drops any pending packet; frees the store if it is larger than keep bytes. */
void sio_packet_reasm_reset(sio_packet_reasm *r, size_t keep);
/* 1 while attachments are awaited. */
int sio_packet_reasm_pending(const sio_packet_reasm *r);

/* Starts on pkt, decoded by sio_packet_decode from text[0..len), a binary type with attachments > 0
 * (decode has already checked its placeholders). Copies the text. Returns 0, WSIO_EPROTO when a packet is
 * already pending, WSIO_EINVAL when pkt has no attachments, or WSIO_ENOMEM. */
int sio_packet_reasm_start(sio_packet_reasm *r, const char *text, size_t len, const sio_packet *pkt);

/* Adds the next attachment (copied). Returns 1 when it was the last one, 0 when more are awaited,
 * WSIO_EPROTO when nothing is pending (binary data out of place), or WSIO_ENOMEM. */
int sio_packet_reasm_add(sio_packet_reasm *r, const void *p, size_t len);

/* After add returned 1: sets *pkt and atts[0..pkt->attachments) to views into r's store, valid until the
 * next start, reset or free, and clears the pending state. Returns 0, or WSIO_EINVAL when no packet is
 * complete. */
int sio_packet_reasm_take(sio_packet_reasm *r, sio_packet *pkt, sio_bin *atts);

#endif
