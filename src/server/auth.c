#include "server/auth.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/log.h"

int srv_auth_new(const server_config *cfg, jwt_verifier **out, char *err, size_t errcap) {
  *out = NULL;
  if (!cfg->auth.jwt_secret && !cfg->auth.jwt_public_key) return 0;
  jwt_config jc;
  jwt_config_init(&jc);
  if (cfg->auth.jwt_secret) {
    jc.secret = cfg->auth.jwt_secret;
    jc.secret_len = strlen(cfg->auth.jwt_secret);
  }
  jc.public_key_file = cfg->auth.jwt_public_key;
  /* SERVER_JWT_* and JWT_ALG_* share their bits. Left unset, the configuration allows RS256 and ES256 for any
   * public key; the verifier narrows that to the one its key type implies (0), or an RSA key would be refused
   * for not being P-256. */
  char where[16];
  const char *w = server_config_where(cfg, "auth.jwt_algorithms", where, sizeof where);
  jc.algorithms = w && strcmp(w, "default") == 0 ? 0 : cfg->auth.jwt_algorithms;
  jc.audience = cfg->auth.jwt_audience;
  jc.issuer = cfg->auth.jwt_issuer;
  *out = jwt_verifier_new(&jc, err, errcap);
  return *out ? 0 : WSIO_EINVAL;
}

static int token_of(wsio_socket *s, char *out, size_t cap) {
  const wsio_handshake *hs = wsio_socket_handshake(s);
  json_t *auth = json_loads(hs->auth, 0, NULL);
  const char *t = json_string_value(json_object_get(auth, "token"));
  int n = -1;
  if (t && strlen(t) < cap) {
    strcpy(out, t);
    n = (int)strlen(t);
  }
  json_decref(auth);
  if (n >= 0) return n;
  const char *h = wsio_socket_header(s, "authorization");
  if (h && strncasecmp(h, "Bearer ", 7) == 0 && strlen(h + 7) < cap) {
    strcpy(out, h + 7);
    return (int)strlen(out);
  }
  return -1;
}

void srv_auth_middleware(wsio_socket *s, wsio_next *next, void *ud) {
  srv_app *app = ud;
  if (!app->jwt) {
    wsio_next_ok(next);
    return;
  }
  char token[JWT_MAX_TOKEN + 1];
  int n = token_of(s, token, sizeof token);
  if (n < 0) {
    if (app->cfg->auth.jwt_required) {
      app->metrics.auth_rejected++;
      wsio_next_error(next, "unauthorized", "{\"reason\":\"a token is required (auth.token)\"}");
    } else {
      wsio_next_ok(next);
    }
    return;
  }
  srv_socket *st = calloc(1, sizeof *st);
  const char *why = NULL;
  int rc = st ? jwt_verify(app->jwt, token, (size_t)n, (int64_t)time(NULL), &st->claims, &why) : WSIO_ENOMEM;
  if (rc != 0) {
    free(st);
    app->metrics.auth_rejected++;
    char data[160];
    snprintf(data, sizeof data, "{\"reason\":\"%s\"}", why ? why : jwt_strerror(rc));
    log_debug("auth: refused a connection: %s", why ? why : jwt_strerror(rc));
    wsio_next_error(next, "unauthorized", data);
    return;
  }
  st->claims_json = json_dumps(st->claims.payload, JSON_COMPACT);
  srv_socket_release(s); /* a socket joins one namespace; be safe against a second middleware pass */
  wsio_socket_set_data(s, st);
  wsio_next_ok(next);
}

int srv_auth_claim_rooms(wsio_socket *s, const char *field, const char *room, void *ud) {
  (void)ud;
  srv_socket *st = wsio_socket_data(s);
  if (!st || !st->claims.payload) return 0;
  const char *patterns[64];
  int n = jwt_claims_strings(&st->claims, field, patterns, 64);
  for (int i = 0; i < n && i < 64; i++)
    if (server_config_match(patterns[i], room)) return 1;
  return 0;
}

srv_socket *srv_socket_get(wsio_socket *s) {
  srv_socket *st = wsio_socket_data(s);
  if (!st && (st = calloc(1, sizeof *st)) != NULL) wsio_socket_set_data(s, st);
  return st;
}

const char *srv_auth_claims_json(wsio_socket *s) {
  srv_socket *st = wsio_socket_data(s);
  return st ? st->claims_json : NULL;
}

void srv_socket_release(wsio_socket *s) {
  srv_socket *st = wsio_socket_data(s);
  if (!st) return;
  jwt_claims_free(&st->claims);
  free(st->claims_json);
  free(st);
  wsio_socket_set_data(s, NULL);
}
