/* wsio — the standalone server program. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "api/api.h"
#include "server/page.h"
#include "util/log.h"
#include "wsio.h"

typedef struct options {
  const char *host;
  int port;
  const char *web_root;
  const char *echo_path;
  const char *broadcast_path;
  const char *tls_cert, *tls_key;
  const char *origins;
  size_t max_message;
  size_t send_limit;
  uint32_t ping_ms;
  size_t max_connections;
  wsio_deflate_mode deflate;
  int log_level;
} options;

static void usage(FILE *f) {
  fprintf(f,
          "Usage: wsio [options]\n"
          "\n"
          "A realtime WebSocket server.\n"
          "\n"
          "  --host HOST               address to listen on (default 0.0.0.0)\n"
          "  --port PORT               port to listen on, 0 for any free one (default 3000)\n"
          "  --web-root DIR            serve static files from DIR (default: a built-in page at /)\n"
          "  --ws-echo PATH            WebSocket echo endpoint at PATH (default /echo)\n"
          "  --ws-broadcast PATH       WebSocket endpoint at PATH where every message goes to every client\n"
          "  --max-message-size BYTES  largest message accepted, after inflate (default 16777216)\n"
          "  --send-buffer-limit BYTES unsent bytes per connection before it is closed with 1008 (default 16777216)\n"
          "  --ping-interval MS        keepalive ping interval (default 30000)\n"
          "  --deflate MODE            permessage-deflate: shared, context or off (default shared)\n"
          "  --origins LIST            comma list of allowed Origin values (default: any)\n"
          "  --max-connections N       connections accepted at once (default 100000)\n"
          "  --tls-cert PEM            certificate chain; with --tls-key serves wss:// and https://\n"
          "  --tls-key PEM             private key\n"
          "  --log-level LEVEL         error, warn, info or debug (default info)\n"
          "  --help                    this text\n"
          "  --version                 the version\n");
}

static void bad(const char *flag, const char *value, const char *why) {
  fprintf(stderr, "wsio: invalid value '%s' for %s: %s\n", value, flag, why);
  fprintf(stderr, "Try 'wsio --help'.\n");
  exit(2);
}

static unsigned long long parse_num(const char *flag, const char *v, unsigned long long min, unsigned long long max) {
  char *end;
  errno = 0;
  if (!*v || *v == '-') bad(flag, v, "expected a non-negative whole number");
  unsigned long long n = strtoull(v, &end, 10);
  if (errno || *end) bad(flag, v, "expected a whole number");
  if (n < min || n > max) {
    char why[96];
    snprintf(why, sizeof why, "must be between %llu and %llu", min, max);
    bad(flag, v, why);
  }
  return n;
}

static void parse(int argc, char **argv, options *o) {
  enum { O_HOST = 256, O_PORT, O_ROOT, O_ECHO, O_BCAST, O_MAXMSG, O_SENDLIM, O_PING, O_DEFLATE, O_ORIGINS,
         O_MAXCONN, O_CERT, O_KEY, O_LOG, O_HELP, O_VERSION };
  static const struct option longopts[] = {
      {"host", required_argument, 0, O_HOST},
      {"port", required_argument, 0, O_PORT},
      {"web-root", required_argument, 0, O_ROOT},
      {"ws-echo", required_argument, 0, O_ECHO},
      {"ws-broadcast", required_argument, 0, O_BCAST},
      {"max-message-size", required_argument, 0, O_MAXMSG},
      {"send-buffer-limit", required_argument, 0, O_SENDLIM},
      {"ping-interval", required_argument, 0, O_PING},
      {"deflate", required_argument, 0, O_DEFLATE},
      {"origins", required_argument, 0, O_ORIGINS},
      {"max-connections", required_argument, 0, O_MAXCONN},
      {"tls-cert", required_argument, 0, O_CERT},
      {"tls-key", required_argument, 0, O_KEY},
      {"log-level", required_argument, 0, O_LOG},
      {"help", no_argument, 0, O_HELP},
      {"version", no_argument, 0, O_VERSION},
      {0, 0, 0, 0},
  };
  opterr = 0;
  int ch;
  while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    switch (ch) {
      case O_HOST: o->host = optarg; break;
      case O_PORT: o->port = (int)parse_num("--port", optarg, 0, 65535); break;
      case O_ROOT: o->web_root = optarg; break;
      case O_ECHO:
      case O_BCAST:
        if (optarg[0] != '/') bad(ch == O_ECHO ? "--ws-echo" : "--ws-broadcast", optarg, "a path starts with '/'");
        if (ch == O_ECHO) o->echo_path = optarg;
        else o->broadcast_path = optarg;
        break;
      case O_MAXMSG: o->max_message = parse_num("--max-message-size", optarg, 1, 1ull << 31); break;
      case O_SENDLIM: o->send_limit = parse_num("--send-buffer-limit", optarg, 1024, 1ull << 31); break;
      case O_PING: o->ping_ms = (uint32_t)parse_num("--ping-interval", optarg, 1000, 3600000); break;
      case O_DEFLATE:
        if (!strcmp(optarg, "shared")) o->deflate = WSIO_DEFLATE_SHARED;
        else if (!strcmp(optarg, "context")) o->deflate = WSIO_DEFLATE_CONTEXT;
        else if (!strcmp(optarg, "off")) o->deflate = WSIO_DEFLATE_OFF;
        else bad("--deflate", optarg, "expected shared, context or off");
        break;
      case O_ORIGINS: o->origins = optarg; break;
      case O_MAXCONN: o->max_connections = parse_num("--max-connections", optarg, 1, 10000000); break;
      case O_CERT: o->tls_cert = optarg; break;
      case O_KEY: o->tls_key = optarg; break;
      case O_LOG:
        if (!strcmp(optarg, "error")) o->log_level = LOG_ERROR;
        else if (!strcmp(optarg, "warn")) o->log_level = LOG_WARN;
        else if (!strcmp(optarg, "info")) o->log_level = LOG_INFO;
        else if (!strcmp(optarg, "debug")) o->log_level = LOG_DEBUG;
        else bad("--log-level", optarg, "expected error, warn, info or debug");
        break;
      case O_HELP: usage(stdout); exit(0);
      case O_VERSION: printf("wsio %s\n", wsio_version()); exit(0);
      default:
        if (optopt) fprintf(stderr, "wsio: option '%s' needs a value\n", argv[optind - 1]);
        else fprintf(stderr, "wsio: unknown option '%s'\n", argv[optind - 1]);
        fprintf(stderr, "Try 'wsio --help'.\n");
        exit(2);
    }
  }
  if (optind < argc) {
    fprintf(stderr, "wsio: unexpected argument '%s'\nTry 'wsio --help'.\n", argv[optind]);
    exit(2);
  }
  if (!o->tls_cert != !o->tls_key) {
    fprintf(stderr, "wsio: --tls-cert and --tls-key go together\n");
    exit(2);
  }
}

/* ---- endpoints ---- */

static void echo_message(wsio_ws *ws, wsio_opcode op, const void *data, size_t len) {
  wsio_ws_send(ws, op, data, len, 0);
}

static const char *broadcast_path;

/* Encoded once, queued to every client of the endpoint; a client that can't keep up misses messages
 * rather than growing the server's memory. */
static void broadcast_message(wsio_ws *ws, wsio_opcode op, const void *data, size_t len) {
  wsio_server *s = wsio_ws_endpoint_user(ws);
  wsio_msg *m = wsio_msg_new(op, data, len);
  if (!m) return;
  wsio_server_publish(s, broadcast_path, m, NULL, WSIO_SEND_DROPPABLE);
  wsio_msg_unref(m);
}

static void raise_fd_limit(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

int main(int argc, char **argv) {
  options o = {
      .host = "0.0.0.0",
      .port = 3000,
      .echo_path = "/echo",
      .max_message = 16u << 20, /* the Autobahn suite's largest messages */
      .send_limit = 16u << 20,
      .deflate = WSIO_DEFLATE_SHARED,
      .log_level = LOG_INFO,
  };
  parse(argc, argv, &o);
  raise_fd_limit();

  wsio_server_config sc = {
      .web_root = o.web_root,
      .tls_cert = o.tls_cert,
      .tls_key = o.tls_key,
      .max_connections = o.max_connections,
      .log_level = o.log_level,
  };
  log_level = o.log_level;
  wsio_server *s = wsio_server_new(&sc);
  if (!s) {
    fprintf(stderr, "wsio: could not start (see the errors above)\n");
    return 1;
  }
  if (!o.web_root) wsio_server_set_page(s, "/", "text/html; charset=utf-8", server_page_html, strlen(server_page_html));

  wsio_ws_config wc = {
      .max_message_size = o.max_message,
      .send_buffer_limit = o.send_limit,
      .ping_interval_ms = o.ping_ms,
      .deflate = o.deflate,
      .origins = o.origins,
      .user = s,
  };
  wsio_ws_handlers echo = {.on_message = echo_message};
  int rc = wsio_server_ws(s, o.echo_path, &echo, &wc);
  if (rc == 0 && o.broadcast_path) {
    wsio_ws_handlers bcast = {.on_message = broadcast_message};
    broadcast_path = o.broadcast_path;
    rc = wsio_server_ws(s, o.broadcast_path, &bcast, &wc);
  }
  if (rc != 0) {
    fprintf(stderr, "wsio: endpoint: %s\n", wsio_strerror(rc));
    wsio_server_free(s);
    return 2;
  }
  rc = wsio_server_listen(s, o.host, o.port);
  if (rc != 0) {
    fprintf(stderr, "wsio: cannot listen on %s:%d: %s\n", o.host, o.port, wsio_strerror(rc));
    wsio_server_free(s);
    return 1;
  }
  wsio_server_run(s, 1);
  wsio_server_free(s);
  log_info("stopped");
  return 0;
}
