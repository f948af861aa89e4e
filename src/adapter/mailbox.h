/*
 * wk_group — the mailboxes of a group of workers (one libuv loop per thread): how one worker hands work to
 * another without a lock on the way.
 *
 * Each worker has one multi-producer, single-consumer queue: a lock-free list that senders push onto with a
 * compare-and-swap, and that the owner's loop takes whole with one exchange, then runs in sending order
 * (messages from one sender arrive in the order it sent them). The push that finds the list empty wakes the
 * owner's loop (uv_async_send); later pushes ride on that wake-up, so a burst costs one wake-up. A worker
 * posting from its own loop (wk_post) hands each peer one chain per loop iteration, or one per 64 messages
 * of a longer burst so that the peer starts on it early.
 *
 * A message is a wk_msg the sender allocates (usually embedded in a larger payload): the receiver calls
 * run(), which owns it from then on. Once the group is sealed (every worker's loop has returned), or when
 * the receiver has closed its mailbox, drop() releases it instead.
 *
 * Threading: wk_send() and wk_group_size() are thread-safe; wk_open() and wk_close() run on the worker's
 * own thread; wk_group_new/free on the thread that runs the group.
 */
#ifndef WSIO_ADAPTER_MAILBOX_H
#define WSIO_ADAPTER_MAILBOX_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct wk_group wk_group;
typedef struct wk_msg wk_msg;

/* run: on the receiving worker's loop thread; drop: wherever the message is discarded. Both own m. */
typedef void (*wk_msg_fn)(wk_group *g, unsigned to, wk_msg *m);

struct wk_msg {
  wk_msg *next;       /* the queue's link */
  wk_msg_fn run;
  wk_msg_fn drop;
  void *payload;      /* the sender's */
  unsigned from;      /* the sending worker */
};

/* n workers (1..4096, the session ids' limit). Returns NULL on ENOMEM. */
wk_group *wk_group_new(unsigned n);
/* After every worker has closed its mailbox. */
void wk_group_free(wk_group *g);
unsigned wk_group_size(const wk_group *g);

/* Binds worker i's mailbox to its loop (on that loop's thread, before it runs). The wake-up handle does
 * not keep the loop alive. Returns 0 or a negative code. */
int wk_open(wk_group *g, unsigned i, uv_loop_t *loop);
/* No more messages are delivered: every wk_send from now on drops its message. Call once every loop of
 * the group has returned, before any wk_close. */
void wk_seal(wk_group *g);
/* Drops what is still queued for worker i and closes its wake-up handle (run the loop once more so the
 * close completes). */
void wk_close(wk_group *g, unsigned i);

/* Queues m for worker `to` now, from any thread. Returns 0, or WSIO_ECLOSED / WSIO_EINVAL after calling
 * m->drop. */
int wk_send(wk_group *g, unsigned to, wk_msg *m);

/* From worker `from`'s own loop thread: queues m for worker `to` at the end of this loop iteration, with
 * everything else `from` posts to `to` meanwhile, in one push and one wake-up. What a worker sends while
 * handling one read (a burst of broadcasts) then reaches each peer as one batch, which the peer handles in
 * one go and writes out with one system call per connection, as the sender does with its own. Messages
 * posted by one worker keep their order. wk_flush pushes the batches now (the loop does it by itself). */
void wk_post(wk_group *g, unsigned from, unsigned to, wk_msg *m);
void wk_flush(wk_group *g, unsigned from);

/* A pointer per worker and per user (WK_SLOT_*), read and written only on that worker's thread. */
enum { WK_SLOT_ADAPTER = 0, WK_SLOT_SERVER = 1, WK_SLOTS = 2 };
void wk_slot_set(wk_group *g, unsigned i, int slot, void *p);
void *wk_slot(const wk_group *g, unsigned i, int slot);

#endif
