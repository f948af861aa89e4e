/*
 * Arbitrary client bytes into a server session with permessage-deflate negotiated and a small message limit.
 * Input: one control byte, then the stream. The control byte seeds the read sizes (every split must be
 * accepted), picks the deflate model, and may start our close handshake part way through. Messages are
 * echoed back compressed, so the send path runs too. Checks the session's promises: text is valid UTF-8,
 * nothing exceeds the limit, no callback after a non-OK result, and the result sticks.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ws/frame.h"
#include "ws/session.h"
#include "util/utf8.h"
#include "wsio.h"

#define MAX_MESSAGE 4096

typedef struct fz {
  ws_session *s;
  int done;        /* the session wrote its own close or returned non-OK: no more callbacks */
  int our_close;   /* inside our ws_session_close call */
  int we_closed;   /* our close frame went out first */
  int echo;
  uint64_t sink;
} fz;

static ws_deflate_shared *shared;

static void check(int ok) {
  if (!ok) __builtin_trap();
}

static void on_message(void *ud, int op, uint8_t *data, size_t len) {
  fz *f = ud;
  check(!f->done);
  check(op == WS_OP_TEXT || op == WS_OP_BINARY);
  check(len <= MAX_MESSAGE);
  check(data != NULL);
  if (op == WS_OP_TEXT) check(utf8_valid(data, len));
  for (size_t i = 0; i < len; i++) f->sink += data[i];
  if (f->echo) {
    int rc = ws_session_send(f->s, op, data, len, 1);
    check(rc == 0 || rc == WSIO_ECLOSED);
  }
}

static void on_control(void *ud, const uint8_t *data, size_t len) {
  fz *f = ud;
  check(!f->done);
  check(len <= 125);
  for (size_t i = 0; i < len; i++) f->sink += data[i];
}

static void on_write(void *ud, const uint8_t *data, size_t len) {
  fz *f = ud;
  check(!f->done);
  for (size_t i = 0; i < len; i++) f->sink += data[i];
  if (f->our_close) return;
  /* After our close the session writes nothing; otherwise a write with close_sent set is its own close
   * frame (error or reply), and nothing may follow it. */
  check(!f->we_closed);
  if (ws_session_close_sent(f->s)) f->done = 1;
}

static const ws_session_cbs cbs = {on_message, on_control, on_control, on_write};
static const ws_session_limits limits = {MAX_MESSAGE};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  if (!shared) shared = ws_deflate_shared_new();
  uint8_t ctl = data[0];
  data++, size--;

  ws_pmd_params pmd = {1, 1, 15, 15};
  if (ctl & 1) pmd.client_no_context_takeover = pmd.server_no_context_takeover = 0;
  fz f = {0};
  f.echo = (ctl & 2) != 0;
  f.s = ws_session_new(&cbs, &f, &limits, &pmd, shared);
  if (!f.s) return 0;

  uint32_t rng = ctl * 2654435761u + 1;
  size_t close_at = (ctl & 4) ? size / 2 : SIZE_MAX;
  size_t pos = 0;
  int rc = WS_SESSION_OK;
  while (pos < size && rc == WS_SESSION_OK) {
    rng ^= rng << 13, rng ^= rng >> 17, rng ^= rng << 5;
    size_t n = (rng & 8) ? 1 + rng % 7 : 1 + rng % 300;
    if (n > size - pos) n = size - pos;
    if (pos >= close_at) {
      f.our_close = 1;
      int crc = ws_session_close(f.s, 1000, "bye", 3);
      check(crc == 0 || crc == WSIO_ECLOSED);
      f.we_closed = crc == 0;
      f.our_close = 0;
      close_at = SIZE_MAX;
    }
    uint8_t *copy = malloc(n); /* exact size: ASan sees any read past the read */
    memcpy(copy, data + pos, n);
    rc = ws_session_feed(f.s, copy, n);
    free(copy);
    pos += n;
  }
  if (rc != WS_SESSION_OK) {
    f.done = 1;
    uint8_t more[] = {0x89, 0x80, 0, 0, 0, 0};
    check(ws_session_feed(f.s, more, sizeof more) == rc);
    check(rc == WS_SESSION_CLOSED || rc == 1002 || rc == 1007 || rc == 1009 || rc == 1011);
    check(ws_session_close_sent(f.s));
  }
  ws_session_free(f.s);
  return 0;
}
