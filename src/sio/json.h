/*
 * sio_json — a JSON scanner for Socket.IO payloads (RFC 8259, strict). It never builds a tree and never
 * allocates: values are spans (pointer, length, kind) into the caller's text.
 *
 * Strict means: one value with optional surrounding whitespace, no trailing commas, no comments, numbers as
 * in the grammar (no leading zeros, no "+", no bare "."), only the escapes of the grammar, \u escapes whose
 * surrogates come in high-low pairs, strings of valid UTF-8 (RFC 3629) with no raw control characters.
 * Numbers of any size are accepted: the grammar does not bound them and JavaScript reads them as doubles.
 *
 * Contract for every function taking a span: the span comes from sio_json_validate (or from iterating a
 * validated span). On other input they stay memory-safe and terminate, but their results are unspecified.
 */
#ifndef WSIO_SIO_JSON_H
#define WSIO_SIO_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "util/buf.h"

/* Hard cap on nesting: the validator keeps one bit per open container on its C stack. */
#define SIO_JSON_DEPTH_MAX 1024

typedef enum sio_json_kind {
  SIO_JSON_NONE = 0, /* no value (an absent payload, or not JSON) */
  SIO_JSON_STRING,
  SIO_JSON_NUMBER,
  SIO_JSON_OBJECT,
  SIO_JSON_ARRAY,
  SIO_JSON_TRUE,
  SIO_JSON_FALSE,
  SIO_JSON_NULL
} sio_json_kind;

/* A JSON value's text: a string span includes its quotes, a container span its brackets. */
typedef struct sio_json_span {
  const char *p;
  size_t len;
  sio_json_kind kind;
} sio_json_span;

/* Validates that p[0..len) is exactly one JSON text: whitespace, a value, whitespace. Nesting deeper than
 * max_depth containers fails ("[]" has depth 1, a scalar 0); max_depth is clamped to SIO_JSON_DEPTH_MAX.
 * One pass, no allocation. Returns 0 and sets *out (may be NULL) to the value without the whitespace, or
 * WSIO_EPROTO for anything else (empty input, trailing garbage, too deep, any grammar or UTF-8 error). */
int sio_json_validate(const char *p, size_t len, unsigned max_depth, sio_json_span *out);

/* sio_json_validate, noting on the way the elements of an array: *count gets their number (0 when the value
 * is not an array), elems[0..cap) the spans of the first cap of them, as sio_json_array_next gives them.
 * count may be NULL; elems may be NULL when cap is 0. Same returns; on an error *count and elems are
 * unspecified. */
int sio_json_validate_elems(const char *p, size_t len, unsigned max_depth, sio_json_span *out, sio_json_span *elems,
                            size_t cap, size_t *count);

/* Kind of the value starting with byte c, SIO_JSON_NONE when no value starts with it. */
sio_json_kind sio_json_kind_of(char c);

/* Iteration over the members of an array or object span. The iterator borrows the span's text. */
typedef struct sio_json_iter {
  const char *p;
  const char *end; /* the closing bracket */
} sio_json_iter;

/* Starts iterating a container span (ARRAY or OBJECT); any other span yields nothing. */
void sio_json_iter_init(sio_json_iter *it, const sio_json_span *container);
/* Next element of an array. Returns 1 and sets *elem, or 0 at the end. */
int sio_json_array_next(sio_json_iter *it, sio_json_span *elem);
/* Next member of an object. Returns 1 and sets *key (a STRING span, still escaped) and *val, or 0 at the
 * end. */
int sio_json_object_next(sio_json_iter *it, sio_json_span *key, sio_json_span *val);
/* Number of elements of an array span (0 for any other span). */
size_t sio_json_array_count(const sio_json_span *arr);

/* Looks up key (raw UTF-8 bytes, compared after unescaping the object's keys) among the top-level members of
 * an object span. A duplicated key yields its last value, as JSON.parse does. Returns 1 and sets *val (may
 * be NULL), or 0 when absent or when obj is not an object. */
int sio_json_object_find(const sio_json_span *obj, const char *key, size_t key_len, sio_json_span *val);

/* 1 when a validated STRING span holds no escape, so that its value is the bytes between its quotes: they are
 * then in *p and *n. 0 when it must be unescaped (sio_json_string_decode). Inline: every event's name asks. */
static inline int sio_json_string_raw(const sio_json_span *str, const char **p, size_t *n) {
  const char *b = str->p + 1;
  size_t len = str->len - 2;
  if (len > 32) { /* past a name's usual length memchr's set-up pays */
    if (memchr(b, '\\', len)) return 0;
  } else {
    for (size_t i = 0; i < len; i++)
      if (b[i] == '\\') return 0;
  }
  *p = b;
  *n = len;
  return 1;
}

/* 1 if the STRING span, unescaped, equals s[0..n) byte for byte; 0 otherwise (also for non-strings). */
int sio_json_string_equals(const sio_json_span *str, const char *s, size_t n);

/* Unescapes a STRING span into out[0..cap): \uXXXX (surrogate pairs combined) becomes UTF-8. The result is
 * never longer than str->len - 2, and is not NUL-terminated (it may contain NUL from \u0000). Returns the
 * decoded length, WSIO_ETOOBIG when cap is too small, WSIO_EINVAL when the span is not a string, or
 * WSIO_EPROTO on a malformed escape. */
ssize_t sio_json_string_decode(const sio_json_span *str, char *out, size_t cap);

/* Appends s[0..n) to b as a JSON string literal: quotes, \" \\ and control characters escaped (short forms
 * where JSON has them, else \u00XX), other UTF-8 kept as is. Returns 0, WSIO_EINVAL when s is not valid
 * UTF-8 (nothing is appended), or WSIO_ENOMEM (b is left at its old length). */
int sio_json_write_string(buf *b, const char *s, size_t n);
/* The same for text from elsewhere (a Latin-1 header, a name from C): bytes of s that are not UTF-8 make
 * every non-ASCII byte '?', rather than an error. Returns 0 or WSIO_ENOMEM. */
int sio_json_write_string_lossy(buf *b, const char *s, size_t n);
/* The same in two steps, for encoders that reserve once: the literal's length (quotes included), or
 * WSIO_EINVAL when s is not valid UTF-8; then writing it at out, which has room for len bytes, len being
 * what sio_json_string_len said (returns len). */
ssize_t sio_json_string_len(const char *s, size_t n);
size_t sio_json_string_put(char *out, const char *s, size_t n, size_t len);

/* Reads a NUMBER span that is a plain non-negative integer (digits only: no sign, fraction or exponent) no
 * larger than max. Returns 0 and sets *v, or WSIO_EPROTO. */
int sio_json_uint(const sio_json_span *num, uint64_t max, uint64_t *v);

/* JavaScript's truthiness of a validated value: false, null, "", and numbers equal to 0 are falsy. */
int sio_json_truthy(const sio_json_span *v);

/*
 * Binary placeholders: Socket.IO replaces each binary in a payload with {"_placeholder":true,"num":N} and
 * sends the binaries after the packet. As in the reference implementation, any object whose "_placeholder"
 * member is true is a placeholder (other members are ignored), and its "num" must then be an index.
 */

/* Checks one value. Returns 1 and sets *num (may be NULL) for a placeholder whose num is a plain integer
 * below limit, 0 when v is not a placeholder, WSIO_EPROTO for "_placeholder":true with a missing, malformed
 * or out-of-range num. */
int sio_json_placeholder(const sio_json_span *v, uint64_t limit, uint64_t *num);

/* Walks every placeholder anywhere in a value, in text order, without descending into placeholders. */
typedef struct sio_json_ph_iter {
  const char *p;
  const char *end;
  uint64_t limit;
} sio_json_ph_iter;

/* Starts a walk over v; num values must be below limit. */
void sio_json_ph_init(sio_json_ph_iter *it, const sio_json_span *v, uint64_t limit);
/* Returns 1 and sets *obj (the placeholder object's span, may be NULL) and *num (may be NULL), 0 when the
 * walk is over, or WSIO_EPROTO as sio_json_placeholder does (the walk then stops). */
int sio_json_ph_next(sio_json_ph_iter *it, sio_json_span *obj, uint64_t *num);

#endif
