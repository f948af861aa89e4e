/* pct — percent-decoding (RFC 3986 2.1), one decoder for every layer that reads escapes: request paths
 * (http), query values (eio, sio), the credentials in a Redis URL (adapter). They differ in what '+' means,
 * whether a malformed escape is an error, and whether a NUL may come out; the flags say which. Pure: bytes
 * in, bytes out, no allocation. */
#ifndef WSIO_UTIL_PCT_H
#define WSIO_UTIL_PCT_H

#include <stddef.h>

#define PCT_PLUS 0x1u    /* '+' is a space (application/x-www-form-urlencoded) */
#define PCT_LENIENT 0x2u /* a '%' without two hex digits after it stays as it is (not an error) */
#define PCT_NO_NUL 0x4u  /* %00 is an error: a NUL would cut the value short for every C string API */

/* Decodes s[0..n) into out, which has room for cap bytes: the decoded bytes and a NUL after them. out NULL
 * measures only (cap is ignored). out may be s: no byte is written ahead of the bytes still to be read.
 * Returns the decoded length (at most n), WSIO_EPROTO for a malformed escape (without PCT_LENIENT) or a %00
 * (with PCT_NO_NUL), or WSIO_ETOOBIG when the bytes and their NUL need more than cap. The input is read in
 * order and the first fault is the one returned; out then holds the bytes decoded before it. */
long pct_decode(const char *s, size_t n, char *out, size_t cap, unsigned flags);

#endif
