/*
 * http_forwarded — who a request is from when it came through trusted proxies: the X-Forwarded-For chain
 * (or, without one, RFC 7239 Forwarded "for=" parameters) read from the right, as nginx's
 * real_ip_recursive and Express's "trust proxy" read it. Sans-I/O: a parsed request in, an address out.
 *
 * Each proxy appends the address it received the request from, so the right end of the chain was written
 * by the proxy closest to wsio and the left end by whoever sent the request: only the entries the trusted
 * proxies added are facts. The walk goes right to left and skips the entries inside the trusted networks
 * (proxies in front of proxies); the first entry outside them is the client. When every entry is trusted,
 * the leftmost is. Entries to the left of the client are never looked at (a client may write anything
 * there).
 *
 * Several X-Forwarded-For lines are one list in their order (RFC 9110 list semantics). Entries are
 * addresses with an optional port: 203.0.113.7, 203.0.113.7:5123, 2001:db8::7, [2001:db8::7]:5123; blanks
 * around an entry and empty entries are ignored. Forwarded is read only when no X-Forwarded-For line is
 * present: its elements' for= values, quoted or not, in the same forms.
 */
#ifndef WSIO_HTTP_FORWARDED_H
#define WSIO_HTTP_FORWARDED_H

#include "http/parser.h"
#include "net/trust.h"

/* Entries looked at, at most, before giving up (the proxy's address then stands for the client). Real
 * chains are a few hops long; the bound keeps the work per request small whatever a request carries. */
#define HTTP_FORWARDED_MAX_HOPS 32

/* Results of http_forwarded_client. */
enum {
  HTTP_FWD_BAD = -1,   /* an entry the walk reached is not an address (garbage, "unknown", an obfuscated
                        * name), or past HTTP_FORWARDED_MAX_HOPS: the peer stands for the client */
  HTTP_FWD_NONE = 0,   /* no header, or no entry in it: the peer is the client */
  HTTP_FWD_CLIENT = 1  /* *out is the client */
};

/* The client of req, which came from a trusted peer; trust is the trusted networks (NULL: none, so the
 * rightmost entry is the client). *out is set only for HTTP_FWD_CLIENT. */
int http_forwarded_client(const http_request *req, const net_trust *trust, net_addr *out);

/* Parses one entry, s[0..len) with no blanks around it: an address with an optional port (IPv6 in brackets
 * when it has a port). Returns 0 or -1. */
int http_forwarded_node(const char *s, size_t len, net_addr *out);

#endif
