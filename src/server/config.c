/* The settings table, and loading: defaults < file < environment < flags, then cross-checks. */
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/config_internal.h"
#include "util/log.h"
#include "wsio.h"

/* ---- the table: every setting once; flags, environment, --help, docs and the dump derive from it ---- */

static const cfg_choice transports[] = {{"polling", WSIO_TRANSPORT_POLLING}, {"websocket", WSIO_TRANSPORT_WEBSOCKET},
                                        {NULL, 0}};
static const cfg_choice deflates[] = {{"shared", WSIO_DEFLATE_SHARED}, {"context", WSIO_DEFLATE_CONTEXT},
                                      {"off", WSIO_DEFLATE_OFF}, {NULL, 0}};
static const cfg_choice jwt_algs[] = {{"HS256", SERVER_JWT_HS256}, {"RS256", SERVER_JWT_RS256},
                                      {"ES256", SERVER_JWT_ES256}, {NULL, 0}};
static const cfg_choice hook_events[] = {{"connect", SERVER_WEBHOOK_CONNECT}, {"disconnect", SERVER_WEBHOOK_DISCONNECT},
                                         {NULL, 0}};
static const cfg_choice log_levels[] = {{"error", LOG_ERROR}, {"warn", LOG_WARN}, {"info", LOG_INFO},
                                        {"debug", LOG_DEBUG}, {NULL, 0}};
static const cfg_choice parsers[] = {{"default", WSIO_PARSER_DEFAULT}, {"msgpack", WSIO_PARSER_MSGPACK}, {NULL, 0}};
static const cfg_choice rate_actions[] = {{"close", 0}, {"drop", 1}, {NULL, 0}};
static const cfg_choice log_formats[] = {{"text", SERVER_LOG_TEXT}, {"json", SERVER_LOG_JSON}, {NULL, 0}};
static const cfg_choice admin_modes[] = {{"development", WSIO_ADMIN_DEVELOPMENT},
                                         {"production", WSIO_ADMIN_PRODUCTION}, {NULL, 0}};
static const cfg_choice redis_adapters[] = {{"classic", SERVER_REDIS_CLASSIC}, {"sharded", SERVER_REDIS_SHARDED},
                                            {"streams", SERVER_REDIS_STREAMS}, {NULL, 0}};
static const cfg_choice redis_modes[] = {{"dynamic", WSIO_REDIS_DYNAMIC}, {"static", WSIO_REDIS_STATIC},
                                         {"dynamic-private", WSIO_REDIS_DYNAMIC_PRIVATE}, {NULL, 0}};

#define OFF(f) offsetof(server_config, f)
#define STR(sec, key, f, ck, fl, def, meta, help) {sec, key, CT_STR, ck, fl, OFF(f), def, 0, 0, NULL, meta, help}
#define NUM(sec, key, ty, f, fl, def, lo, hi, meta, help) \
  {sec, key, ty, CK_NONE, fl, OFF(f), def, lo, hi, NULL, meta, help}
#define BOOL(sec, key, f, fl, def, help) {sec, key, CT_BOOL, CK_NONE, fl, OFF(f), def, 0, 0, NULL, "BOOL", help}
#define ONE(sec, key, ty, f, fl, def, ch, meta, help) {sec, key, ty, CK_NONE, fl, OFF(f), def, 0, 0, ch, meta, help}
#define LIST(sec, key, f, ck, fl, def, help) {sec, key, CT_LIST, ck, fl, OFF(f), def, 0, 0, NULL, "LIST", help}
#define SEC 1000ull
#define MIN (60 * SEC)
#define HOUR (60 * MIN)
#define DAY (24 * HOUR)
#define GIB (1024ull * 1024 * 1024)
#define O CF_OPTIONAL
#define L CF_LIVE

const char *const cfg_sections[] = {"server", "tls", "socketio", "cors", "websocket", "rooms", "api", "auth",
                                    "proxy", "webhooks", "limits", "log", "metrics", "redis", "admin",
                                    NULL};

const cfg_setting cfg_settings[] = {
    STR("server", "host", server.host, CK_HOST, 0, "0.0.0.0", "HOST", "address to listen on: IPv4, IPv6 or a name"),
    NUM("server", "port", CT_UINT, server.port, 0, "3000", 0, 65535, "PORT", "TCP port; 0 picks a free one (logged)"),
    STR("server", "web_root", server.web_root, CK_DIR, O, "", "DIR",
        "serve static files from DIR; empty: the built-in demo page at /"),
    NUM("server", "max_connections", CT_UINT, server.max_connections, 0, "100000", 1, 10000000, "N",
        "connections held at once; past it new ones are closed at once"),
    NUM("server", "workers", CT_UINT, server.workers, CF_AUTO, "auto", 1, 1024, "N",
        "event-loop threads, each a whole server on the one port; auto: one per CPU core"),
    LIST("server", "trusted_proxies", server.trusted_proxies, CK_CIDR, O | L, "",
         "proxies (networks like 10.0.0.0/8, or addresses) whose X-Forwarded-For names the client: its "
         "address is what limits count and logs and handshake.address show; empty: none"),

    STR("tls", "cert", tls.cert, CK_FILE, O | L, "", "FILE",
        "PEM certificate chain; with key, listeners speak TLS; read again on every reload"),
    STR("tls", "key", tls.key, CK_FILE, O | L, "", "FILE", "PEM private key of cert; read again on every reload"),

    STR("socketio", "path", socketio.path, CK_PATH, 0, "/socket.io/", "PATH", "where Socket.IO answers"),
    NUM("socketio", "ping_interval", CT_MS, socketio.ping_interval_ms, 0, "25s", 1, DAY, "DURATION",
        "heartbeat interval (pingInterval)"),
    NUM("socketio", "ping_timeout", CT_MS, socketio.ping_timeout_ms, 0, "20s", 1, DAY, "DURATION",
        "time a client has to answer a ping (pingTimeout)"),
    NUM("socketio", "max_payload", CT_SIZE, socketio.max_payload, 0, "1MB", 1, GIB, "SIZE",
        "largest message or POST body (maxHttpBufferSize)"),
    ONE("socketio", "transports", CT_FLAGS, socketio.transports, 0, "polling,websocket", transports, "LIST",
        "transports offered: polling, websocket"),
    NUM("socketio", "connect_timeout", CT_MS, socketio.connect_timeout_ms, 0, "45s", 1, DAY, "DURATION",
        "a client must join a namespace within it (connectTimeout)"),
    NUM("socketio", "ack_timeout", CT_MS, socketio.ack_timeout_ms, 0, "30s", 1, DAY, "DURATION",
        "default wait for an acknowledgement"),
    NUM("socketio", "recovery", CT_MS, socketio.recovery_ms, 0, "0", 0, DAY, "DURATION",
        "connection state recovery window, e.g. 2m; 0: off"),
    NUM("socketio", "send_buffer_limit", CT_SIZE, socketio.send_buffer_limit, 0, "16MiB", 64 * 1024, 2 * GIB, "SIZE",
        "bytes queued for one client before it is disconnected (a slow reader)"),
    NUM("socketio", "http_compression", CT_SIZE, socketio.http_compression, 0, "1KiB", 0, GIB, "SIZE",
        "compress long-polling responses this long or longer for clients that accept gzip or deflate; 0: off"),
    ONE("socketio", "parser", CT_ENUM, socketio.parser, 0, "default", parsers, "default|msgpack",
        "packet encoding clients use: default, or msgpack (socket.io-msgpack-parser)"),
    BOOL("socketio", "allow_eio3", socketio.allow_eio3, 0, "false",
         "also serve socket.io-client 2.x (Engine.IO v3), as socket.io's allowEIO3; default parser only"),
    BOOL("socketio", "serve_client", socketio.serve_client, 0, "true",
         "serve the client bundle (socket.io.js) from client_dir"),
    STR("socketio", "client_dir", socketio.client_dir, CK_DIR, O, "", "DIR",
        "directory holding socket.io.js; empty: the bundle installed with wsio"),

    LIST("cors", "origins", cors.origins, CK_ORIGIN, L, "*",
         "origins allowed (CORS and WebSocket handshakes): * or a list like https://example.com"),
    BOOL("cors", "credentials", cors.credentials, L, "false", "allow cookies cross-origin (needs listed origins)"),
    BOOL("cors", "websocket_origin_check", cors.websocket_origin_check, 0, "true",
         "refuse WebSocket upgrades (403) whose Origin is not in origins; same-origin and no Origin pass"),

    STR("websocket", "echo_path", websocket.echo_path, CK_PATH, O, "/echo", "PATH",
        "raw WebSocket echo endpoint; empty: off"),
    STR("websocket", "broadcast_path", websocket.broadcast_path, CK_PATH, O, "", "PATH",
        "raw WebSocket endpoint relaying every message to every client; empty: off"),
    NUM("websocket", "max_message_size", CT_SIZE, websocket.max_message_size, 0, "16MiB", 1, 2 * GIB, "SIZE",
        "largest message after inflate; larger: close 1009"),
    NUM("websocket", "send_buffer_limit", CT_SIZE, websocket.send_buffer_limit, 0, "16MiB", 1024, 2 * GIB, "SIZE",
        "unsent bytes per connection before it is closed with 1008"),
    NUM("websocket", "ping_interval", CT_MS, websocket.ping_interval_ms, 0, "30s", SEC, HOUR, "DURATION",
        "keepalive ping; a client silent for two intervals is dropped"),
    ONE("websocket", "deflate", CT_ENUM, websocket.deflate, 0, "shared", deflates, "shared|context|off",
        "permessage-deflate: shared (no state per connection), context, off"),

    STR("rooms", "join_event", rooms.join_event, CK_EVENT, O | L, "join", "EVENT",
        "event whose first argument names a room to join; empty: off"),
    STR("rooms", "leave_event", rooms.leave_event, CK_EVENT, O | L, "leave", "EVENT",
        "event whose first argument names a room to leave; empty: off"),
    LIST("rooms", "allowed", rooms.allowed, CK_ROOM, O | L, "*",
         "rooms that may be joined: patterns like lobby,game-*, or claims:FIELD from the JWT"),

    STR("api", "key", api.key, CK_NONE, O | L | CF_SECRET, "", "KEY",
        "enables the HTTP publish API, callers must send it; empty: API off"),

    STR("auth", "jwt_secret", auth.jwt_secret, CK_NONE, O | L | CF_SECRET, "", "SECRET", "HMAC key for HS256 tokens"),
    STR("auth", "jwt_public_key", auth.jwt_public_key, CK_FILE, O | L, "", "FILE",
        "PEM public key for RS256/ES256 tokens"),
    ONE("auth", "jwt_algorithms", CT_FLAGS, auth.jwt_algorithms, O | L, "", jwt_algs, "LIST",
        "accepted: HS256, RS256, ES256; empty: those the keys allow"),
    BOOL("auth", "jwt_required", auth.jwt_required, L, "false", "refuse connections without a valid token"),
    STR("auth", "jwt_audience", auth.jwt_audience, CK_NONE, O | L, "", "TEXT", "required aud claim; empty: any"),
    STR("auth", "jwt_issuer", auth.jwt_issuer, CK_NONE, O | L, "", "TEXT", "required iss claim; empty: any"),

    STR("proxy", "url", proxy.url, CK_URL, O | L, "", "URL", "POST matching events to this URL; empty: off"),
    LIST("proxy", "events", proxy.events, CK_PATTERN, L, "*", "event patterns forwarded"),
    NUM("proxy", "timeout", CT_MS, proxy.timeout_ms, L, "5s", 1, 10 * MIN, "DURATION", "wait for the answer"),
    NUM("proxy", "max_in_flight", CT_UINT, proxy.max_in_flight, L, "1000", 1, 1000000, "N",
        "requests outstanding at once; events past it are refused"),

    STR("webhooks", "url", webhooks.url, CK_URL, O | L, "", "URL",
        "POST connection events here in batches; empty: off"),
    ONE("webhooks", "events", CT_FLAGS, webhooks.events, L, "connect,disconnect", hook_events, "LIST",
        "events sent: connect, disconnect"),
    NUM("webhooks", "batch_size", CT_UINT, webhooks.batch_size, L, "100", 1, 10000, "N", "events per request at most"),
    NUM("webhooks", "batch_interval", CT_MS, webhooks.batch_interval_ms, L, "1s", 1, HOUR, "DURATION",
        "longest wait before a partial batch is sent"),
    NUM("webhooks", "retries", CT_UINT, webhooks.retries, L, "3", 0, 100, "N", "attempts after a failed request"),

    NUM("limits", "max_connections_per_ip", CT_UINT, limits.max_connections_per_ip, L, "0", 0, 10000000, "N",
        "open connections per client address (IPv6: per /64); past it 503 with Retry-After; 0: no limit"),
    NUM("limits", "handshakes_per_ip_per_second", CT_UINT, limits.handshakes_per_ip_per_second, L, "0", 0, 1000000,
        "N", "WebSocket upgrades and Socket.IO session opens per address per second; past it 429; 0: no limit"),
    NUM("limits", "handshake_burst", CT_UINT, limits.handshake_burst, L, "0", 0, 1000000, "N",
        "handshakes an address may make at once; 0: handshakes_per_ip_per_second"),
    NUM("limits", "messages_per_second", CT_UINT, limits.messages_per_second, 0, "0", 0, 1000000, "N",
        "per connection: raw WebSocket messages, Socket.IO packets; 0: no limit"),
    NUM("limits", "message_burst", CT_UINT, limits.message_burst, 0, "0", 0, 1000000, "N",
        "messages a connection may send at once; 0: messages_per_second"),
    ONE("limits", "message_limit_action", CT_ENUM, limits.message_drop, 0, "close", rate_actions, "close|drop",
        "past the message rate: close (WebSocket 1008, Socket.IO disconnect) or drop the excess"),
    NUM("limits", "max_dynamic_namespaces", CT_UINT, limits.max_dynamic_namespaces, 0, "10000", 1, 10000000, "N",
        "namespaces [namespace] patterns may create; past it new names get \"Invalid namespace\""),
    NUM("limits", "max_rooms_per_socket", CT_UINT, limits.max_rooms_per_socket, 0, "1000", 1, 1000000, "N",
        "rooms one socket may be in"),
    NUM("limits", "max_pending_acks", CT_UINT, limits.max_pending_acks, 0, "1000", 1, 1000000, "N",
        "acknowledgements awaited per socket"),

    ONE("log", "level", CT_ENUM, log.level, L, "info", log_levels, "error|warn|info|debug", "what is logged"),
    ONE("log", "format", CT_ENUM, log.format, L, "text", log_formats, "text|json", "one line per event, text or JSON"),

    BOOL("metrics", "enabled", metrics.enabled, L, "true", "serve Prometheus metrics at path"),
    STR("metrics", "path", metrics.path, CK_PATH, L, "/metrics", "PATH", "where the metrics are served"),

    STR("redis", "url", redis.url, CK_NONE, O | CF_SECRET, "", "URL",
        "join a cluster through Redis: redis://[[user]:password@]host[:port][/db], or through Redis "
        "Sentinel: redis+sentinel://SENTINEL[,SENTINEL...]/MASTER[/db], credentials as for redis://; "
        "rediss:// and rediss+sentinel:// for TLS; empty: off"),
    STR("redis", "key", redis.key, CK_NONE, 0, "socket.io", "KEY",
        "channel prefix, the same on every node (the adapters' key option)"),
    ONE("redis", "mode", CT_ENUM, redis.mode, 0, "classic", redis_adapters, "classic|sharded|streams",
        "how nodes meet: classic pub/sub, as @socket.io/redis-adapter's createAdapter; sharded pub/sub (Redis 7), "
        "as its createShardedAdapter; or Redis streams (Redis 6.2), as @socket.io/redis-streams-adapter, with "
        "connection state recovery across nodes"),
    BOOL("redis", "sharded", redis.sharded, 0, "false",
         "sharded pub/sub (Redis 7): with mode classic, the same as mode sharded; with mode streams, for its "
         "requests and answers (useShardedPubSub)"),
    ONE("redis", "subscription_mode", CT_ENUM, redis.subscription_mode, 0, "dynamic", redis_modes,
        "dynamic|static|dynamic-private", "sharded: a channel per room (dynamic), per namespace only, or per room "
        "and socket"),
    BOOL("redis", "degraded_start", redis.degraded_start, 0, "false",
         "start even when Redis cannot be reached (local only until it can) instead of failing"),
    STR("redis", "tls_ca", redis.tls_ca, CK_FILE, O, "", "FILE",
        "rediss: PEM CA certificates the servers' certificates must chain to; empty: the system's trust store"),
    STR("redis", "tls_cert", redis.tls_cert, CK_FILE, O, "", "FILE",
        "rediss: PEM client certificate chain, for servers that require one (mutual TLS); with tls_key"),
    STR("redis", "tls_key", redis.tls_key, CK_FILE, O, "", "FILE", "rediss: PEM private key of tls_cert"),
    STR("redis", "tls_server_name", redis.tls_server_name, CK_HOST, O, "", "NAME",
        "rediss: the name every server's certificate must carry (and SNI) instead of the host connected to; "
        "empty: that host"),
    BOOL("redis", "tls_insecure", redis.tls_insecure, 0, "false",
         "rediss: accept any certificate, unverified: for testing only (logged as a warning)"),
    STR("redis", "sentinel_user", redis.sentinel_user, CK_NONE, O, "", "NAME",
        "Sentinel: the ACL user the sentinels are asked as; with sentinel_password"),
    STR("redis", "sentinel_password", redis.sentinel_password, CK_NONE, O | CF_SECRET, "", "SECRET",
        "Sentinel: the password the sentinels require (their requirepass), apart from the data servers' "
        "in url; empty: no AUTH"),
    STR("redis", "stream_name", redis.stream_name, CK_NONE, 0, "socket.io", "NAME",
        "streams: the stream, the same on every node (streamName)"),
    NUM("redis", "stream_count", CT_UINT, redis.stream_count, 0, "1", 1, 1024, "N",
        "streams: namespaces spread over N streams, NAME-0 to NAME-(N-1) (streamCount)"),
    NUM("redis", "max_len", CT_UINT, redis.max_len, 0, "10000", 1, 100000000, "N",
        "streams: entries a stream keeps, about (maxLen); Redis memory, and how far back recovery reaches"),
    NUM("redis", "read_count", CT_UINT, redis.read_count, 0, "100", 1, 100000, "N",
        "streams: entries per read (readCount)"),
    NUM("redis", "block_time", CT_MS, redis.block_ms, 0, "5s", 100, 10 * MIN, "DURATION",
        "streams: how long one blocking read waits for entries (blockTimeInMs)"),
    STR("redis", "session_key_prefix", redis.session_key_prefix, CK_NONE, O, "sio:session:", "PREFIX",
        "streams: the prefix of the keys sessions are kept under for recovery (sessionKeyPrefix)"),

    BOOL("admin", "enabled", admin.enabled, 0, "false",
         "serve the Socket.IO Admin UI dashboard's namespace (what @socket.io/admin-ui's instrument() does)"),
    STR("admin", "namespace", admin.nsp, CK_PATH, 0, "/admin", "NSP", "the admin namespace the dashboard connects to"),
    STR("admin", "username", admin.username, CK_NONE, O, "", "NAME",
        "the dashboard's login; empty: no login (anyone reaching the namespace administers the server)"),
    STR("admin", "password_hash", admin.password_hash, CK_NONE, O | CF_SECRET, "", "HASH",
        "bcrypt hash ($2a$/$2b$/$2y$) of the login's password, e.g. from htpasswd -nbBC 10 '' PASSWORD"),
    BOOL("admin", "readonly", admin.readonly, 0, "false", "the dashboard may look but not emit, join, leave or disconnect"),
    ONE("admin", "mode", CT_ENUM, admin.mode, 0, "development", admin_modes, "development|production",
        "development: every socket, room and event is reported; production: aggregated statistics only"),
    STR("admin", "server_id", admin.server_id, CK_NONE, O, "", "ID",
        "the server's name on the dashboard; empty: the host name (each worker: host#pid#index)"),
};
const size_t cfg_nsettings = sizeof cfg_settings / sizeof cfg_settings[0];

/* The demo: what examples/chat.c and the built-in page do, as routes. */
const char server_config_default_text[] =
    "# The built-in routes, used when no configuration file is given.\n"
    "[route \"serverMsg\"]\n"
    "emit = clientMsg\n"
    "to = others\n"
    "\n"
    "[route \"join\"]\n"
    "to = none\n"
    "ack = \"ok\"\n"
    "\n"
    "[route \"leave\"]\n"
    "to = none\n"
    "ack = \"ok\"\n"
    "\n"
    "[route \"toRoom\"]\n"
    "emit = roomMsg\n"
    "to = room-arg:0\n"
    "data = arg:1\n";

/* Older flag names, kept so existing scripts run. --ping-interval kept its unit: a bare number is ms. */
const cfg_alias cfg_aliases[] = {
    {"ws-echo", "websocket.echo_path", 0},
    {"ws-broadcast", "websocket.broadcast_path", 0},
    {"max-message-size", "websocket.max_message_size", 0},
    {"send-buffer-limit", "websocket.send_buffer_limit", 0},
    {"ping-interval", "websocket.ping_interval", 1},
    {"deflate", "websocket.deflate", 0},
    {"origins", "cors.origins", 0},
    {"redis", "redis.url", 0},
    {NULL, NULL, 0},
};

/* ---- names ---- */

int cfg_errf(char *err, size_t cap, const char *fmt, ...) {
  if (err && cap) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
  }
  return WSIO_EINVAL;
}

int cfg_find(const char *section, const char *key) {
  for (size_t i = 0; i < cfg_nsettings; i++)
    if (strcmp(cfg_settings[i].section, section) == 0 && strcmp(cfg_settings[i].key, key) == 0) return (int)i;
  return -1;
}

int cfg_find_dotted(const char *name) {
  const char *dot = strchr(name, '.');
  if (!dot || (size_t)(dot - name) >= 32) return -1;
  char sec[32];
  memcpy(sec, name, (size_t)(dot - name));
  sec[dot - name] = 0;
  return cfg_find(sec, dot + 1);
}

static void mechanical(const cfg_setting *s, const char *prefix, int sep, int upper, char *out, size_t cap) {
  char raw[96];
  if (strcmp(s->section, "server") == 0) snprintf(raw, sizeof raw, "%s", s->key);
  else snprintf(raw, sizeof raw, "%s_%s", s->section, s->key);
  size_t o = (size_t)snprintf(out, cap, "%s", prefix);
  for (const char *p = raw; *p && o + 1 < cap; p++) out[o++] = *p == '_' ? (char)sep : upper ? (char)toupper(*p) : *p;
  if (o < cap) out[o] = 0;
}

void cfg_flag_name(const cfg_setting *s, char *out, size_t cap) { mechanical(s, "--", '-', 0, out, cap); }
void cfg_env_name(const cfg_setting *s, char *out, size_t cap) { mechanical(s, "WSIO_", '_', 1, out, cap); }

const char *server_config_where(const server_config *c, const char *name, char *out, size_t cap) {
  int i = cfg_find_dotted(name);
  if (i < 0 || !c->origin) return NULL;
  const struct server_config_origin *o = &c->origin[i];
  char n[96];
  switch (o->source) {
    case SERVER_CONFIG_FILE: snprintf(out, cap, "%s:%u", c->file ? c->file : "(built-in)", o->line); break;
    case SERVER_CONFIG_ENV: cfg_env_name(&cfg_settings[i], n, sizeof n); snprintf(out, cap, "env %s", n); break;
    case SERVER_CONFIG_FLAG: cfg_flag_name(&cfg_settings[i], n, sizeof n); snprintf(out, cap, "flag %s", n); break;
    default: snprintf(out, cap, "default"); break;
  }
  return out;
}

/* ---- init, free ---- */

int server_config_init(server_config *c) {
  memset(c, 0, sizeof *c);
  c->origin = calloc(cfg_nsettings, sizeof *c->origin);
  if (!c->origin) return WSIO_ENOMEM;
  for (size_t i = 0; i < cfg_nsettings; i++) {
    char why[160];
    int rc = cfg_set(c, &cfg_settings[i], cfg_settings[i].def, why, sizeof why);
    if (rc) {
      server_config_free(c);
      return rc; /* only ENOMEM: the defaults are tested to parse */
    }
  }
  return 0;
}

void server_config_free(server_config *c) {
  if (c->origin)
    for (size_t i = 0; i < cfg_nsettings; i++) cfg_clear(c, &cfg_settings[i]);
  for (size_t i = 0; i < c->nroutes; i++) {
    server_route *r = &c->routes[i];
    free(r->event);
    free(r->nsp);
    free(r->emit);
    free(r->room);
    free(r->ack);
  }
  free(c->routes);
  for (size_t i = 0; i < c->nnamespaces; i++) free(c->namespaces[i].name);
  free(c->namespaces);
  free(c->file);
  free(c->origin);
  memset(c, 0, sizeof *c);
}

/* ---- the command line and the environment ---- */

/* "wsio.conf:12: [socketio] ping_interval: ", "WSIO_PORT: ", "--port: " or "[tls] cert: " for a setting's
 * current value. */
static void where_prefix(const server_config *c, size_t i, char *out, size_t cap) {
  const cfg_setting *s = &cfg_settings[i];
  const struct server_config_origin *o = &c->origin[i];
  char n[96];
  switch (o->source) {
    case SERVER_CONFIG_FILE:
      snprintf(out, cap, "%s:%u: [%s] %s: ", c->file ? c->file : "(built-in)", o->line, s->section, s->key);
      break;
    case SERVER_CONFIG_ENV: cfg_env_name(s, n, sizeof n); snprintf(out, cap, "%s: ", n); break;
    case SERVER_CONFIG_FLAG: cfg_flag_name(s, n, sizeof n); snprintf(out, cap, "%s: ", n); break;
    default: snprintf(out, cap, "[%s] %s: ", s->section, s->key); break;
  }
}

/* Sets setting i from a flag or the environment; `name` is how the user spelled it. */
static int set_from(server_config *c, size_t i, server_config_source src, const char *name, const char *v,
                    int bare_ms, char *err, size_t cap) {
  char why[320], ms[40];
  if (bare_ms && *v && strspn(v, "0123456789") == strlen(v) && strlen(v) < 20) {
    snprintf(ms, sizeof ms, "%sms", v);
    v = ms;
  }
  int rc = cfg_set(c, &cfg_settings[i], v, why, sizeof why);
  if (rc == WSIO_EINVAL) return cfg_errf(err, cap, "%s: %s", name, why);
  if (rc) return rc;
  c->origin[i] = (struct server_config_origin){src, 0, NULL};
  return 0;
}

typedef struct flag_value {
  size_t setting;
  const char *name, *value;
  int bare_ms;
} flag_value;

static int lookup_flag(const char *f, size_t *setting, int *bare_ms) {
  char n[96];
  for (size_t i = 0; i < cfg_nsettings; i++) {
    cfg_flag_name(&cfg_settings[i], n, sizeof n);
    if (strcmp(n + 2, f) == 0) {
      *setting = i;
      *bare_ms = 0;
      return 1;
    }
  }
  for (const cfg_alias *a = cfg_aliases; a->flag; a++) {
    if (strcmp(a->flag, f) == 0) {
      *setting = (size_t)cfg_find_dotted(a->name);
      *bare_ms = a->bare_ms;
      return 1;
    }
  }
  return 0;
}

static int unknown_flag(const char *arg, char *err, size_t cap) {
  static const char *const actions[] = {"--config", "--check-config", "--help", "--version", NULL};
  char shown[96], word[96];
  cfg_show(shown, sizeof shown, arg);
  snprintf(word, sizeof word, "%.*s", (int)strcspn(arg, "="), arg);
  cfg_near near;
  cfg_near_init(&near);
  char cands[sizeof cfg_settings / sizeof cfg_settings[0]][64];
  for (size_t i = 0; i < cfg_nsettings; i++) {
    cfg_flag_name(&cfg_settings[i], cands[i], sizeof cands[i]);
    cfg_near_offer(&near, word, cands[i]);
  }
  for (const char *const *a = actions; *a; a++) cfg_near_offer(&near, word, *a);
  const char *best = cfg_near_best(&near, word);
  if (best) return cfg_errf(err, cap, "unknown flag %s (did you mean %s?)", shown, best);
  return cfg_errf(err, cap, "unknown flag %s (see wsio --help)", shown);
}

static int is_bool_word(const char *v) {
  static const char *const w[] = {"true", "false", "yes", "no", "on", "off", NULL};
  for (const char *const *p = w; *p; p++)
    if (strcasecmp(v, *p) == 0) return 1;
  return 0;
}

/* Pass over argv without applying anything: unknown flags and missing values are reported before the
 * file is read. Fills vals (argc entries at most) and the --config path. */
static int scan_flags(server_config *c, int argc, char **argv, flag_value *vals, size_t *nvals, const char **config,
                      char *err, size_t cap) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--check-config") == 0) {
      c->action |= SERVER_CONFIG_CHECK;
      continue;
    }
    if (strncmp(a, "--", 2) != 0 || !a[2]) {
      char shown[96];
      cfg_show(shown, sizeof shown, a);
      return cfg_errf(err, cap, "unexpected argument %s (flags start with --; see wsio --help)", shown);
    }
    const char *eq = strchr(a, '=');
    char name[96];
    snprintf(name, sizeof name, "%.*s", (int)(eq ? (size_t)(eq - a) : strlen(a)), a);
    const char *value = eq ? eq + 1 : NULL;
    size_t setting = 0;
    int bare_ms = 0, is_config = strcmp(name, "--config") == 0;
    if (!is_config && !lookup_flag(name + 2, &setting, &bare_ms)) return unknown_flag(a, err, cap);
    if (!value) {
      if (!is_config && cfg_settings[setting].type == CT_BOOL) {
        value = (i + 1 < argc && is_bool_word(argv[i + 1])) ? argv[++i] : "true";
      } else if (i + 1 < argc) {
        value = argv[++i];
      } else {
        return cfg_errf(err, cap, "%s: needs a value", name);
      }
    }
    if (is_config) {
      if (!*value) return cfg_errf(err, cap, "--config: needs a value");
      *config = value;
      continue;
    }
    vals[*nvals] = (flag_value){setting, a, value, bare_ms};
    (*nvals)++;
  }
  return 0;
}

static int apply_env(server_config *c, char **envp, char *err, size_t cap) {
  char n[96];
  for (char **e = envp; e && *e; e++) {
    if (strncmp(*e, "WSIO_", 5) != 0) continue;
    const char *eq = strchr(*e, '=');
    size_t nl = eq ? (size_t)(eq - *e) : strlen(*e);
    if (nl == strlen("WSIO_CONFIG") && strncmp(*e, "WSIO_CONFIG", nl) == 0) continue;
    size_t i = 0;
    for (; i < cfg_nsettings; i++) {
      cfg_env_name(&cfg_settings[i], n, sizeof n);
      if (strlen(n) == nl && strncmp(n, *e, nl) == 0) break;
    }
    char name[96];
    snprintf(name, sizeof name, "%.*s", (int)(nl < 80 ? nl : 80), *e);
    if (i == cfg_nsettings) {
      cfg_near near;
      cfg_near_init(&near);
      char cands[sizeof cfg_settings / sizeof cfg_settings[0]][64];
      for (size_t k = 0; k < cfg_nsettings; k++) {
        cfg_env_name(&cfg_settings[k], cands[k], sizeof cands[k]);
        cfg_near_offer(&near, name, cands[k]);
      }
      cfg_near_offer(&near, name, "WSIO_CONFIG");
      const char *best = cfg_near_best(&near, name);
      if (best) return cfg_errf(err, cap, "unknown environment variable %s (did you mean %s?)", name, best);
      return cfg_errf(err, cap, "unknown environment variable %s (every WSIO_* variable must be a setting)", name);
    }
    int rc = set_from(c, i, SERVER_CONFIG_ENV, name, eq ? eq + 1 : "", 0, err, cap);
    if (rc) return rc;
  }
  return 0;
}

static int read_file(const char *path, char **text, size_t *len, char *err, size_t cap) {
  FILE *f = fopen(path, "rb");
  if (!f) return cfg_errf(err, cap, "%s: cannot open: %s", path, strerror(errno)), WSIO_EIO;
  enum { MAX = 1 << 20 };
  char *p = malloc(MAX + 1);
  if (!p) {
    fclose(f);
    return WSIO_ENOMEM;
  }
  size_t n = fread(p, 1, MAX + 1, f);
  int failed = ferror(f) ? errno : 0;
  fclose(f);
  if (failed) {
    free(p);
    return cfg_errf(err, cap, "%s: cannot read: %s", path, strerror(failed)), WSIO_EIO;
  }
  if (n > MAX) {
    free(p);
    return cfg_errf(err, cap, "%s: larger than 1 MiB", path);
  }
  *text = p;
  *len = n;
  return 0;
}

int server_config_load(server_config *c, int argc, char **argv, char **envp, char *err, size_t errcap) {
  if (err && errcap) err[0] = 0;
  int rc = server_config_init(c);
  if (rc) return rc;
  /* --help and --version answer even when the rest of the command line or the file is wrong. */
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) c->action |= SERVER_CONFIG_HELP;
    if (strcmp(argv[i], "--version") == 0) c->action |= SERVER_CONFIG_VERSION;
  }
  if (c->action) return 0;
  flag_value *vals = calloc(argc > 0 ? (size_t)argc : 1, sizeof *vals);
  size_t nvals = 0;
  const char *config = NULL;
  if (!vals) rc = WSIO_ENOMEM;
  if (!rc) rc = scan_flags(c, argc, argv, vals, &nvals, &config, err, errcap);
  if (!rc && !config)
    for (char **e = envp; e && *e; e++)
      if (strncmp(*e, "WSIO_CONFIG=", 12) == 0) config = *e + 12;
  if (!rc && config && *config) {
    char *text = NULL;
    size_t len = 0;
    rc = read_file(config, &text, &len, err, errcap);
    if (!rc) rc = server_config_parse(c, config, text, len, err, errcap);
    free(text);
  } else if (!rc) {
    rc = cfg_parse_text(c, "(built-in)", server_config_default_text, strlen(server_config_default_text),
                        SERVER_CONFIG_DEFAULT, err, errcap);
  }
  if (!rc) rc = apply_env(c, envp, err, errcap);
  for (size_t k = 0; !rc && k < nvals; k++) {
    char name[96];
    snprintf(name, sizeof name, "%.*s", (int)strcspn(vals[k].name, "="), vals[k].name);
    rc = set_from(c, vals[k].setting, SERVER_CONFIG_FLAG, name, vals[k].value, vals[k].bare_ms, err, errcap);
  }
  free(vals);
  if (!rc) rc = server_config_finish(c, err, errcap);
  if (rc) server_config_free(c);
  return rc;
}

/* ---- cross-checks ---- */

#define IDX(sec, key) ((size_t)cfg_find(sec, key))

static int fail_at(const server_config *c, size_t i, char *err, size_t cap, const char *fmt, const char *arg) {
  char pre[200], msg[400];
  where_prefix(c, i, pre, sizeof pre);
  snprintf(msg, sizeof msg, fmt, arg);
  return cfg_errf(err, cap, "%s%s", pre, msg);
}

static int check_fs(const server_config *c, char *err, size_t cap) {
  for (size_t i = 0; i < cfg_nsettings; i++) {
    const cfg_setting *s = &cfg_settings[i];
    if (s->type != CT_STR || (s->check != CK_FILE && s->check != CK_DIR)) continue;
    const char *path = *CFG_CFIELD(c, s, char *);
    if (!path) continue;
    struct stat st;
    char shown[96], what[300];
    cfg_show(shown, sizeof shown, path);
    if (stat(path, &st) != 0) {
      snprintf(what, sizeof what, "%s: %s", shown, strerror(errno));
      return fail_at(c, i, err, cap, "%s", what);
    }
    if (s->check == CK_DIR && !S_ISDIR(st.st_mode)) return fail_at(c, i, err, cap, "%s is not a directory", shown);
    if (s->check == CK_FILE && (S_ISDIR(st.st_mode) || access(path, R_OK) != 0))
      return fail_at(c, i, err, cap, "%s is not a readable file", shown);
  }
  return 0;
}

/* Two endpoints on one path: the second would never see a request. */
static int check_paths(const server_config *c, char *err, size_t cap) {
  static const char *const names[][2] = {{"socketio", "path"}, {"websocket", "echo_path"},
                                         {"websocket", "broadcast_path"}, {"metrics", "path"}};
  enum { N = sizeof names / sizeof names[0] };
  const char *paths[N];
  for (size_t k = 0; k < N; k++) paths[k] = *CFG_CFIELD(c, &cfg_settings[IDX(names[k][0], names[k][1])], char *);
  if (!c->metrics.enabled) paths[N - 1] = NULL;
  for (size_t a = 0; a < N; a++) {
    for (size_t b = a + 1; b < N; b++) {
      if (!paths[a] || !paths[b] || strcmp(paths[a], paths[b]) != 0) continue;
      char other[64];
      snprintf(other, sizeof other, "[%s] %s", names[a][0], names[a][1]);
      return fail_at(c, IDX(names[b][0], names[b][1]), err, cap, "the same path as %s", other);
    }
  }
  return 0;
}

/* [redis] settings the URL does not use are mistakes, refused here as wsio_io_redis would refuse them: a TLS
 * setting with redis:// would leave the traffic in clear while the file says otherwise. */
static int check_redis(const server_config *c, char *err, size_t cap) {
  static const char *const tls_keys[] = {"tls_ca", "tls_cert", "tls_key", "tls_server_name", "tls_insecure"};
  const char *url = c->redis.url ? c->redis.url : "";
  int tls = strncmp(url, "rediss://", 9) == 0 || strncmp(url, "rediss+sentinel://", 18) == 0;
  int sentinel = strncmp(url, "redis+sentinel://", 17) == 0 || strncmp(url, "rediss+sentinel://", 18) == 0;
  const void *tls_set[] = {c->redis.tls_ca, c->redis.tls_cert, c->redis.tls_key, c->redis.tls_server_name,
                           c->redis.tls_insecure ? "" : NULL};
  for (size_t i = 0; i < sizeof tls_keys / sizeof *tls_keys; i++)
    if (tls_set[i] && !tls)
      return fail_at(c, IDX("redis", tls_keys[i]), err, cap, "%s",
                     "needs [redis] url to be rediss:// or rediss+sentinel:// (TLS)");
  if (!c->redis.tls_cert != !c->redis.tls_key)
    return fail_at(c, IDX("redis", c->redis.tls_cert ? "tls_cert" : "tls_key"), err, cap, "%s",
                   "[redis] tls_cert and tls_key go together (set both or neither)");
  if ((c->redis.sentinel_user || c->redis.sentinel_password) && !sentinel)
    return fail_at(c, IDX("redis", c->redis.sentinel_user ? "sentinel_user" : "sentinel_password"), err, cap, "%s",
                   "needs [redis] url to be redis+sentinel:// or rediss+sentinel://");
  if (c->redis.sentinel_user && !c->redis.sentinel_password)
    return fail_at(c, IDX("redis", "sentinel_user"), err, cap, "%s", "needs [redis] sentinel_password");
  return 0;
}

static int nsp_declared(const server_config *c, const char *nsp) {
  if (strcmp(nsp, "/") == 0) return 1;
  for (size_t i = 0; i < c->nnamespaces; i++)
    if (strcmp(c->namespaces[i].name, nsp) == 0 || server_config_match(c->namespaces[i].name, nsp)) return 1;
  return 0;
}

int server_config_finish(server_config *c, char *err, size_t cap) {
  if (!c->tls.cert != !c->tls.key) {
    int set = c->tls.cert ? 1 : 0;
    return fail_at(c, IDX("tls", set ? "cert" : "key"), err, cap, "set without [tls] %s (set both or neither)",
                   set ? "key" : "cert");
  }
  int rc = check_fs(c, err, cap);
  if (rc) return rc;
  if (c->cors.credentials && c->cors.origins.n == 1 && strcmp(c->cors.origins.v[0], "*") == 0)
    return fail_at(c, IDX("cors", "credentials"), err, cap, "%s",
                   "true needs [cors] origins to list origins: browsers refuse credentials with *");
  int have = (c->auth.jwt_secret ? SERVER_JWT_HS256 : 0) |
             (c->auth.jwt_public_key ? SERVER_JWT_RS256 | SERVER_JWT_ES256 : 0);
  if ((c->auth.jwt_algorithms & SERVER_JWT_HS256) && !c->auth.jwt_secret)
    return fail_at(c, IDX("auth", "jwt_algorithms"), err, cap, "%s", "HS256 needs [auth] jwt_secret");
  if ((c->auth.jwt_algorithms & (SERVER_JWT_RS256 | SERVER_JWT_ES256)) && !c->auth.jwt_public_key)
    return fail_at(c, IDX("auth", "jwt_algorithms"), err, cap, "%s", "RS256 and ES256 need [auth] jwt_public_key");
  if (c->auth.jwt_required && !have)
    return fail_at(c, IDX("auth", "jwt_required"), err, cap, "%s",
                   "true needs [auth] jwt_secret or jwt_public_key to check tokens with");
  for (size_t i = 0; i < c->rooms.allowed.n; i++)
    if (strncmp(c->rooms.allowed.v[i], "claims:", 7) == 0 && !have)
      return fail_at(c, IDX("rooms", "allowed"), err, cap, "%s",
                     "claims: needs [auth] jwt_secret or jwt_public_key to read tokens");
  if ((rc = check_paths(c, err, cap)) != 0) return rc;
  if ((rc = check_redis(c, err, cap)) != 0) return rc;
  if (!c->admin.username != !c->admin.password_hash)
    return fail_at(c, IDX("admin", c->admin.username ? "username" : "password_hash"), err, cap, "%s",
                   "[admin] username and password_hash go together (set both or neither)");
  if (c->admin.enabled && nsp_declared(c, c->admin.nsp) && strcmp(c->admin.nsp, "/") != 0)
    return fail_at(c, IDX("admin", "namespace"), err, cap, "%s is also a [namespace]: the admin namespace is its own",
                   c->admin.nsp);
  if (c->admin.enabled && strcmp(c->admin.nsp, "/") == 0)
    return fail_at(c, IDX("admin", "namespace"), err, cap, "%s", "/ is the main namespace: pick another, e.g. /admin");
  for (size_t i = 0; i < c->nroutes; i++) {
    const server_route *r = &c->routes[i];
    if (!nsp_declared(c, r->nsp)) {
      char shown[96], ev[96];
      cfg_show(shown, sizeof shown, r->nsp);
      cfg_show(ev, sizeof ev, r->event);
      return cfg_errf(err, cap, "%s:%u: [route %s] namespace: %s is not declared (add [namespace %s])",
                      c->file ? c->file : "(built-in)", r->nsp_line ? r->nsp_line : r->line, ev, shown, shown);
    }
  }
  /* Derived values: origins stay "default", the dump shows what will run. */
  if (c->server.workers == 0) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    c->server.workers = n < 1 ? 1 : n > 1024 ? 1024 : (unsigned)n;
    c->origin[IDX("server", "workers")].derived = "auto: the CPU cores";
  }
  if (c->auth.jwt_algorithms == 0 && have) {
    c->auth.jwt_algorithms = have;
    c->origin[IDX("auth", "jwt_algorithms")].derived = "those the keys allow";
  }
  return 0;
}
