/*
 * server_config — the configuration of the wsio program: one INI-style file, environment variables and
 * flags, merged in that order over built-in defaults.
 *
 * The file (UTF-8; a leading BOM is skipped; at most 1 MiB):
 *
 *   # a comment                       whole-line, or after whitespace at the end of a value
 *   [server]                          a section
 *   port = 8080                       key = value
 *   [route "serverMsg"]               a named section: routes and namespaces, one per name
 *   emit = clientMsg
 *
 * Values:
 *   strings    as written, trimmed; or "quoted" with the escapes \" \\ \n \t (needed for leading or trailing
 *              spaces, or " #"); an empty value unsets an optional string. No control characters.
 *   numbers    decimal digits, checked against the setting's range.
 *   durations  a number and a unit: 500ms, 25s, 2m, 1h; 0 needs no unit. A bare number is refused rather
 *              than guessed as milliseconds or seconds.
 *   sizes      a number and an optional unit: bytes (or B), KB MB GB (powers of 1000), KiB MiB GiB (1024).
 *   booleans   true/false, yes/no, on/off.
 *   lists      comma-separated, items trimmed, no empty items.
 *   patterns   '*' matches any run of characters, everything else itself (server_config_match()).
 *
 * Precedence: built-in defaults < the file (--config PATH, else WSIO_CONFIG) < environment < flags. Every
 * setting of a plain section is also a flag and an environment variable, named mechanically: [server] keys
 * have no prefix (port: --port, WSIO_PORT); the others do (socketio.ping_interval: --socketio-ping-interval,
 * WSIO_SOCKETIO_PING_INTERVAL). Flags take "--flag value" or "--flag=value"; a boolean flag alone means
 * true; a flag given twice keeps the last value. Every WSIO_* variable must name a setting (a typo is an
 * error, not silently ignored). Routes and namespaces exist only in the file; without a file the built-in
 * demo routes (server_config_default_text) are loaded instead.
 *
 * Errors name where the bad value came from and what would be right:
 *   wsio.conf:12: [socketio] ping_interval: "25x" is not a duration (examples: 25s, 500ms)
 *   --port: "abc" is not a number
 *   wsio.conf:3: unknown section [sever] (did you mean [server]?)
 *
 * Ownership: a server_config owns every string and array it points to; server_config_free() releases
 * them. Not thread-safe; a reload builds a new server_config beside the running one.
 */
#ifndef WSIO_SERVER_CONFIG_H
#define WSIO_SERVER_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Where a value came from. */
typedef enum server_config_source {
  SERVER_CONFIG_DEFAULT = 0, /* built in (also the embedded default routes) */
  SERVER_CONFIG_FILE,
  SERVER_CONFIG_ENV,
  SERVER_CONFIG_FLAG
} server_config_source;

typedef struct server_config_list {
  char **v;
  size_t n;
} server_config_list;

/* A route's target: who receives the re-emitted event. Every target but all and self leaves the sender
 * out, as socket.broadcast and socket.to(room) do. */
typedef enum server_route_to {
  SERVER_ROUTE_OTHERS = 0,   /* "others": every socket of the namespace but the sender (the default) */
  SERVER_ROUTE_SELF,         /* "self": back to the sender */
  SERVER_ROUTE_ALL,          /* "all": every socket of the namespace, sender included */
  SERVER_ROUTE_ROOM,         /* "room:NAME": the room in route.room */
  SERVER_ROUTE_ROOM_ARG,     /* "room-arg:N": the room named by (string) argument route.room_arg */
  SERVER_ROUTE_SENDER_ROOMS, /* "sender-rooms": every room the sender is in, but its own id room */
  SERVER_ROUTE_NONE          /* "none": nothing is emitted (a route that only answers the ack) */
} server_route_to;

/* [route "EVENT-OR-PATTERN"]: an event received on namespace nsp is re-emitted as emit to `to`. The first
 * route, in file order, whose event and namespace match wins. Arguments are numbered from 0. */
typedef struct server_route {
  char *event;         /* the name or pattern matched against received events */
  char *nsp;           /* namespace name or pattern; default "/" */
  char *emit;          /* outgoing event name; NULL: the received event's name */
  server_route_to to;
  char *room;          /* SERVER_ROUTE_ROOM */
  unsigned room_arg;   /* SERVER_ROUTE_ROOM_ARG */
  int data_arg;        /* -1: forward every argument ("all"); else only argument data_arg ("arg:N") */
  char *ack;           /* a JSON value the client's ack is answered with; NULL: the ack is not answered */
  server_config_source source;
  unsigned line;       /* of the section header */
  unsigned nsp_line;   /* of its namespace key; 0 when not set */
} server_route;

/* [namespace "NAME"]: created at start; a name with '*' admits every matching namespace on demand. The
 * main namespace "/" always exists. */
typedef struct server_namespace {
  char *name;
  int pattern;         /* name contains '*' */
  server_config_source source;
  unsigned line;
} server_namespace;

#define SERVER_LOG_TEXT 0
#define SERVER_LOG_JSON 1
#define SERVER_JWT_HS256 1
#define SERVER_JWT_RS256 2
#define SERVER_JWT_ES256 4
#define SERVER_WEBHOOK_CONNECT 1
#define SERVER_WEBHOOK_DISCONNECT 2
#define SERVER_REDIS_CLASSIC 0
#define SERVER_REDIS_SHARDED 1
#define SERVER_REDIS_STREAMS 2

/* What the command line asked for besides settings; the program acts on it after a successful load. */
#define SERVER_CONFIG_HELP 1u
#define SERVER_CONFIG_VERSION 2u
#define SERVER_CONFIG_CHECK 4u

/* The effective configuration. Optional strings are NULL when unset. Durations are milliseconds. The
 * meaning and default of each field is in the settings table (config.c), docs/wsio.md and --help. */
typedef struct server_config {
  struct {
    char *host;
    unsigned port;             /* 0: any free port */
    char *web_root;            /* NULL: the built-in page at / */
    unsigned max_connections;
    unsigned workers;          /* resolved by server_config_load ("auto": online CPUs); 0 before that */
    server_config_list trusted_proxies; /* networks whose X-Forwarded-For is believed; empty: none */
  } server;
  struct {
    char *cert, *key;          /* both or neither */
  } tls;
  struct {
    char *path;
    uint32_t ping_interval_ms, ping_timeout_ms;
    size_t max_payload;        /* maxHttpBufferSize */
    size_t send_buffer_limit;  /* unsent bytes per client before it is disconnected */
    int transports;            /* WSIO_TRANSPORT_* bits, never 0 */
    uint32_t connect_timeout_ms, ack_timeout_ms;
    uint32_t recovery_ms;      /* 0: off */
    int parser;                /* wsio_parser */
    size_t http_compression;   /* threshold in bytes; 0: off */
    int allow_eio3;            /* serve socket.io-client 2.x too */
    int serve_client;
    char *client_dir;
  } socketio;
  struct {
    server_config_list origins; /* {"*"} for any */
    int credentials;
    int websocket_origin_check; /* WebSocket upgrades must come from a listed origin (or the server's own) */
  } cors;
  struct {
    char *echo_path, *broadcast_path; /* NULL: endpoint off */
    size_t max_message_size, send_buffer_limit;
    uint32_t ping_interval_ms;
    int deflate;               /* wsio_deflate_mode */
  } websocket;
  struct {
    char *join_event, *leave_event; /* NULL: off */
    server_config_list allowed; /* room patterns; an item "claims:FIELD" takes patterns from that JWT claim */
  } rooms;
  struct {
    char *key;                 /* NULL: the HTTP publish API is off */
  } api;
  struct {
    char *jwt_secret;          /* HS256 */
    char *jwt_public_key;      /* PEM file: RS256/ES256 */
    int jwt_algorithms;        /* SERVER_JWT_* bits; load derives it from the keys when not set */
    int jwt_required;
    char *jwt_audience, *jwt_issuer;
  } auth;
  struct {
    char *url;                 /* NULL: off */
    server_config_list events;
    uint32_t timeout_ms;
    unsigned max_in_flight;
  } proxy;
  struct {
    char *url;                 /* NULL: off */
    int events;                /* SERVER_WEBHOOK_* bits */
    unsigned batch_size;
    uint32_t batch_interval_ms;
    unsigned retries;
  } webhooks;
  struct {
    unsigned max_connections_per_ip, handshakes_per_ip_per_second, messages_per_second; /* 0: no limit */
    unsigned handshake_burst, message_burst; /* 0: the per-second rate */
    int message_drop;          /* message_limit_action: 0 close, 1 drop */
    unsigned max_rooms_per_socket, max_pending_acks;
    unsigned max_dynamic_namespaces;
  } limits;
  struct {
    int level;                 /* LOG_ERROR..LOG_DEBUG of util/log.h */
    int format;                /* SERVER_LOG_TEXT or SERVER_LOG_JSON */
  } log;
  struct {
    int enabled;
    char *path;
  } metrics;
  struct {
    char *url;                 /* NULL: no Redis adapter */
    char *key;
    int mode;                  /* SERVER_REDIS_* */
    int sharded;
    int subscription_mode;     /* wsio_redis_mode */
    int degraded_start;
    char *tls_ca, *tls_cert, *tls_key, *tls_server_name; /* rediss URLs only; NULL: not set */
    int tls_insecure;
    char *sentinel_user, *sentinel_password;             /* Sentinel URLs only; NULL: not set */
    char *stream_name;         /* streams mode: wsio_redis_config's stream fields */
    unsigned stream_count;
    unsigned max_len;
    unsigned read_count;
    uint32_t block_ms;
    char *session_key_prefix;
  } redis;
  struct {
    int enabled;
    char *nsp;                 /* the admin namespace */
    char *username, *password_hash; /* both or neither; NULL: no authentication */
    int readonly;
    int mode;                  /* wsio_admin_mode */
    char *server_id;           /* NULL: the host name (host#pid#index per worker) */
  } admin;

  server_route *routes;
  size_t nroutes;
  server_namespace *namespaces;
  size_t nnamespaces;

  char *file;                  /* the file read; NULL when none (the embedded default was used) */
  unsigned action;             /* SERVER_CONFIG_HELP | SERVER_CONFIG_VERSION | SERVER_CONFIG_CHECK */
  struct server_config_origin *origin; /* per setting: where its value came from (internal) */
} server_config;

/* The embedded default file: the demo's routes (serverMsg -> clientMsg to others; join and leave answered
 * with "ok"; toRoom(room, data) -> roomMsg(data) to that room but the sender). */
extern const char server_config_default_text[];

/* Everything in one call: defaults, then the file (or the embedded default), then envp (NULL-terminated
 * "NAME=value" strings, e.g. environ; may be NULL), then argv[1..argc). Then cross-checks (TLS pairs,
 * readable files and directories, CORS credentials, JWT keys vs algorithms, distinct endpoint paths,
 * routes on declared namespaces) and derived values (workers, jwt_algorithms). With --help (-h) or
 * --version nothing else is read or checked: c->action says which, and c holds the defaults.
 * Returns 0; or WSIO_EINVAL with a one-line message in err (the program prints it and exits 2), WSIO_EIO
 * when the file cannot be read, WSIO_ENOMEM. On error *c holds nothing to free (freeing it is harmless).
 * err may be NULL; a message longer than errcap is truncated. */
int server_config_load(server_config *c, int argc, char **argv, char **envp, char *err, size_t errcap);

/* The building blocks of server_config_load, for tests and tools. */
/* Sets every built-in default (no routes, no namespaces). Returns 0 or WSIO_ENOMEM. */
int server_config_init(server_config *c);
/* Applies a file's text over c (initialised). name is used in messages. Routes and namespaces are
 * appended. Returns 0, WSIO_EINVAL (message in err) or WSIO_ENOMEM. */
int server_config_parse(server_config *c, const char *name, const char *text, size_t len, char *err,
                        size_t errcap);
/* The cross-checks and derived values of server_config_load. Returns 0 or WSIO_EINVAL. */
int server_config_finish(server_config *c, char *err, size_t errcap);

/* Releases what c owns and zeroes it. */
void server_config_free(server_config *c);

/* Where setting "section.key" (e.g. "socketio.ping_interval") got its value, written into buf as
 * "default", "wsio.conf:12", "env WSIO_PORT" or "flag --port". Returns out, or NULL for an unknown name. */
const char *server_config_where(const server_config *c, const char *name, char *out, size_t cap);

/* Writes the effective configuration as a configuration file: every setting with its value and, in a
 * comment, where it came from; then namespaces and routes. Secrets are shown as <hidden> unless flags has
 * SERVER_CONFIG_DUMP_SECRETS (then the output parses back to the same configuration).
 * Returns 0, or WSIO_EIO when writing fails. */
#define SERVER_CONFIG_DUMP_SECRETS 1u
int server_config_dump(const server_config *c, FILE *f, unsigned flags);

/* What changed between a running configuration and a reloaded one (SIGHUP). */
typedef struct server_config_changes {
  unsigned live;    /* changed settings the program applies without a restart */
  unsigned restart; /* changed settings that keep their old value until a restart */
} server_config_changes;

/* Lists every difference, one line each, into out (always NUL-terminated, truncated to cap):
 *   restart needed: [server] port: 3000 -> 8080
 *   applied live: [cors] origins: * -> https://example.com
 *   applied live: [route "chat"] added
 * Live: [cors] (but websocket_origin_check), [rooms], [api], [auth], [proxy], [webhooks], [limits] (the
 * per-address ones), [log] and routes. Everything else
 * needs a restart (listeners, TLS files, workers, the Socket.IO and WebSocket endpoints, namespaces).
 * Secrets are reported as changed without their values. ch may be NULL.
 * Returns the number of differences (0: identical). */
int server_config_diff(const server_config *old, const server_config *new_, char *out, size_t cap,
                       server_config_changes *ch);

/* --help text, generated from the settings table. */
void server_config_usage(FILE *f);
/* The settings reference of docs/wsio.md (Markdown tables, one per section), from the same table. */
void server_config_markdown(FILE *f);

/* Pattern match used for routes, namespaces, rooms and proxy events: '*' matches any run of characters
 * (none included), every other byte matches itself. Returns 1 or 0. */
int server_config_match(const char *pattern, const char *s);

#endif
