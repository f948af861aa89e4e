/*
 * redis_block — one blocking Redis connection for the checks made at start (redis_probe, the first
 * Sentinel look-up), plain or TLS. hiredis 0.14's blocking client has no TLS; this one keeps its reply
 * reader and command formatter and does the socket and redis_tls's session itself, every step bounded by
 * the timeout.
 *
 * Ownership: replies are the caller's (freeReplyObject). Threading: any one thread; it blocks.
 */
#ifndef WSIO_ADAPTER_REDIS_BLOCK_H
#define WSIO_ADAPTER_REDIS_BLOCK_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "adapter/redis_tls.h"

typedef struct rblk rblk;

/* Connects to host:port, with tls (NULL: plain) through the TLS handshake too, within timeout_ms. Returns
 * the connection, or NULL with the reason in err and *code WSIO_EIO (cannot connect, timed out), WSIO_ETLS
 * (the handshake failed: OpenSSL's reason) or WSIO_ENOMEM. */
rblk *rblk_connect(const char *host, int port, rtls_ctx *tls, uint32_t timeout_ms, char *err, size_t errcap,
                   int *code);

/* Sends one command (hiredis's redisCommand format: %s, %b, %d...) and waits at most the timeout for its
 * reply. Returns the reply (an error reply included), or NULL when the connection failed: the reason in
 * rblk_errstr, and every later command fails the same way. */
redisReply *rblk_command(rblk *b, const char *fmt, ...);

/* Why the connection failed; "" while it has not. */
const char *rblk_errstr(const rblk *b);
/* WSIO_EIO or WSIO_ETLS once failed (a TLS alert may come with the first reply: TLS 1.3 servers check
 * client certificates after the client's handshake is done); 0 before. */
int rblk_code(const rblk *b);

void rblk_free(rblk *b); /* NULL: nothing */

#endif
