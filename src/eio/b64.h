/* Base64 for the Engine.IO codecs (packet.c, packet_v3.c), and the Redis streams adapter's entries and sessions
 * (adapter/redis_stream.c), which carry msgpack as base64 as Node's Buffer writes it. */
#ifndef WSIO_EIO_B64_H
#define WSIO_EIO_B64_H

#include <stddef.h>
#include <stdint.h>

/* The standard alphabet: clients encode with btoa/Buffer, never the URL-safe one. */
extern const char EIO_B64_STD[];

size_t eio_b64_encoded_len(size_t n);
/* Writes base64 of in[0..n) to out; pad adds '=' to a multiple of 4. Returns the characters written. */
size_t eio_b64_encode(const uint8_t *in, size_t n, char *out, const char *alpha, int pad);
/* The decoded length of in[0..n), or -1 when the length or padding cannot be base64. Padding is optional
 * but, when present, completes the last group of 4. */
ptrdiff_t eio_b64_decoded_len(const uint8_t *in, size_t n);
/* Decodes in[0..n) into out (NULL: validate only). Returns 0, or -1 for a character outside the standard
 * alphabet, misplaced '=' or non-zero spare bits (a canonical encoder never sets them). */
int eio_b64_decode(const uint8_t *in, size_t n, uint8_t *out);

struct eio_packet;
struct buf;
/* A binary MESSAGE from its base64 in[0..n) (both payload forms write one so): decoded into bin, or only
 * validated when bin is NULL (out->data then NULL). Returns 0, WSIO_EPROTO or WSIO_ENOMEM. */
int eio_b64_packet(const uint8_t *in, size_t n, struct buf *bin, struct eio_packet *out);

#endif
