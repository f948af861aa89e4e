/* What the program shows of its configuration: the effective values (--check-config), the differences on
 * reload, --help, and the settings reference in docs/wsio.md. All generated from the settings table. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/config_internal.h"
#include "wsio.h"

int cfg_buf_printf(buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0 || buf_reserve(b, (size_t)n + 1)) return WSIO_ENOMEM;
  va_start(ap, fmt);
  vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
  return 0;
}

static int write_quoted(buf *b, const char *s) {
  if (buf_append(b, "\"", 1)) return WSIO_ENOMEM;
  for (; *s; s++) {
    const char *esc = *s == '"' ? "\\\"" : *s == '\\' ? "\\\\" : *s == '\n' ? "\\n" : *s == '\t' ? "\\t" : NULL;
    if (esc ? buf_append(b, esc, 2) : buf_append(b, s, 1)) return WSIO_ENOMEM;
  }
  return buf_append(b, "\"", 1);
}

/* ---- dump ---- */

#define COMMENT_COLUMN 40

/* Pads the current line (which starts at line_start) to the comment column, then writes "# text". */
static int comment(buf *b, size_t line_start, const char *text) {
  size_t w = b->len - line_start;
  int pad = w < COMMENT_COLUMN ? (int)(COMMENT_COLUMN - w) : 1;
  return cfg_buf_printf(b, "%*s# %s\n", pad, "", text);
}

static void named_where(const server_config *c, server_config_source src, unsigned line, char *out, size_t cap) {
  if (src == SERVER_CONFIG_FILE) snprintf(out, cap, "%s:%u", c->file ? c->file : "(built-in)", line);
  else snprintf(out, cap, "default");
}

static void route_target_text(const server_route *r, buf *b) {
  switch (r->to) {
    case SERVER_ROUTE_SELF: cfg_buf_printf(b, "self"); break;
    case SERVER_ROUTE_ALL: cfg_buf_printf(b, "all"); break;
    case SERVER_ROUTE_ROOM: cfg_buf_printf(b, "room:%s", r->room); break;
    case SERVER_ROUTE_ROOM_ARG: cfg_buf_printf(b, "room-arg:%u", r->room_arg); break;
    case SERVER_ROUTE_SENDER_ROOMS: cfg_buf_printf(b, "sender-rooms"); break;
    case SERVER_ROUTE_NONE: cfg_buf_printf(b, "none"); break;
    default: cfg_buf_printf(b, "others"); break;
  }
}

static int dump_route(const server_config *c, const server_route *r, buf *b) {
  size_t start = b->len;
  char where[300];
  buf t = {0};
  int rc = buf_append(b, "\n[route ", 8);
  start++;
  rc |= write_quoted(b, r->event) | buf_append(b, "]", 1);
  named_where(c, r->source, r->line, where, sizeof where);
  rc |= comment(b, start, where);
  rc |= buf_append(b, "namespace = ", 12) | cfg_write_value(b, r->nsp) | buf_append(b, "\n", 1);
  if (r->emit) rc |= buf_append(b, "emit = ", 7) | cfg_write_value(b, r->emit) | buf_append(b, "\n", 1);
  else rc |= cfg_buf_printf(b, "# emit: the received event's name\n");
  route_target_text(r, &t);
  rc |= buf_append(&t, "", 1);
  rc |= buf_append(b, "to = ", 5) | cfg_write_value(b, t.data ? (char *)t.data : "others") | buf_append(b, "\n", 1);
  buf_free(&t);
  if (r->data_arg < 0) rc |= cfg_buf_printf(b, "data = all\n");
  else rc |= cfg_buf_printf(b, "data = arg:%d\n", r->data_arg);
  rc |= cfg_buf_printf(b, "ack = %s\n", r->ack ? r->ack : "none");
  return rc ? WSIO_ENOMEM : 0;
}

static int dump_text(const server_config *c, unsigned flags, buf *b) {
  int rc = cfg_buf_printf(b, "# The effective configuration; after each value, where it came from.\n");
  if (c->file) rc |= cfg_buf_printf(b, "# File: %s\n", c->file);
  else rc |= cfg_buf_printf(b, "# No file: built-in defaults and routes.\n");
  for (const char *const *sec = cfg_sections; *sec; sec++) {
    rc |= cfg_buf_printf(b, "\n[%s]\n", *sec);
    for (size_t i = 0; i < cfg_nsettings; i++) {
      const cfg_setting *s = &cfg_settings[i];
      if (strcmp(s->section, *sec) != 0) continue;
      size_t start = b->len;
      buf v = {0};
      rc |= cfg_format(c, s, &v) | buf_append(&v, "", 1);
      rc |= cfg_buf_printf(b, "%s = ", s->key);
      if (!v.data || !v.data[0]) rc |= buf_append(b, "\"\"", 2);
      else if ((s->flags & CF_SECRET) && !(flags & SERVER_CONFIG_DUMP_SECRETS)) rc |= cfg_buf_printf(b, "<hidden>");
      else rc |= cfg_write_value(b, (char *)v.data);
      buf_free(&v);
      char where[300], full[320];
      char dotted[64];
      snprintf(dotted, sizeof dotted, "%s.%s", s->section, s->key);
      server_config_where(c, dotted, where, sizeof where);
      const char *derived = c->origin[i].derived;
      snprintf(full, sizeof full, "%s%s%s%s", where, derived ? " (" : "", derived ? derived : "", derived ? ")" : "");
      rc |= comment(b, start, full);
    }
  }
  for (size_t i = 0; i < c->nnamespaces; i++) {
    const server_namespace *n = &c->namespaces[i];
    size_t start = b->len + 1;
    char where[300];
    rc |= buf_append(b, "\n[namespace ", 12) | write_quoted(b, n->name) | buf_append(b, "]", 1);
    named_where(c, n->source, n->line, where, sizeof where);
    rc |= comment(b, start, where);
  }
  for (size_t i = 0; i < c->nroutes; i++) rc |= dump_route(c, &c->routes[i], b);
  return rc ? WSIO_ENOMEM : 0;
}

int server_config_dump(const server_config *c, FILE *f, unsigned flags) {
  buf b = {0};
  int rc = dump_text(c, flags, &b);
  if (rc == 0 && b.len && fwrite(b.data, 1, b.len, f) != b.len) rc = WSIO_EIO;
  if (rc == 0 && fflush(f) != 0) rc = WSIO_EIO;
  buf_free(&b);
  return rc;
}

/* ---- diff ---- */

static int str_eq(const char *a, const char *b) { return (!a && !b) || (a && b && strcmp(a, b) == 0); }

static int route_eq(const server_route *a, const server_route *b) {
  return strcmp(a->event, b->event) == 0 && strcmp(a->nsp, b->nsp) == 0 && str_eq(a->emit, b->emit) &&
         a->to == b->to && str_eq(a->room, b->room) && a->room_arg == b->room_arg && a->data_arg == b->data_arg &&
         str_eq(a->ack, b->ack);
}

static const server_route *route_named(const server_config *c, const char *event) {
  for (size_t i = 0; i < c->nroutes; i++)
    if (strcmp(c->routes[i].event, event) == 0) return &c->routes[i];
  return NULL;
}

static int nsp_named(const server_config *c, const char *name) {
  for (size_t i = 0; i < c->nnamespaces; i++)
    if (strcmp(c->namespaces[i].name, name) == 0) return 1;
  return 0;
}

/* A value for a one-line report: as the file would say it; quoted and cut when it is long or has line
 * breaks or tabs; "(none)" when empty. */
static void diff_value(const server_config *c, const cfg_setting *s, char *out, size_t cap) {
  buf v = {0};
  if (cfg_format(c, s, &v) || buf_append(&v, "", 1)) {
    snprintf(out, cap, "?");
  } else {
    const char *t = (const char *)v.data;
    if (!*t) snprintf(out, cap, "(none)");
    else if (strlen(t) > 60 || strpbrk(t, "\n\t")) cfg_show(out, cap, t);
    else snprintf(out, cap, "%s", t);
  }
  buf_free(&v);
}

#define LIVE_LABEL "applied live"
#define RESTART_LABEL "restart needed"

static void named_change(buf *b, int *count, const char *label, const char *kind, const char *name, const char *what) {
  char shown[96];
  cfg_show(shown, sizeof shown, name);
  cfg_buf_printf(b, "%s: [%s %s] %s\n", label, kind, shown, what);
  (*count)++;
}

int server_config_diff(const server_config *old, const server_config *new_, char *out, size_t cap,
                       server_config_changes *ch) {
  buf b = {0};
  server_config_changes n = {0, 0};
  for (size_t i = 0; i < cfg_nsettings; i++) {
    const cfg_setting *s = &cfg_settings[i];
    if (cfg_equal(old, new_, s)) continue;
    int live = (s->flags & CF_LIVE) != 0;
    /* Another certificate or key loads live; turning TLS on or off takes other listeners: a restart. (Both or
     * neither are set, an empty one being NULL.) */
    if (live && !strcmp(s->section, "tls") && !old->tls.cert != !new_->tls.cert) live = 0;
    if (live) n.live++;
    else n.restart++;
    cfg_buf_printf(&b, "%s: [%s] %s: ", live ? LIVE_LABEL : RESTART_LABEL, s->section, s->key);
    if (s->flags & CF_SECRET) {
      cfg_buf_printf(&b, "changed\n");
      continue;
    }
    char x[96], y[96];
    diff_value(old, s, x, sizeof x);
    diff_value(new_, s, y, sizeof y);
    cfg_buf_printf(&b, "%s -> %s\n", x, y);
  }
  int routes = 0, restart_named = 0;
  for (size_t i = 0; i < old->nroutes; i++)
    if (!route_named(new_, old->routes[i].event))
      named_change(&b, &routes, LIVE_LABEL, "route", old->routes[i].event, "removed");
  for (size_t i = 0; i < new_->nroutes; i++) {
    const server_route *r = route_named(old, new_->routes[i].event);
    if (!r) named_change(&b, &routes, LIVE_LABEL, "route", new_->routes[i].event, "added");
    else if (!route_eq(r, &new_->routes[i])) named_change(&b, &routes, LIVE_LABEL, "route", r->event, "changed");
  }
  if (routes == 0 && old->nroutes == new_->nroutes) {
    /* Same routes, maybe another order: the first match wins, so order is behaviour. */
    for (size_t i = 0; i < old->nroutes; i++) {
      if (strcmp(old->routes[i].event, new_->routes[i].event) != 0) {
        cfg_buf_printf(&b, "%s: routes reordered (the first match wins)\n", LIVE_LABEL);
        routes++;
        break;
      }
    }
  }
  for (size_t i = 0; i < old->nnamespaces; i++)
    if (!nsp_named(new_, old->namespaces[i].name))
      named_change(&b, &restart_named, RESTART_LABEL, "namespace", old->namespaces[i].name, "removed");
  for (size_t i = 0; i < new_->nnamespaces; i++)
    if (!nsp_named(old, new_->namespaces[i].name))
      named_change(&b, &restart_named, RESTART_LABEL, "namespace", new_->namespaces[i].name, "added");
  n.live += (unsigned)routes;
  n.restart += (unsigned)restart_named;
  if (out && cap) {
    size_t len = b.len < cap - 1 ? b.len : cap - 1;
    if (len) memcpy(out, b.data, len);
    out[len] = 0;
  }
  buf_free(&b);
  if (ch) *ch = n;
  return (int)(n.live + n.restart);
}

/* ---- --help and docs ---- */

void server_config_usage(FILE *f) {
  fprintf(f,
          "Usage: wsio [--config FILE] [--check-config] [--SETTING VALUE ...]\n"
          "\n"
          "A realtime server: Socket.IO, Engine.IO and raw WebSocket endpoints.\n"
          "\n"
          "  --config FILE         read settings from FILE (also WSIO_CONFIG); routes and namespaces are set\n"
          "                        only there (see docs/wsio.md and wsio.conf.example)\n"
          "  --check-config        check the configuration, print every value and where it came from, exit\n"
          "  --help, --version\n"
          "\n"
          "Every setting is a flag and an environment variable: [server] port is --port and WSIO_PORT,\n"
          "[cors] origins is --cors-origins and WSIO_CORS_ORIGINS. Flags beat the environment, which beats\n"
          "the file, which beats the defaults (in parentheses). --flag=value works too.\n");
  char flag[96], left[160];
  for (const char *const *sec = cfg_sections; *sec; sec++) {
    fprintf(f, "\n[%s]\n", *sec);
    for (size_t i = 0; i < cfg_nsettings; i++) {
      const cfg_setting *s = &cfg_settings[i];
      if (strcmp(s->section, *sec) != 0) continue;
      cfg_flag_name(s, flag, sizeof flag);
      snprintf(left, sizeof left, "  %s %s", flag, s->meta);
      fprintf(f, "%-40s %s", left, s->help);
      if (*s->def) fprintf(f, " (default: %s)", s->def);
      fprintf(f, "\n");
    }
  }
  fprintf(f, "\nOlder names, still accepted:\n");
  for (const cfg_alias *a = cfg_aliases; a->flag; a++) {
    const cfg_setting *s = &cfg_settings[cfg_find_dotted(a->name)];
    cfg_flag_name(s, flag, sizeof flag);
    snprintf(left, sizeof left, "  --%s", a->flag);
    fprintf(f, "%-40s %s%s\n", left, flag, a->bare_ms ? " (a bare number is milliseconds)" : "");
  }
}

static const char *type_text(const cfg_setting *s, char *out, size_t cap) {
  char lo[32], hi[32];
  switch (s->type) {
    case CT_STR:
      return s->check == CK_PATH ? "path" : s->check == CK_FILE ? "file" : s->check == CK_DIR ? "directory"
             : s->check == CK_URL ? "URL" : s->check == CK_EVENT ? "event name" : s->check == CK_HOST ? "host"
                                                                                                    : "text";
    case CT_UINT:
      snprintf(out, cap, "number, %llu to %llu%s", s->min, s->max, (s->flags & CF_AUTO) ? ", or auto" : "");
      return out;
    case CT_MS:
    case CT_SIZE:
      if (s->type == CT_MS) {
        cfg_fmt_ms(s->min, lo, sizeof lo);
        cfg_fmt_ms(s->max, hi, sizeof hi);
      } else {
        cfg_fmt_size(s->min, lo, sizeof lo);
        cfg_fmt_size(s->max, hi, sizeof hi);
      }
      snprintf(out, cap, "%s, %s to %s", s->type == CT_MS ? "duration" : "size", lo, hi);
      return out;
    case CT_BOOL: return "boolean";
    case CT_ENUM:
    case CT_FLAGS: {
      size_t o = (size_t)snprintf(out, cap, "%s", s->type == CT_ENUM ? "one of " : "list of ");
      for (const cfg_choice *c = s->choices; c->name && o < cap; c++)
        o += (size_t)snprintf(out + o, cap - o, "%s%s", c == s->choices ? "" : ", ", c->name);
      return out;
    }
    case CT_LIST:
      return s->check == CK_ORIGIN ? "list of origins" : s->check == CK_CIDR ? "list of networks" : "list of patterns";
  }
  return "";
}

void server_config_markdown(FILE *f) {
  char flag[96], env[96], type[128];
  for (const char *const *sec = cfg_sections; *sec; sec++) {
    fprintf(f, "### [%s]\n\n", *sec);
    fprintf(f, "| key | flag | environment | type | default | meaning |\n");
    fprintf(f, "| --- | --- | --- | --- | --- | --- |\n");
    for (size_t i = 0; i < cfg_nsettings; i++) {
      const cfg_setting *s = &cfg_settings[i];
      if (strcmp(s->section, *sec) != 0) continue;
      cfg_flag_name(s, flag, sizeof flag);
      cfg_env_name(s, env, sizeof env);
      fprintf(f, "| `%s` | `%s` | `%s` | %s | %s%s%s | %s%s |\n", s->key, flag, env, type_text(s, type, sizeof type),
              *s->def ? "`" : "", *s->def ? s->def : "(empty)", *s->def ? "`" : "", s->help,
              (s->flags & CF_LIVE) ? "; applied live on reload" : "");
    }
    fprintf(f, "\n");
  }
}
