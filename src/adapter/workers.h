/*
 * wk_adapter — the in-process cluster adapter: the Socket.IO servers of the workers of one process
 * (wsio_workers_run) reach each other's sockets through the group's mailboxes (adapter/mailbox.h).
 *
 * Each worker's io gets its own instance. A broadcast is copied once into one shared, reference-counted
 * block (targets, packet text, attachments) that every other worker reads and the last one frees; requests
 * (broadcast with acks, fetchSockets, serverSideEmit, serverCount) travel the same way and every peer
 * answers exactly once on the requester's mailbox, so the requester knows when all have answered. A worker
 * without an instance (no io, or an io with another adapter) answers with nothing.
 *
 * Threading: everything runs on the io's loop thread, as src/sio/adapter.h requires.
 */
#ifndef WSIO_ADAPTER_WORKERS_H
#define WSIO_ADAPTER_WORKERS_H

#include "adapter/mailbox.h"
#include "wsio.h"

/* Attaches an instance to io, worker i of g (on that worker's thread, after wk_open). Returns 0,
 * WSIO_EEXISTS (io already has an adapter: it keeps it), or WSIO_ENOMEM. */
int wk_adapter_attach(wk_group *g, unsigned i, wsio_io *io);

#endif
