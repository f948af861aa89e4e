#include "lg/sio.h"

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

int lg_sio_message(lg_client *cl, lg_conn *c, const char **why) {
  if (c->msg_len == 1 && c->prefix[0] == '2' && c->sio != SIO_NONE) {
    send_text(cl, c, "3");
    return LG_SIO_CONSUMED;
  }
  switch (c->sio) {
  case SIO_WAIT_OPEN:
    if (!starts(c, "0{") || !head_has(c, "\"sid\":\"")) break;
    send_text(cl, c, "40");
    c->sio = SIO_WAIT_CONNECT;
    return LG_SIO_CONSUMED;
  case SIO_WAIT_CONNECT:
    if (starts(c, "44")) {
      *why = "the namespace refused the connection (CONNECT_ERROR)";
      return LG_SIO_ERROR;
    }
    if (!starts(c, "40{") || !head_has(c, "\"sid\":\"")) break;
    c->sio = SIO_READY;
    return LG_SIO_READY;
  case SIO_READY:
    if (starts(c, "42[")) return LG_SIO_EVENT;
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
