/*
 * eio_packet — Engine.IO v4 packet codec, sans-I/O: WebSocket messages, HTTP long-polling payloads, the
 * OPEN handshake JSON, session ids, the HTTP error bodies and the query parameters of an Engine.IO request.
 *
 * Decoders never allocate: a text packet is a view into the caller's input; only a base64 binary packet is
 * decoded into a caller-provided buf. Encoders append to a caller's buf. Nothing here keeps state between
 * calls except the payload iterator, which lives in the caller's memory. Every function may be called from
 * any thread on distinct arguments.
 */
#ifndef WSIO_EIO_PACKET_H
#define WSIO_EIO_PACKET_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

typedef enum eio_packet_type {
  EIO_OPEN = 0,
  EIO_CLOSE = 1,
  EIO_PING = 2,
  EIO_PONG = 3,
  EIO_MESSAGE = 4,
  EIO_UPGRADE = 5,
  EIO_NOOP = 6
} eio_packet_type;

/* The record separator between packets of a long-polling payload. */
#define EIO_SEPARATOR 0x1e

/* A packet view. data is borrowed: it points into the decoder's input (text) or into the caller's buf
 * (binary from base64), and is NULL only when len is 0 or when a binary packet was only validated. Only
 * MESSAGE packets are binary. */
typedef struct eio_packet {
  eio_packet_type type;
  int binary; /* 1: data is raw bytes (a WebSocket binary frame, or 'b'+base64 when polling) */
  const uint8_t *data;
  size_t len;
} eio_packet;

/* ---- WebSocket transport: one packet per WebSocket message ---------------------------------------- */

/* Decodes one whole WebSocket message. binary != 0: a binary frame, which is a binary MESSAGE whose data is
 * the whole message (any length, 0 included; zero copy). Text: the first byte is the type '0'..'6', the
 * rest is the data, a view into msg. A text message 'b'+base64 (what clients built with forceBase64 send)
 * is a binary MESSAGE decoded into bin, whose previous content is discarded; with bin NULL it is an error.
 * Text data is not UTF-8 checked here: the WebSocket layer has done that for text frames.
 * Returns 0 with *out filled, WSIO_EPROTO (empty text message, unknown type, bad base64) or WSIO_ENOMEM.
 * out->data stays valid while msg (or bin, for base64) is unchanged. */
int eio_ws_decode(const uint8_t *msg, size_t len, int binary, buf *bin, eio_packet *out);

/* Appends the bytes of one WebSocket message for p to out: a binary packet's data as it is, otherwise the
 * type character then the data. Text data must be UTF-8 (the caller's contract; it is not checked).
 * Returns the opcode to send it with, WSIO_TEXT or WSIO_BINARY (from wsio.h), or WSIO_EINVAL (type out of
 * range, binary packet that is not a MESSAGE) or WSIO_ENOMEM; on error out is unchanged. The send path
 * (websocket.c) writes the same bytes straight into the frame; this is the v4 form the tests and fuzz_eio
 * hold the decoder to. */
int eio_ws_encode(const eio_packet *p, buf *out);

/* ---- HTTP long-polling payloads ----------------------------------------------------------------------- */

/* Iterates over the packets of a whole POST body: packets joined by EIO_SEPARATOR, each a type character
 * then data, or 'b' then base64 (standard alphabet, padding optional but exact when present, no spare
 * bits) for a binary MESSAGE. Text packet data must be valid UTF-8. The fields are private. */
typedef struct eio_payload_iter {
  const uint8_t *body;
  size_t len;
  size_t pos;         /* start of the next packet */
  size_t count;       /* packets yielded so far */
  size_t max_packets; /* 0: no limit */
  int state;          /* 0 running, 1 done, < 0 the sticky error */
} eio_payload_iter;

/* Starts iterating over body[0..len), which the caller keeps unchanged while iterating. max_packets and
 * max_bytes bound the packet count and the body length (0: no limit). Returns 0, or WSIO_ETOOBIG when len
 * is over max_bytes (eio_payload_next then returns it too). */
int eio_payload_iter_init(eio_payload_iter *it, const uint8_t *body, size_t len, size_t max_packets,
                          size_t max_bytes);

/* Yields the next packet. Returns 1 with *out filled, 0 at the end of the payload, or an error, which is
 * sticky (every later call returns it): WSIO_EPROTO (empty packet — so an empty body, a leading, doubled or
 * trailing separator —, unknown type character, bad base64, text that is not UTF-8), WSIO_ETOOBIG (more
 * than max_packets packets), WSIO_ENOMEM. Packets before an error have been yielded; a caller that must
 * reject a bad body as a whole validates it first with eio_payload_check.
 * A text packet's data is a view into the body. A binary packet is decoded into bin (its previous content
 * is discarded; its data stays valid until the next call that decodes into bin); with bin NULL the
 * base64 is only validated, out->data is NULL and out->len is the decoded length. */
int eio_payload_next(eio_payload_iter *it, buf *bin, eio_packet *out);

/* Validates a whole body as eio_payload_next would, without decoding anything. Returns the packet count
 * (>= 1) or the error eio_payload_next would reach. */
int eio_payload_check(const uint8_t *body, size_t len, size_t max_packets, size_t max_bytes);

/* Appends p to a payload being built in out, preceded by EIO_SEPARATOR when out is not empty, so the packets
 * queued for a session become one GET response body. out must hold nothing but that payload. Binary data is
 * written as 'b' and base64. Returns 0, WSIO_EINVAL (type out of range, binary packet that is not a
 * MESSAGE, text data containing EIO_SEPARATOR — it would split the packet) or WSIO_ENOMEM; on error out is
 * unchanged. */
int eio_payload_append(buf *out, const eio_packet *p);
/* 1 if p can be encoded: a known type, binary only for MESSAGE, data for any length, a length whose
 * encoded size cannot overflow. Both protocols' encoders check it. */
int eio_packet_valid(const eio_packet *p);

/* The bytes eio_payload_append writes for p, separator not included. */
size_t eio_payload_packet_len(const eio_packet *p);

/* ---- Engine.IO v3 (socket.io's allowEIO3): the forms that differ from v4 ---------------------------------
 *
 * Long-polling payloads come in two forms. Text: each packet as <length>:<packet>, the length in UTF-16
 * code units of the packet (as JavaScript's String length counts them: a character outside the BMP counts
 * 2), a binary MESSAGE as b4<base64>. Binary (XHR2 clients that did not ask for b64): per packet a byte 0
 * (text) or 1 (binary), the packet's length in bytes as decimal digits one per byte, a byte 255, then the
 * packet: UTF-8 text, or the type byte 4 and the data. On WebSocket, text messages are as v4's and a binary
 * message carries the type byte 4 before its data. */

/* The UTF-16 length of UTF-8 text p[0..n) (assumed valid: each lead byte counts 1, a 4-byte one 2). */
size_t eio_v3_utf16_len(const uint8_t *p, size_t n);

/* Appends p to a text payload: <length>:<type><data>, a binary MESSAGE as <length>:b4<base64>. Text data
 * must be valid UTF-8. Returns 0, WSIO_EINVAL (as eio_payload_append, separators allowed) or WSIO_ENOMEM;
 * on error out is unchanged. */
int eio_v3_payload_append_text(buf *out, const eio_packet *p);

/* Appends p to a binary payload (see above). Same returns. */
int eio_v3_payload_append_binary(buf *out, const eio_packet *p);

/* Iterates over a whole v3 POST body in either form (binary: the body came as application/octet-stream).
 * Text form: digits then ':' then that many UTF-16 units, which must end on a character boundary; a
 * length of 0 is an empty entry and yields nothing, as engine.io skips it. Binary form: 0 or 1, 1 to 10
 * digit bytes, 255, then that many bytes (at least 1). A text packet is a type character '0'..'6' and
 * valid UTF-8 data, or b4 and base64 (a binary MESSAGE); a binary packet is the byte 4 and its data. The
 * fields are private. */
typedef struct eio_v3_iter {
  const uint8_t *body;
  size_t len;
  size_t pos;
  size_t count;
  int binary;
  int state; /* 0 running, 1 done, < 0 the sticky error */
} eio_v3_iter;

/* Starts iterating over body[0..len) (kept unchanged meanwhile). An empty body is an error, as in engine.io.
 * max_bytes bounds len (0: no limit). Returns 0, or WSIO_ETOOBIG (eio_v3_payload_next then returns it). */
int eio_v3_payload_iter_init(eio_v3_iter *it, const uint8_t *body, size_t len, int binary, size_t max_bytes);

/* Yields the next packet: 1 with *out filled, 0 at the end, or a sticky error: WSIO_EPROTO (a bad length —
 * not digits, too many digits, missing ':' or 255 —, a truncated packet, an unknown type, bad base64 or
 * UTF-8), WSIO_ENOMEM. Views and bin as for eio_payload_next. */
int eio_v3_payload_next(eio_v3_iter *it, buf *bin, eio_packet *out);

/* Validates a whole body as eio_v3_payload_next would. Returns the packet count (>= 0) or the error. */
int eio_v3_payload_check(const uint8_t *body, size_t len, int binary, size_t max_bytes);

/* Decodes one v3 WebSocket message: text as eio_ws_decode but a base64 binary MESSAGE is b4<base64>; a
 * binary message must start with the byte 4 (MESSAGE), the rest being the data (zero copy). Returns 0 with
 * *out filled, WSIO_EPROTO or WSIO_ENOMEM. */
int eio_v3_ws_decode(const uint8_t *msg, size_t len, int binary, buf *bin, eio_packet *out);

/* ---- Handshake ------------------------------------------------------------------------------------------ */

/* Appends the OPEN packet's JSON (not the '0' type character) to out:
 * {"sid":"…","upgrades":["websocket"],"pingInterval":N,"pingTimeout":N,"maxPayload":N}
 * with "upgrades":[] when upgrade_websocket is 0 (the session is on WebSocket already, or upgrades are off).
 * sid is NUL-terminated and JSON-escaped as needed. Returns 0, WSIO_EINVAL (sid NULL) or WSIO_ENOMEM; on
 * error out is unchanged. */
int eio_open_json(buf *out, const char *sid, int upgrade_websocket, uint32_t ping_interval_ms,
                  uint32_t ping_timeout_ms, uint64_t max_payload);

/* Session ids: 20 characters of URL-safe base64 ([A-Za-z0-9_-], no padding) of 15 bytes from OpenSSL's
 * RAND_bytes, so 120 unguessable bits (collisions are negligible, but the session table still rejects a
 * duplicate). */
#define EIO_SID_LEN 20

/* Writes a new NUL-terminated session id into out. Returns 0, or WSIO_EIO when the random generator fails
 * (out is then "" — never a predictable id). */
int eio_sid_generate(char out[EIO_SID_LEN + 1]);

/* Workers: a session id names the worker that owns the session in its first two characters (index in
 * base64 digits, 4096 workers at most), so a request that lands on another worker is handed to the owner.
 * eio_sid_set_worker overwrites them (108 random bits remain); eio_sid_worker reads them back: the index,
 * or -1 for anything but EIO_SID_LEN characters of the alphabet (no session's id: nothing to hand over). */
#define EIO_SID_MAX_WORKERS 4096
void eio_sid_set_worker(char *sid, unsigned worker);
int eio_sid_worker(const char *sid);

/* ---- HTTP errors -------------------------------------------------------------------------------------- */

/* The error codes of an Engine.IO server's 400/403 answers. */
typedef enum eio_error {
  EIO_ERR_UNKNOWN_TRANSPORT = 0,
  EIO_ERR_UNKNOWN_SID = 1,
  EIO_ERR_BAD_HANDSHAKE_METHOD = 2,
  EIO_ERR_BAD_REQUEST = 3,
  EIO_ERR_FORBIDDEN = 4,
  EIO_ERR_UNSUPPORTED_PROTOCOL_VERSION = 5
} eio_error;

/* The JSON body (Content-Type: application/json) for an error code, e.g. {"code":1,"message":"Session ID
 * unknown"}; a static string. NULL for a code out of range. */
const char *eio_error_body(int code);

/* The message of an error code ("Session ID unknown"). */
const char *eio_error_message(int code);
/* {"code":code,"message":message} into out (appended), message escaped as a JSON string; NULL: the code's
 * own message. Returns 0 or WSIO_ENOMEM. */
int eio_error_json(buf *out, int code, const char *message);
/* The HTTP status for an error code: 403 for EIO_ERR_FORBIDDEN, 400 otherwise. */
int eio_error_status(int code);

/* ---- Query string ----------------------------------------------------------------------------------- */

/* Finds key (under 32 bytes) in a raw query string q[0..len) (a leading '?' is skipped): pairs split on '&',
 * key and value on the first '='; keys compare after percent-decoding; the last occurrence wins. Percent-decodes the
 * value ('+' is a space) into out, NUL-terminated. Returns the value's length, WSIO_ENOTFOUND,
 * WSIO_ETOOBIG (the value and its NUL do not fit in cap bytes) or WSIO_EPROTO (a bad %-escape in it). */
int eio_query_get(const char *q, size_t len, const char *key, char *out, size_t cap);

typedef enum eio_transport {
  EIO_TRANSPORT_NONE = 0, /* no transport parameter */
  EIO_TRANSPORT_POLLING,
  EIO_TRANSPORT_WEBSOCKET,
  EIO_TRANSPORT_UNKNOWN   /* any other value: answer EIO_ERR_UNKNOWN_TRANSPORT */
} eio_transport;

/* Longest sid the query parser keeps; longer ones cannot be ours. */
#define EIO_QUERY_SID_MAX 64
/* JSONP callback index digits kept (clients count from 0: a few digits). */
#define EIO_QUERY_J_MAX 16

typedef struct eio_query {
  int eio;                          /* EIO as a decimal number 0..999 without leading zeros, else -1 */
  eio_transport transport;
  int has_sid;                      /* sid present and not empty (an empty sid means a handshake) */
  char sid[EIO_QUERY_SID_MAX + 1];  /* decoded, NUL-terminated; "" when longer than EIO_QUERY_SID_MAX,
                                     * which then matches no session */
  int b64;                          /* b64 present and not empty */
  int has_t;                        /* the t cache-buster is present */
  int has_j;                        /* j present (JSONP polling, Engine.IO v3), even empty */
  char j[EIO_QUERY_J_MAX + 1];      /* its digits only, as engine.io keeps them; the first EIO_QUERY_J_MAX */
} eio_query;

/* What an Accept-Encoding header value allows for a polling response: gzip, else deflate (HTTP's deflate
 * is the zlib format), else nothing. A coding with q=0 is refused; "*" stands for gzip. */
enum { EIO_ENC_IDENTITY = 0, EIO_ENC_GZIP = 1, EIO_ENC_DEFLATE = 2 };
int eio_accept_encoding(const char *v, size_t len);

/* Reads EIO, transport, sid, b64, t and j from a raw query string into *out. Returns 0, or WSIO_EPROTO when
 * one of those values has a bad %-escape (answer EIO_ERR_BAD_REQUEST). */
int eio_query_parse(const char *q, size_t len, eio_query *out);

#endif
