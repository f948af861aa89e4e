/*
 * net_trust — IP addresses as values, networks (CIDR), and the list of trusted proxies: the peers whose
 * word on the client's address (X-Forwarded-For, read by src/http/forwarded.c) is believed.
 *
 * Pure functions, no I/O, no locks: a list is immutable once parsed. Ownership: net_trust_parse hands the
 * caller a list to free with net_trust_free; a loop borrows its owner's list (net_loop.trust), which the
 * owner replaces and frees on the loop's thread only.
 */
#ifndef WSIO_NET_TRUST_H
#define WSIO_NET_TRUST_H

#include <stddef.h>
#include <stdint.h>

struct sockaddr;
struct sockaddr_storage;

/* An IPv4 or IPv6 address without port or zone. An IPv4-mapped IPv6 address (::ffff:a.b.c.d, what a
 * dual-stack listener sees of an IPv4 client) is stored as its IPv4 address, so both spellings match the
 * same networks and count as one address. */
typedef struct net_addr {
  uint8_t family;    /* 4 or 6; 0: none */
  uint8_t bytes[16]; /* IPv4: the first 4 */
} net_addr;

/* Longest address text: an IPv6 address with an IPv4 tail, and its NUL. */
#define NET_ADDR_TEXT 46

/* Parses the literal s[0..len) (not NUL-terminated): dotted-quad IPv4 or IPv6 text, nothing around it (no
 * brackets, port, zone or blanks). Returns 0, or -1 when it is not exactly an address. */
int net_addr_parse(const char *s, size_t len, net_addr *out);
/* From an AF_INET or AF_INET6 socket address. Returns 0, or -1 for another family. */
int net_addr_from_sockaddr(const struct sockaddr *sa, net_addr *out);
/* To a socket address with port 0 (a's family must be 4 or 6). */
void net_addr_to_sockaddr(const net_addr *a, struct sockaddr_storage *out);
/* Writes "203.0.113.7" or "2001:db8::1" into out (NUL-terminated). Returns its length, or -1 when cap is
 * too small or a has no family. */
int net_addr_format(const net_addr *a, char *out, size_t cap);

/* A network: the first `bits` bits of net (the others are zero). */
typedef struct net_cidr {
  net_addr net;
  uint8_t bits;      /* 0..32 for IPv4, 0..128 for IPv6 */
} net_cidr;

/* Parses "10.0.0.0/8", "fd00::/8", or an address alone (one host: /32 or /128). Bits past the prefix are
 * cleared (192.168.1.7/24 is 192.168.1.0/24). An IPv4-mapped IPv6 network of /96 or more is the IPv4
 * network it covers. Returns NULL, or a static reason to print after the item, e.g. "is not an IP address
 * or network (examples: 10.0.0.0/8, 192.168.1.7, fd00::/8)". */
const char *net_cidr_parse(const char *s, size_t len, net_cidr *out);
/* 1 when a is inside n. */
int net_cidr_match(const net_cidr *n, const net_addr *a);

/* Networks in one list at most: every trusted-proxy check walks the list. */
#define NET_TRUST_MAX 256

typedef struct net_trust {
  size_t n;
  net_cidr v[];
} net_trust;

/* Parses a list of networks separated by commas or blanks ("10.0.0.0/8, 127.0.0.1 ::1"). Returns 0 with
 * *out set (NULL for a list with no item), WSIO_EINVAL with the bad item and why in err (e.g.
 * "\"10.0.0.0/33\": the prefix is longer than 32 bits"; err may be NULL), or WSIO_ENOMEM. */
int net_trust_parse(const char *list, net_trust **out, char *err, size_t cap);
void net_trust_free(net_trust *t);
/* 1 when a is inside one of t's networks; t NULL or a without family: 0. */
int net_trust_match(const net_trust *t, const net_addr *a);

#endif
