#include "lg/sio.h"

#include <stdio.h>
#include <string.h>

#include "ws/frame.h"

enum { SIO_NONE, SIO_WAIT_OPEN, SIO_WAIT_CONNECT, SIO_READY };

void lg_sio_start(lg_conn *c) { c->sio = SIO_WAIT_OPEN; }

static int starts(const lg_conn *c, const char *s) {
  size_t n = strlen(s);
  return c->msg_len >= n && memcmp(c->prefix, s, n) == 0;
}

/* Whether the kept head of the message holds s (the sid comes first in both packets that carry it). */
static int head_has(const lg_conn *c, const char *s) {
  size_t n = c->msg_len < LG_PREFIX ? (size_t)c->msg_len : LG_PREFIX;
  return memmem(c->prefix, n, s, strlen(s)) != NULL;
}

static void send_text(lg_client *cl, lg_conn *c, const char *s) {
  lg_conn_send(cl, c, WS_OP_TEXT, (const uint8_t *)s, strlen(s));
}

/* Copies the string value of "key" in the kept head into out[cap]; "" when it is absent, escaped, cut off by
 * the end of the head or too long. Values copied this way need no escaping to be sent back. */
static void head_string(const lg_conn *c, const char *key, char *out, size_t cap) {
  size_t n = c->msg_len < LG_PREFIX ? (size_t)c->msg_len : LG_PREFIX;
  char pat[32];
  int k = snprintf(pat, sizeof pat, "\"%s\":\"", key);
  const uint8_t *v = memmem(c->prefix, n, pat, (size_t)k), *end = c->prefix + n;
  out[0] = 0;
  if (!v) return;
  v += k;
  const uint8_t *q = memchr(v, '"', (size_t)(end - v));
  if (!q || memchr(v, '\\', (size_t)(q - v)) || (size_t)(q - v) >= cap) return;
  memcpy(out, v, (size_t)(q - v));
  out[q - v] = 0;
}

/* CONNECT to the main namespace, with the recovery auth once the client has a pid (as socket.io-client). */
static void send_connect(lg_client *cl, lg_conn *c, const lg_sio_recovery *rec) {
  char p[160];
  if (!rec || !rec->pid[0]) snprintf(p, sizeof p, "40");
  else if (!rec->offset[0]) snprintf(p, sizeof p, "40{\"pid\":\"%s\"}", rec->pid);
  else snprintf(p, sizeof p, "40{\"pid\":\"%s\",\"offset\":\"%s\"}", rec->pid, rec->offset);
  send_text(cl, c, p);
}

/* An event whose last argument is a string: that string is the offset (`42["ev",...,"offset"]`). */
static void event_offset(const lg_conn *c, lg_sio_recovery *rec) {
  if (c->msg_len > LG_PREFIX || c->msg_len < 6) return;
  const uint8_t *p = c->prefix;
  size_t n = (size_t)c->msg_len;
  if (p[n - 1] != ']' || p[n - 2] != '"' || p[n - 3] == '\\') return;
  size_t i = n - 3; /* the offset's last byte */
  while (i > 0 && p[i] != '"') i--;
  if (i == 0 || p[i - 1] != ',' || n - 2 - (i + 1) >= sizeof rec->offset) return;
  if (memchr(p + i + 1, '\\', n - 2 - (i + 1))) return;
  memcpy(rec->offset, p + i + 1, n - 2 - (i + 1));
  rec->offset[n - 2 - (i + 1)] = 0;
}

int lg_sio_message(lg_client *cl, lg_conn *c, lg_sio_recovery *rec, const char **why) {
  if (c->msg_len == 1 && c->prefix[0] == '2' && c->sio != SIO_NONE) {
    send_text(cl, c, "3");
    return LG_SIO_CONSUMED;
  }
  switch (c->sio) {
  case SIO_WAIT_OPEN:
    if (!starts(c, "0{") || !head_has(c, "\"sid\":\"")) break;
    send_connect(cl, c, rec);
    c->sio = SIO_WAIT_CONNECT;
    return LG_SIO_CONSUMED;
  case SIO_WAIT_CONNECT:
    if (starts(c, "44")) {
      *why = "the namespace refused the connection (CONNECT_ERROR)";
      return LG_SIO_ERROR;
    }
    if (!starts(c, "40{") || !head_has(c, "\"sid\":\"")) break;
    if (rec) {
      char pid[sizeof rec->pid];
      head_string(c, "pid", pid, sizeof pid);
      rec->recovered = pid[0] && strcmp(pid, rec->pid) == 0;
      memcpy(rec->pid, pid, sizeof pid);
    }
    c->sio = SIO_READY;
    return LG_SIO_READY;
  case SIO_READY:
    if (starts(c, "42[")) {
      if (rec && rec->pid[0]) event_offset(c, rec);
      return LG_SIO_EVENT;
    }
    if (starts(c, "41")) {
      *why = "the server disconnected the socket (DISCONNECT)";
      return LG_SIO_ERROR;
    }
    if (starts(c, "1")) {
      *why = "the server closed the Engine.IO session";
      return LG_SIO_ERROR;
    }
    break;
  default:
    break;
  }
  *why = c->sio == SIO_WAIT_OPEN      ? "expected the Engine.IO open packet"
         : c->sio == SIO_WAIT_CONNECT ? "expected the namespace's CONNECT answer"
                                      : "unexpected packet";
  return LG_SIO_ERROR;
}

size_t lg_sio_event_size(const char *event, size_t len) { return 9 + strlen(event) + len; }

size_t lg_sio_event_encode(uint8_t *out, const char *event, const uint8_t *arg, size_t len, size_t *arg_at) {
  size_t n = 0, e = strlen(event);
  memcpy(out + n, "42[\"", 4);
  n += 4;
  memcpy(out + n, event, e);
  n += e;
  memcpy(out + n, "\",\"", 3);
  n += 3;
  if (arg_at) *arg_at = n;
  if (len) memcpy(out + n, arg, len);
  n += len;
  memcpy(out + n, "\"]", 2);
  return n + 2;
}
