/* The outgoing HTTP client: libcurl's multi_socket API on the server's libuv loop. */
#include "server/http_client.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "util/buf.h"
#include "util/log.h"
#include "wsio.h"

#define DEFAULT_TIMEOUT_MS 30000
/* Finished easy handles kept for the next requests (their buffers and settings are reused). */
#define IDLE_EASY_MAX 16

struct srv_http_req {
  srv_http *h;
  CURL *easy;
  srv_http_cb cb;
  void *ud;
  char *body;
  struct curl_slist *headers;
  buf reply;
  size_t max_reply;
  int too_big;
  uint64_t start_ns;
  char errbuf[CURL_ERROR_SIZE];
  srv_http_req *prev, *next;
};

/* One per socket curl asked us to watch; freed in its close callback. */
typedef struct poll_ctx {
  uv_poll_t poll;
  curl_socket_t fd;
  srv_http *h;
  struct poll_ctx *prev, *next;
} poll_ctx;

struct srv_http {
  uv_loop_t *loop;
  CURLM *multi;
  uv_timer_t timer;
  srv_http_req *reqs;
  size_t in_flight;
  poll_ctx *polls;
  CURL *idle[IDLE_EASY_MAX];
  size_t nidle;
  int closing;
  int draining;          /* inside srv_http_drain() */
  char agent[32];
};

/* The handles hold the loop open only inside srv_http_drain(): a cached keep-alive connection, or a request
 * for a client that is gone, must not keep a stopped server running. */
static void set_refs(srv_http *h) {
  void (*f)(uv_handle_t *) = h->in_flight && h->draining ? uv_ref : uv_unref;
  f((uv_handle_t *)&h->timer);
  for (poll_ctx *p = h->polls; p; p = p->next) f((uv_handle_t *)&p->poll);
}

static void poll_closed(uv_handle_t *hd) { free(hd->data); }

static void poll_close(srv_http *h, poll_ctx *p) {
  if (p->prev) p->prev->next = p->next;
  else h->polls = p->next;
  if (p->next) p->next->prev = p->prev;
  uv_close((uv_handle_t *)&p->poll, poll_closed);
}

static void req_free(srv_http_req *r) {
  free(r->body);
  curl_slist_free_all(r->headers);
  buf_free(&r->reply);
  free(r);
}

/* Detaches r from the multi and the list; its easy handle goes back to the idle pool. */
static void req_detach(srv_http *h, srv_http_req *r) {
  if (r->prev) r->prev->next = r->next;
  else h->reqs = r->next;
  if (r->next) r->next->prev = r->prev;
  h->in_flight--;
  curl_multi_remove_handle(h->multi, r->easy);
  if (h->nidle < IDLE_EASY_MAX) h->idle[h->nidle++] = r->easy;
  else curl_easy_cleanup(r->easy);
  r->easy = NULL;
}

static void check_done(srv_http *h) {
  CURLMsg *m;
  int left;
  while ((m = curl_multi_info_read(h->multi, &left)) != NULL) {
    if (m->msg != CURLMSG_DONE) continue;
    CURL *e = m->easy_handle;
    CURLcode code = m->data.result; /* m is invalid once the handle is removed */
    char *priv = NULL;
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, &priv);
    srv_http_req *r = (srv_http_req *)priv;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    srv_http_result res = {.seconds = (double)(uv_hrtime() - r->start_ns) / 1e9, .body = "", .len = 0};
    if (code == CURLE_OK) {
      res.status = (int)status;
      if (r->reply.len) {
        res.body = (const char *)r->reply.data;
        res.len = r->reply.len;
      }
    } else if (code == CURLE_OPERATION_TIMEDOUT) {
      res.err = WSIO_ETIMEDOUT;
    } else if (r->too_big) {
      res.err = WSIO_ETOOBIG;
    } else {
      res.err = WSIO_EIO;
    }
    if (code != CURLE_OK)
      log_debug("http client: %s", r->errbuf[0] ? r->errbuf : curl_easy_strerror(code));
    req_detach(h, r);
    r->cb(&res, r->ud);
    req_free(r);
  }
  set_refs(h);
}

static void on_poll(uv_poll_t *hd, int status, int events) {
  poll_ctx *p = hd->data;
  srv_http *h = p->h;
  int flags = 0;
  if (status < 0) flags = CURL_CSELECT_ERR;
  if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
  int running;
  curl_multi_socket_action(h->multi, p->fd, flags, &running);
  check_done(h);
}

static void on_timeout(uv_timer_t *t) {
  srv_http *h = t->data;
  int running;
  curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  check_done(h);
}

/* CURLMOPT_SOCKETFUNCTION: what curl wants to hear about socket fd. */
static int on_socket(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp) {
  (void)e;
  srv_http *h = userp;
  poll_ctx *p = socketp;
  if (h->closing) return 0;
  if (what == CURL_POLL_REMOVE) {
    if (p) {
      curl_multi_assign(h->multi, fd, NULL);
      poll_close(h, p);
    }
    return 0;
  }
  if (!p) {
    p = calloc(1, sizeof *p);
    if (!p) return -1;
    if (uv_poll_init_socket(h->loop, &p->poll, fd) != 0) {
      free(p);
      return -1;
    }
    p->fd = fd;
    p->h = h;
    p->poll.data = p;
    p->next = h->polls;
    if (h->polls) h->polls->prev = p;
    h->polls = p;
    if (!(h->in_flight && h->draining)) uv_unref((uv_handle_t *)&p->poll);
    curl_multi_assign(h->multi, fd, p);
  }
  int ev = ((what & CURL_POLL_IN) ? UV_READABLE : 0) | ((what & CURL_POLL_OUT) ? UV_WRITABLE : 0);
  return uv_poll_start(&p->poll, ev, on_poll) == 0 ? 0 : -1;
}

/* CURLMOPT_TIMERFUNCTION: only arms the timer (curl must not be re-entered from here). */
static int on_timer(CURLM *m, long timeout_ms, void *userp) {
  (void)m;
  srv_http *h = userp;
  if (h->closing) return 0;
  if (timeout_ms < 0) uv_timer_stop(&h->timer);
  else uv_timer_start(&h->timer, on_timeout, (uint64_t)timeout_ms, 0);
  return 0;
}

srv_http *srv_http_new(void *loop) {
  if (!loop || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return NULL;
  srv_http *h = calloc(1, sizeof *h);
  if (!h || !(h->multi = curl_multi_init())) {
    free(h);
    curl_global_cleanup();
    return NULL;
  }
  h->loop = loop;
  snprintf(h->agent, sizeof h->agent, "wsio/%s", wsio_version());
  uv_timer_init(h->loop, &h->timer);
  h->timer.data = h;
  uv_unref((uv_handle_t *)&h->timer);
  curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
  curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
  curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_timer);
  curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
  return h;
}

static size_t on_write(char *data, size_t size, size_t n, void *ud) {
  srv_http_req *r = ud;
  size_t len = size * n;
  if (r->max_reply == 0) return len;
  if (len > r->max_reply - r->reply.len) {
    r->too_big = 1;
    return 0; /* curl ends the transfer with CURLE_WRITE_ERROR */
  }
  /* One spare byte keeps the reply NUL-terminated for the callback. */
  if (buf_reserve(&r->reply, len + 1) != 0) return 0;
  memcpy(r->reply.data + r->reply.len, data, len);
  r->reply.len += len;
  r->reply.data[r->reply.len] = 0;
  return len;
}

static int setup(srv_http *h, srv_http_req *r, const char *url, size_t len, uint32_t timeout_ms) {
  CURL *e = r->easy;
  long ms = timeout_ms ? (long)timeout_ms : DEFAULT_TIMEOUT_MS;
  int bad = 0;
  bad |= curl_easy_setopt(e, CURLOPT_URL, url) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_POST, 1L) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, ms) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, ms) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_WRITEDATA, r) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)r) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_USERAGENT, h->agent) != CURLE_OK;
  return bad ? WSIO_EINVAL : 0;
}

srv_http_req *srv_http_post(srv_http *h, const char *url, const char *content_type, const void *body, size_t len,
                            uint32_t timeout_ms, size_t max_reply, srv_http_cb cb, void *ud) {
  if (!h || h->closing || !url || !cb || (len && !body)) return NULL;
  srv_http_req *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->h = h;
  r->cb = cb;
  r->ud = ud;
  r->max_reply = max_reply;
  r->body = malloc(len ? len : 1);
  char ct[160];
  snprintf(ct, sizeof ct, "Content-Type: %s", content_type ? content_type : "application/octet-stream");
  struct curl_slist *l = curl_slist_append(NULL, ct);
  /* No "Expect: 100-continue" round trip before larger bodies. */
  struct curl_slist *l2 = l ? curl_slist_append(l, "Expect:") : NULL;
  r->headers = l2 ? l2 : l;
  r->easy = h->nidle ? h->idle[--h->nidle] : curl_easy_init();
  if (!r->body || !l2 || !r->easy) goto fail;
  if (len) memcpy(r->body, body, len);
  curl_easy_reset(r->easy);
  if (setup(h, r, url, len, timeout_ms) != 0) goto fail;
  r->start_ns = uv_hrtime();
  if (curl_multi_add_handle(h->multi, r->easy) != CURLM_OK) goto fail;
  r->next = h->reqs;
  if (h->reqs) h->reqs->prev = r;
  h->reqs = r;
  h->in_flight++;
  set_refs(h);
  return r;
fail:
  if (r->easy) curl_easy_cleanup(r->easy);
  req_free(r);
  return NULL;
}

void srv_http_cancel(srv_http *h, srv_http_req *r) {
  if (!h || !r) return;
  req_detach(h, r);
  req_free(r);
  set_refs(h);
}

size_t srv_http_in_flight(const srv_http *h) { return h ? h->in_flight : 0; }

void srv_http_drain(srv_http *h) {
  if (!h) return;
  h->draining = 1;
  set_refs(h);
  while (h->in_flight) {
    if (uv_run(h->loop, UV_RUN_ONCE) == 0 && h->in_flight) {
      /* Nothing left that could finish them: curl holds no socket and no timer. */
      int running;
      curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
      check_done(h);
      if (h->in_flight && running == 0) break;
    }
  }
  h->draining = 0;
  set_refs(h);
}

static void timer_closed(uv_handle_t *hd) {
  free(hd->data);
  curl_global_cleanup();
}

void srv_http_free(srv_http *h) {
  if (!h) return;
  while (h->reqs) srv_http_cancel(h, h->reqs);
  h->closing = 1;
  while (h->polls) poll_close(h, h->polls);
  curl_multi_cleanup(h->multi);
  for (size_t i = 0; i < h->nidle; i++) curl_easy_cleanup(h->idle[i]);
  h->nidle = 0;
  uv_timer_stop(&h->timer);
  uv_close((uv_handle_t *)&h->timer, timer_closed);
}
