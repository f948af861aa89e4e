/* The configuration file: INI-style lines, sections, named sections for routes and namespaces. One pass,
 * one line at a time; the first error stops it and names the line. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/config_internal.h"
#include "sio/json.h"
#include "util/utf8.h"
#include "wsio.h"

enum { SEC_NONE, SEC_PLAIN, SEC_ROUTE, SEC_NSP };

static const char *const route_keys[] = {"namespace", "emit", "to", "data", "ack", NULL};

typedef struct parser {
  server_config *c;
  const char *name;
  char *err;
  size_t cap;
  unsigned line;
  int kind;
  char section[16];
  size_t route;           /* index in c->routes */
  unsigned route_seen[5]; /* line where each of route_keys was set */
  unsigned *seen;         /* per setting: line where this text set it */
  server_config_source source;
} parser;

static int fail(parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(parser *p, const char *fmt, ...) {
  char msg[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return cfg_errf(p->err, p->cap, "%s:%u: %s", p->name, p->line, msg);
}

static int blank(char ch) { return ch == ' ' || ch == '\t'; }

/* A "quoted string" starting at *s (on the quote), within [*s, end). Unescapes into a new string. Returns
 * 0 and moves *s past the closing quote, or an error naming the line. */
static int quoted(parser *p, const char **s, const char *end, const char *ctx, char **out) {
  const char *q = *s + 1;
  char *v = malloc((size_t)(end - q) + 1);
  size_t n = 0;
  if (!v) return WSIO_ENOMEM;
  for (; q < end && *q != '"'; q++) {
    if (*q != '\\') {
      v[n++] = *q;
      continue;
    }
    if (++q == end) break;
    switch (*q) {
      case '"': v[n++] = '"'; break;
      case '\\': v[n++] = '\\'; break;
      case 'n': v[n++] = '\n'; break;
      case 't': v[n++] = '\t'; break;
      default:
        free(v);
        return fail(p, "%sunknown escape \\%c in a string (use \\\" \\\\ \\n or \\t)", ctx,
                    isprint((unsigned char)*q) ? *q : '?');
    }
  }
  if (q >= end) {
    free(v);
    return fail(p, "%sunterminated string (a closing \" is missing)", ctx);
  }
  v[n] = 0;
  *s = q + 1;
  *out = v;
  return 0;
}

/* After a value or header: only blanks or a comment may follow. */
static int rest_is_empty(const char *s, const char *end) {
  while (s < end && blank(*s)) s++;
  return s == end || *s == '#';
}

/* ---- sections ---- */

static int header(parser *p, const char *s, const char *end) {
  server_config *c = p->c;
  s++;
  while (s < end && blank(*s)) s++;
  const char *w = s;
  while (s < end && (isalnum((unsigned char)*s) || *s == '_' || *s == '-')) s++;
  char word[32];
  snprintf(word, sizeof word, "%.*s", (int)(s - w < 31 ? s - w : 31), w);
  while (s < end && blank(*s)) s++;
  char *sub = NULL;
  if (s < end && *s == '"') {
    int rc = quoted(p, &s, end, "", &sub);
    if (rc) return rc;
    while (s < end && blank(*s)) s++;
  }
  if (!*word || s >= end || *s != ']' || !rest_is_empty(s + 1, end)) {
    free(sub);
    return fail(p, "a section header is [name] or [name \"sub\"]");
  }
  int rc = 0;
  char shown[96];
  if (sub) cfg_show(shown, sizeof shown, sub);
  if (strcmp(word, "route") == 0 || strcmp(word, "namespace") == 0) {
    int route = word[0] == 'r';
    if (!sub) return fail(p, "[%s] needs a name: [%s]", word, route ? "route \"EVENT\"" : "namespace \"/NAME\"");
    if (route ? c->nroutes >= CFG_MAX_ROUTES : c->nnamespaces >= CFG_MAX_NAMESPACES) {
      free(sub);
      return fail(p, "too many %s (at most %d)", route ? "routes" : "namespaces",
                  route ? CFG_MAX_ROUTES : CFG_MAX_NAMESPACES);
    }
    if (route && !*sub) {
      free(sub);
      return fail(p, "[route \"\"] needs an event name");
    }
    const char *problem = route            ? cfg_event_problem(sub)
                          : sub[0] != '/' ? "is not a namespace (it starts with \"/\")"
                                          : NULL;
    if (!problem && strchr(sub, '\n')) problem = "contains a line break";
    if (problem) rc = fail(p, "[%s %s]: %s %s", word, shown, shown, problem);
    for (size_t i = 0; !rc && route && i < c->nroutes; i++)
      if (strcmp(c->routes[i].event, sub) == 0)
        rc = fail(p, "[route %s] is already defined at line %u", shown, c->routes[i].line);
    for (size_t i = 0; !rc && !route && i < c->nnamespaces; i++)
      if (strcmp(c->namespaces[i].name, sub) == 0)
        rc = fail(p, "[namespace %s] is already defined at line %u", shown, c->namespaces[i].line);
    if (rc) {
      free(sub);
      return rc;
    }
    if (route) {
      server_route *r = realloc(c->routes, (c->nroutes + 1) * sizeof *r);
      char *nsp = r ? strdup("/") : NULL;
      if (r) c->routes = r;
      if (!nsp) {
        free(sub);
        return WSIO_ENOMEM;
      }
      c->routes[c->nroutes] = (server_route){.event = sub, .nsp = nsp, .to = SERVER_ROUTE_OTHERS, .data_arg = -1,
                                             .source = p->source, .line = p->line};
      p->route = c->nroutes++;
      memset(p->route_seen, 0, sizeof p->route_seen);
      p->kind = SEC_ROUTE;
    } else {
      server_namespace *n = realloc(c->namespaces, (c->nnamespaces + 1) * sizeof *n);
      if (!n) {
        free(sub);
        return WSIO_ENOMEM;
      }
      c->namespaces = n;
      n[c->nnamespaces++] = (server_namespace){.name = sub, .pattern = strchr(sub, '*') != NULL,
                                               .source = p->source, .line = p->line};
      p->kind = SEC_NSP;
    }
    return 0;
  }
  cfg_near near;
  cfg_near_init(&near);
  for (const char *const *sec = cfg_sections; *sec; sec++) {
    if (strcmp(*sec, word) == 0) {
      if (sub) {
        rc = fail(p, "[%s] takes no name", word);
        free(sub);
        return rc;
      }
      snprintf(p->section, sizeof p->section, "%.15s", word);
      p->kind = SEC_PLAIN;
      return 0;
    }
    cfg_near_offer(&near, word, *sec);
  }
  cfg_near_offer(&near, word, "route");
  cfg_near_offer(&near, word, "namespace");
  free(sub);
  const char *best = cfg_near_best(&near, word);
  if (best) return fail(p, "unknown section [%s] (did you mean [%s]?)", word, best);
  return fail(p, "unknown section [%s]", word);
}

/* ---- route keys ---- */

/* "N" with at most 4 digits. */
static int small_index(const char *s, unsigned *out) {
  size_t n = strlen(s);
  if (n == 0 || n > 4 || strspn(s, "0123456789") != n) return -1;
  *out = (unsigned)atoi(s);
  return 0;
}

static int route_target(parser *p, server_route *r, const char *v, const char *ev, const char *shown) {
  static const struct { const char *name; server_route_to to; } simple[] = {
      {"others", SERVER_ROUTE_OTHERS}, {"self", SERVER_ROUTE_SELF}, {"all", SERVER_ROUTE_ALL},
      {"sender-rooms", SERVER_ROUTE_SENDER_ROOMS}, {"none", SERVER_ROUTE_NONE}};
  cfg_near near;
  cfg_near_init(&near);
  for (size_t i = 0; i < sizeof simple / sizeof simple[0]; i++) {
    if (strcmp(v, simple[i].name) == 0) {
      r->to = simple[i].to;
      return 0;
    }
    cfg_near_offer(&near, v, simple[i].name);
  }
  if (strncmp(v, "room:", 5) == 0 && v[5]) {
    if (!(r->room = strdup(v + 5))) return WSIO_ENOMEM;
    r->to = SERVER_ROUTE_ROOM;
    return 0;
  }
  if (strncmp(v, "room-arg:", 9) == 0 && small_index(v + 9, &r->room_arg) == 0) {
    r->to = SERVER_ROUTE_ROOM_ARG;
    return 0;
  }
  const char *best = cfg_near_best(&near, v);
  char hint[64] = "";
  if (best) snprintf(hint, sizeof hint, " (did you mean \"%s\"?)", best);
  return fail(p, "[route %s] to: %s is not a target: self, others, all, room:NAME, room-arg:N, sender-rooms or none%s",
              ev, shown, hint);
}

static int route_key(parser *p, const char *key, const char *v) {
  server_route *r = &p->c->routes[p->route];
  char ev[96], shown[96];
  cfg_show(ev, sizeof ev, r->event);
  cfg_show(shown, sizeof shown, v);
  int k = 0;
  while (route_keys[k] && strcmp(route_keys[k], key) != 0) k++;
  if (!route_keys[k]) {
    cfg_near near;
    cfg_near_init(&near);
    for (int i = 0; route_keys[i]; i++) cfg_near_offer(&near, key, route_keys[i]);
    const char *best = cfg_near_best(&near, key);
    if (best) return fail(p, "[route %s] unknown key \"%s\" (did you mean \"%s\"?)", ev, key, best);
    return fail(p, "[route %s] unknown key \"%s\" (keys: namespace, emit, to, data, ack)", ev, key);
  }
  if (p->route_seen[k]) return fail(p, "[route %s] %s: set twice (first at line %u)", ev, key, p->route_seen[k]);
  p->route_seen[k] = p->line;
  if (cfg_has_ctl(v, strlen(v)) || strchr(v, '\n'))
    return fail(p, "[route %s] %s: %s contains a control character", ev, key, shown);
  switch (k) {
    case 0:
      if (v[0] != '/') return fail(p, "[route %s] namespace: %s is not a namespace (it starts with \"/\")", ev, shown);
      free(r->nsp);
      if (!(r->nsp = strdup(v))) return WSIO_ENOMEM;
      r->nsp_line = p->line;
      return 0;
    case 1: {
      const char *problem = cfg_event_problem(v);
      if (!*v) return fail(p, "[route %s] emit: needs a value (without the key, the received name is kept)", ev);
      if (!problem && strchr(v, '*')) problem = "is a pattern; emit takes an event name";
      if (problem) return fail(p, "[route %s] emit: %s %s", ev, shown, problem);
      free(r->emit);
      return (r->emit = strdup(v)) ? 0 : WSIO_ENOMEM;
    }
    case 2: return route_target(p, r, v, ev, shown);
    case 3: {
      unsigned n = 0;
      if (strcmp(v, "all") == 0) r->data_arg = -1;
      else if (strncmp(v, "arg:", 4) == 0 && small_index(v + 4, &n) == 0) r->data_arg = (int)n;
      else return fail(p, "[route %s] data: %s is not all or arg:N (N from 0)", ev, shown);
      return 0;
    }
    default:
      free(r->ack);
      r->ack = NULL;
      if (strcmp(v, "none") == 0) return 0;
      if (sio_json_validate(v, strlen(v), 32, NULL) != 0)
        return fail(p, "[route %s] ack: %s is not JSON or none (a string takes quotes: ack = \"ok\")", ev, shown);
      return (r->ack = strdup(v)) ? 0 : WSIO_ENOMEM;
  }
}

/* ---- key = value ---- */

/* Where the value ends: before a '#' that starts the text or follows a blank. In JSON (json set) '#' inside a
 * JSON string does not count. */
static const char *value_end(const char *s, const char *end, int json) {
  int in = 0;
  for (const char *q = s; q < end; q++) {
    if (json && in) {
      if (*q == '\\') q++;
      else if (*q == '"') in = 0;
    } else if (json && *q == '"') {
      in = 1;
    } else if (*q == '#' && (q == s || blank(q[-1]))) {
      end = q;
      break;
    }
  }
  while (end > s && blank(end[-1])) end--;
  return end;
}

static int key_value(parser *p, const char *s, const char *end) {
  const char *k = s;
  while (s < end && (isalnum((unsigned char)*s) || *s == '_' || *s == '-' || *s == '.')) s++;
  char key[48];
  snprintf(key, sizeof key, "%.*s", (int)(s - k < 47 ? s - k : 47), k);
  const char *after_key = s;
  while (s < end && blank(*s)) s++;
  if (after_key == k || s >= end || *s != '=') return fail(p, "expected \"key = value\", a [section] or a # comment");
  s++;
  while (s < end && blank(*s)) s++;
  int json = p->kind == SEC_ROUTE && strcmp(key, "ack") == 0;
  char *v = NULL, ctx[200] = "", ev[96];
  if (p->kind == SEC_PLAIN) snprintf(ctx, sizeof ctx, "[%s] %s: ", p->section, key);
  if (p->kind == SEC_ROUTE) {
    cfg_show(ev, sizeof ev, p->c->routes[p->route].event);
    snprintf(ctx, sizeof ctx, "[route %s] %s: ", ev, key);
  }
  if (!json && s < end && *s == '"') {
    int rc = quoted(p, &s, end, ctx, &v);
    if (rc) return rc;
    if (!rest_is_empty(s, end)) {
      free(v);
      return fail(p, "%stext after the closing quote (quote the whole value)", ctx);
    }
  } else {
    const char *e = value_end(s, end, json);
    if (!(v = strndup(s, (size_t)(e - s)))) return WSIO_ENOMEM;
  }
  int rc;
  if (p->kind == SEC_ROUTE) {
    rc = route_key(p, key, v);
  } else if (p->kind == SEC_NSP) {
    char shown[96];
    cfg_show(shown, sizeof shown, p->c->namespaces[p->c->nnamespaces - 1].name);
    rc = fail(p, "[namespace %s] takes no keys (\"%s\" is unknown)", shown, key);
  } else if (p->kind == SEC_NONE) {
    const char *home = NULL;
    for (size_t i = 0; i < cfg_nsettings && !home; i++)
      if (strcmp(cfg_settings[i].key, key) == 0) home = cfg_settings[i].section;
    if (home) rc = fail(p, "%s is outside a section (put it under [%s])", key, home);
    else rc = fail(p, "%s is outside a section (start with a [section])", key);
  } else {
    int i = cfg_find(p->section, key);
    if (i < 0) {
      cfg_near near;
      cfg_near_init(&near);
      char elsewhere[160] = "";
      size_t el = 0;
      for (size_t j = 0; j < cfg_nsettings; j++) {
        if (strcmp(cfg_settings[j].section, p->section) == 0) cfg_near_offer(&near, key, cfg_settings[j].key);
        else if (strcmp(cfg_settings[j].key, key) == 0 && el < sizeof elsewhere)
          el += (size_t)snprintf(elsewhere + el, sizeof elsewhere - el, "%s[%s] %s", el ? " or " : "",
                                 cfg_settings[j].section, key);
      }
      const char *best = cfg_near_best(&near, key);
      if (best) rc = fail(p, "[%s] unknown key \"%s\" (did you mean \"%s\"?)", p->section, key, best);
      else if (*elsewhere) rc = fail(p, "[%s] unknown key \"%s\" (did you mean %s?)", p->section, key, elsewhere);
      else rc = fail(p, "[%s] unknown key \"%s\"", p->section, key);
    } else if (p->seen[i]) {
      rc = fail(p, "[%s] %s: set twice (first at line %u)", p->section, key, p->seen[i]);
    } else {
      char why[320];
      rc = cfg_set(p->c, &cfg_settings[i], v, why, sizeof why);
      if (rc == WSIO_EINVAL) rc = fail(p, "[%s] %s: %s", p->section, key, why);
      if (rc == 0) {
        p->seen[i] = p->line;
        p->c->origin[i] = (struct server_config_origin){p->source, p->line, NULL};
      }
    }
  }
  free(v);
  return rc;
}

int server_config_parse(server_config *c, const char *name, const char *text, size_t len, char *err, size_t cap) {
  char *dup = strdup(name);
  if (!dup) return WSIO_ENOMEM;
  free(c->file);
  c->file = dup;
  return cfg_parse_text(c, name, text, len, SERVER_CONFIG_FILE, err, cap);
}

int cfg_parse_text(server_config *c, const char *name, const char *text, size_t len, server_config_source source,
                   char *err, size_t cap) {
  parser p = {.c = c, .name = name, .err = err, .cap = cap, .source = source};
  if (len > (1u << 20)) return cfg_errf(err, cap, "%s: larger than 1 MiB", name);
  if (!(p.seen = calloc(cfg_nsettings, sizeof *p.seen))) return WSIO_ENOMEM;
  const char *s = text, *end = text + len;
  if (len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) s += 3;
  int rc = 0;
  while (s < end && rc == 0) {
    const char *nl = memchr(s, '\n', (size_t)(end - s));
    const char *e = nl ? nl : end, *next = nl ? nl + 1 : end;
    p.line++;
    if (e > s && e[-1] == '\r') e--;
    if (memchr(s, 0, (size_t)(e - s))) rc = fail(&p, "the line contains a NUL byte");
    else if (!utf8_valid((const uint8_t *)s, (size_t)(e - s))) rc = fail(&p, "the line is not valid UTF-8");
    else if (cfg_has_ctl(s, (size_t)(e - s))) rc = fail(&p, "the line contains a control character");
    if (rc) break;
    while (s < e && blank(*s)) s++;
    while (e > s && blank(e[-1])) e--;
    if (s < e && *s == '[') rc = header(&p, s, e);
    else if (s < e && *s != '#') rc = key_value(&p, s, e);
    s = next;
  }
  free(p.seen);
  return rc;
}

int server_config_match(const char *pat, const char *s) {
  /* Iterative glob with one backtrack point: linear in practice, no recursion. */
  const char *star = NULL, *resume = NULL;
  while (*s) {
    if (*pat == '*') {
      star = pat++;
      resume = s;
    } else if (*pat == *s) {
      pat++;
      s++;
    } else if (star) {
      pat = star + 1;
      s = ++resume;
    } else {
      return 0;
    }
  }
  while (*pat == '*') pat++;
  return *pat == 0;
}
