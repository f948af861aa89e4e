/*
 * The event proxy's reply decoder, sans I/O: a backend's answer (see server/proxy.h) in, a sequence of
 * steps out (emits in order, then the ack), as callbacks. Values are handed out as the backend wrote them
 * (spans into its text, never re-encoded); {"_binary":"<base64>"} at the top level of "ack" and "data"
 * becomes binary bytes.
 */
#ifndef WSIO_SERVER_PROXY_REPLY_H
#define WSIO_SERVER_PROXY_REPLY_H

#include <stddef.h>

#include "wsio.h"

/* Values of one ack or emit at most; the rest are left out. */
#define SRV_PROXY_MAX_VALUES 1024
/* Longest event or room name, in bytes. */
#define SRV_PROXY_NAME_MAX 1023

typedef enum srv_proxy_to {
  SRV_PROXY_SELF = 0, /* "self" (the default) */
  SRV_PROXY_OTHERS,   /* "others" */
  SRV_PROXY_ALL,      /* "all" */
  SRV_PROXY_ROOM      /* "room:NAME" */
} srv_proxy_to;

typedef struct srv_proxy_reply_ops {
  /* Each valid emit, in order. event and room (SRV_PROXY_ROOM only, else NULL) are NUL-terminated, non-empty
   * and hold no NUL; values are borrowed for the call. */
  void (*emit)(void *ud, const char *event, srv_proxy_to to, const char *room, const wsio_value *v, size_t n);
  /* Once, after the emits: has is 1 with the values of "ack", 0 when the reply has none. */
  void (*ack)(void *ud, int has, const wsio_value *v, size_t n);
  /* An emit that was left out (no event name, unknown "to"), for the log. May be NULL. */
  void (*skip)(void *ud, const char *why);
} srv_proxy_reply_ops;

/* Decodes body[0..len). An empty body (or only whitespace) is a reply with nothing in it. Returns 0 after
 * the callbacks ran; WSIO_EPROTO when the body is not a JSON object (no callback ran); WSIO_ENOMEM. */
int srv_proxy_reply_parse(const char *body, size_t len, const srv_proxy_reply_ops *ops, void *ud);

/* Decodes standard base64 (padding optional, no whitespace) into out, which has room for len / 4 * 3 + 2
 * bytes. Returns the decoded length, or -1 for anything that is not base64. */
long srv_proxy_base64_decode(const char *s, size_t len, unsigned char *out);

#endif
