/*
 * mpk — Socket.IO values and packets in msgpack, sans-I/O: the Redis adapter's wire format, and what
 * clients of the msgpack parser send (sio/parser.c).
 *
 * Peers (socket.io's @socket.io/redis-adapter, the emitter, other wsio nodes, socket.io-msgpack-parser
 * clients) exchange msgpack values as notepack.io writes them: a JavaScript value where every Buffer is a
 * msgpack bin. wsio works on JSON text
 * plus binary attachments (Socket.IO's placeholders), so this module converts at the edge:
 *
 *   msgpack value -> JSON text, each bin replaced by {"_placeholder":true,"num":N} in order, N counting
 *                    from 0 over the whole value; the attachments are views into the input (no copy);
 *   JSON value (+ attachments) -> msgpack, each placeholder replaced by the bin it names.
 *
 * and between a Socket.IO text packet ("51-/chat,[\"ev\",{\"_placeholder\":true,\"num\":0}]" + attachments)
 * and the packet object peers carry ({type: 2, data: ["ev", <bin>], nsp: "/chat"}; binary events travel as
 * type 2 with the bins inline, as socket.io's encoder expects them).
 *
 * msgpack from peers and clients is untrusted: every length is checked against the bytes left (an array may not
 * announce more elements than there are bytes), nesting and attachments are bounded, and strings must be
 * valid UTF-8. Writers use msgpack-c's packer into a buf.
 */
#ifndef WSIO_SIO_MSGPACK_H
#define WSIO_SIO_MSGPACK_H

#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "sio/json.h"
#include "sio/packet.h"
#include "util/buf.h"

/* Defaults: messages nest a packet two levels below the top, and payloads rarely go past a few levels;
 * attachments per message as many as a client may send in one packet, with room. */
#define MPK_DEPTH_DEFAULT 40
#define MPK_ATTS_DEFAULT 256
#define MPK_JSON_MAX_DEFAULT (64u << 20)

typedef struct mpk_limits {
  unsigned max_depth; /* containers nested; 0: MPK_DEPTH_DEFAULT, at most SIO_JSON_DEPTH_MAX */
  size_t max_atts;    /* bins per message; 0: MPK_ATTS_DEFAULT */
  size_t max_json;    /* bytes of JSON produced; 0: MPK_JSON_MAX_DEFAULT */
} mpk_limits;

/* Attachments found while decoding: views into the decoded input. The owner frees v. */
typedef struct mpk_atts {
  sio_bin *v;
  size_t n, cap;
} mpk_atts;

void mpk_atts_free(mpk_atts *a);

/* Converts exactly one msgpack value p[0..len) (nothing may follow it) to JSON appended to json; bins become
 * placeholders numbered from atts->n on, and are appended to atts (views into p). nil becomes null,
 * non-finite floats null (as JSON.stringify), timestamps (ext -1) an ISO 8601 string (as Date.toJSON), map
 * keys that are integers their decimal text. lim may be NULL. Returns 0, WSIO_EPROTO (malformed, truncated,
 * trailing bytes, invalid UTF-8, another ext type, a key that is neither string nor integer, a limit passed)
 * or WSIO_ENOMEM; on error json and atts are left as they were. */
int mpk_to_json(const uint8_t *p, size_t len, const mpk_limits *lim, buf *json, mpk_atts *atts);

/* A msgpack writer appending to b: msgpack-c's packer with b as its sink. failed is set once an append
 * ran out of memory (the output is then incomplete: check it before using b). */
typedef struct mpk_writer {
  msgpack_packer pk;
  buf *b;
  int failed;
} mpk_writer;

void mpk_writer_init(mpk_writer *w, buf *b);

/* Packs a JSON value (validated by sio_json_validate, or produced by mpk_to_json), replacing each
 * placeholder with the bin atts[num]. Integral numbers that fit in 64 bits become msgpack integers, others
 * float 64 (as notepack writes JavaScript numbers). Returns 0, WSIO_EPROTO (a placeholder's num not below
 * natts, or a span that is not JSON) or WSIO_ENOMEM. */
int mpk_pack_json(mpk_writer *w, const sio_json_span *v, const sio_bin *atts, size_t natts);
/* Packs a UTF-8 string / a raw string of n bytes. */
void mpk_pack_cstr(mpk_writer *w, const char *s);
void mpk_pack_strn(mpk_writer *w, const char *s, size_t n);

/* The packet object of a Socket.IO text packet as JSON, its placeholders kept (they name the packet's
 * attachments): {"type":2,"data":[...],"nsp":"/"[,"id":N]}, with the rules of mpk_pack_packet below.
 * Returns 0, WSIO_EPROTO or WSIO_ENOMEM (out unchanged on error). */
int mpk_packet_json(buf *out, const char *text, size_t len, size_t natts, int with_id);

/* Packs the packet object of a Socket.IO text packet and its attachments (built in tmp, the caller's
 * scratch, reset here: no allocation once it has grown): {type, data, nsp[, id]} with
 * type 2 for EVENT and BINARY_EVENT, 3 for ACK and BINARY_ACK (others as they are), data the payload with
 * the attachments inline, nsp always present, id only when with_id and the packet has one. natts must equal
 * the packet's attachment count. Returns 0, WSIO_EPROTO (the text does not decode, or natts differs) or
 * WSIO_ENOMEM. */
int mpk_pack_packet(mpk_writer *w, buf *tmp, const char *text, size_t len, const sio_bin *atts, size_t natts,
                    int with_id);

/* The reverse, from the JSON form of a packet object (as mpk_to_json or a JSON peer wrote it, with its
 * placeholders numbered into atts[0..natts)): writes the Socket.IO text packet to text (appended) and sets
 * *first, *count to the attachments it uses, a consecutive run of atts (its placeholders are renumbered
 * from 0). type 2/5 make an event, 3/6 an ack, becoming the binary type when the data holds placeholders;
 * a missing nsp is "/"; with with_id an id is always written (the object's, else 0), without it never. Returns 0, WSIO_EPROTO (not an
 * object, another type, a missing or non-array data, a bad nsp or id, placeholders out of range) or
 * WSIO_ENOMEM. The text is then for sio_packet_decode to check in full. */
int mpk_packet_text(const sio_json_span *obj, size_t natts, int with_id, buf *text, size_t *first,
                    size_t *count);
/* The same, a missing nsp being nsp_default: socket.io-adapter's ClusterAdapter sends a broadcast's packet
 * before the namespace is set on it, so the message's namespace stands for it. */
int mpk_packet_text_nsp(const sio_json_span *obj, size_t natts, int with_id, const char *nsp_default, buf *text,
                        size_t *first, size_t *count);

/* JSON value v with placeholders numbered from base, appended to out with the numbers minus base; every
 * number must lie in [base, base + count). Returns 0, WSIO_EPROTO or WSIO_ENOMEM. */
int mpk_json_rebase(const sio_json_span *v, size_t base, size_t count, buf *out);

#endif
