/* Configuration values: parsing with messages that say what would be right, canonical formatting (the dump
 * parses back to the same values), and near-miss suggestions. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "net/trust.h"
#include "server/config_internal.h"
#include "util/utf8.h"
#include "wsio.h"

#define KIB 1024ull
#define MIB (1024ull * 1024)
#define GIB (1024ull * 1024 * 1024)

/* ---- messages ---- */

void cfg_show(char *out, size_t cap, const char *v) {
  size_t o = 0, i = 0, n = strlen(v), lim = n > 60 ? 57 : n;
  /* Don't cut a UTF-8 sequence in two. */
  while (lim < n && lim > 0 && ((unsigned char)v[lim] & 0xC0) == 0x80) lim--;
  if (cap == 0) return;
#define PUT(ch) do { if (o + 1 < cap) out[o++] = (ch); } while (0)
  PUT('"');
  for (; i < lim; i++) {
    unsigned char ch = (unsigned char)v[i];
    if (ch == '"' || ch == '\\') { PUT('\\'); PUT((char)ch); }
    else if (ch == '\n') { PUT('\\'); PUT('n'); }
    else if (ch == '\t') { PUT('\\'); PUT('t'); }
    else if (ch < 0x20 || ch == 0x7F) {
      char hex[5];
      snprintf(hex, sizeof hex, "\\x%02X", ch);
      for (int k = 0; hex[k]; k++) PUT(hex[k]);
    } else PUT((char)ch);
  }
  if (lim < n) { PUT('.'); PUT('.'); PUT('.'); }
  PUT('"');
#undef PUT
  out[o] = 0;
}

int cfg_has_ctl(const char *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)p[i];
    if ((ch < 0x20 && ch != '\t' && ch != '\n') || ch == 0x7F) return 1;
  }
  return 0;
}

/* ---- suggestions: optimal string alignment distance (an edit is an insertion, deletion, substitution or
 * swap of neighbours), case-insensitive ---- */

#define NEAR_MAX 48

static unsigned osa(const char *a, const char *b) {
  size_t n = strlen(a), m = strlen(b);
  if (n > NEAR_MAX || m > NEAR_MAX) return ~0u;
  unsigned d[NEAR_MAX + 1][NEAR_MAX + 1];
  for (size_t i = 0; i <= n; i++) d[i][0] = (unsigned)i;
  for (size_t j = 0; j <= m; j++) d[0][j] = (unsigned)j;
  for (size_t i = 1; i <= n; i++) {
    for (size_t j = 1; j <= m; j++) {
      int ca = tolower((unsigned char)a[i - 1]), cb = tolower((unsigned char)b[j - 1]);
      unsigned best = d[i - 1][j - 1] + (ca != cb);
      if (d[i - 1][j] + 1 < best) best = d[i - 1][j] + 1;
      if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
      if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) && tolower((unsigned char)a[i - 2]) == cb &&
          d[i - 2][j - 2] + 1 < best)
        best = d[i - 2][j - 2] + 1;
      d[i][j] = best;
    }
  }
  return d[n][m];
}

void cfg_near_init(cfg_near *n) {
  n->best = NULL;
  n->d = ~0u;
}

void cfg_near_offer(cfg_near *n, const char *word, const char *cand) {
  unsigned d = osa(word, cand);
  if (d < n->d) {
    n->d = d;
    n->best = cand;
  }
}

/* Few enough edits that the word is a typo of the candidate rather than another word. */
const char *cfg_near_best(const cfg_near *n, const char *word) {
  size_t len = strlen(word);
  unsigned limit = len <= 4 ? 1 : len <= 9 ? 2 : 3;
  return n->best && n->d <= limit && n->d < len ? n->best : NULL;
}

/* ---- numbers, durations, sizes ---- */

/* Digits at *p into *out; at least one. Returns 0, or -1 on none or overflow. */
static int digits(const char **p, uint64_t *out) {
  const char *s = *p;
  uint64_t v = 0;
  if (!isdigit((unsigned char)*s)) return -1;
  for (; isdigit((unsigned char)*s); s++) {
    unsigned dgt = (unsigned)(*s - '0');
    if (v > (UINT64_MAX - dgt) / 10) return -1;
    v = v * 10 + dgt;
  }
  *p = s;
  *out = v;
  return 0;
}

typedef struct unit {
  const char *name;
  uint64_t mul;
} unit;

static const unit ms_units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {NULL, 0}};
static const unit size_units[] = {{"b", 1},       {"kb", 1000},    {"mb", 1000000}, {"gb", 1000000000},
                                  {"kib", KIB},   {"mib", MIB},    {"gib", GIB},    {NULL, 0}};

/* number [spaces] unit. Returns 0; -1 when it is not that shape; -2 when the unit is missing and required;
 * -3 on overflow. */
static int with_unit(const char *v, const unit *units, int unit_required, uint64_t *out) {
  const char *p = v;
  uint64_t n;
  if (!isdigit((unsigned char)*p)) return -1;
  if (digits(&p, &n) != 0) return -3;
  while (*p == ' ') p++;
  if (!*p) {
    if (unit_required && n != 0) return -2;
    *out = n;
    return 0;
  }
  for (const unit *u = units; u->name; u++) {
    if (strcasecmp(p, u->name) == 0) {
      if (n > UINT64_MAX / u->mul) return -3;
      *out = n * u->mul;
      return 0;
    }
  }
  return -1;
}

void cfg_fmt_ms(uint64_t ms, char *out, size_t cap) {
  if (ms == 0) snprintf(out, cap, "0");
  else if (ms % 3600000 == 0) snprintf(out, cap, "%lluh", (unsigned long long)(ms / 3600000));
  else if (ms % 60000 == 0) snprintf(out, cap, "%llum", (unsigned long long)(ms / 60000));
  else if (ms % 1000 == 0) snprintf(out, cap, "%llus", (unsigned long long)(ms / 1000));
  else snprintf(out, cap, "%llums", (unsigned long long)ms);
}

void cfg_fmt_size(uint64_t n, char *out, size_t cap) {
  static const unit order[] = {{"GiB", GIB}, {"GB", 1000000000}, {"MiB", MIB}, {"MB", 1000000},
                               {"KiB", KIB}, {"KB", 1000},       {NULL, 0}};
  if (n != 0) {
    for (const unit *u = order; u->name; u++) {
      if (n % u->mul == 0) {
        snprintf(out, cap, "%llu%s", (unsigned long long)(n / u->mul), u->name);
        return;
      }
    }
  }
  snprintf(out, cap, "%llu", (unsigned long long)n);
}

/* ---- strings ---- */

static const char *reserved_events[] = {"connect", "connect_error", "disconnect", "disconnecting",
                                        "newListener", "removeListener", NULL};

const char *cfg_event_problem(const char *name) {
  if (!*name) return "is empty";
  for (const char **r = reserved_events; *r; r++)
    if (strcmp(name, *r) == 0) return "is a reserved event name";
  return NULL;
}

static const char *origin_problem(const char *o) {
  const char *p = o;
  if (!isalpha((unsigned char)*p)) return "is not an origin (scheme://host[:port], or * alone)";
  while (isalnum((unsigned char)*p) || *p == '+' || *p == '-' || *p == '.') p++;
  if (strncmp(p, "://", 3) != 0 || !p[3]) return "is not an origin (scheme://host[:port], or * alone)";
  for (p += 3; *p; p++) {
    if (*p == '/') return "is not an origin: an origin has no path, not even a trailing /";
    if (*p == ' ' || *p == '?' || *p == '#' || *p == '*') return "is not an origin (scheme://host[:port])";
  }
  return NULL;
}

static const char *string_problem(cfg_check ck, const char *v) {
  switch (ck) {
    case CK_HOST:
      for (const char *p = v; *p; p++)
        if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '/') return "is not a host name or address";
      return NULL;
    case CK_PATH:
      if (v[0] != '/') return "is not a path (a path starts with \"/\")";
      for (const char *p = v; *p; p++)
        if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '?' || *p == '#')
          return "is not a path (no spaces, '?' or '#')";
      return NULL;
    case CK_URL: {
      const char *rest = strncasecmp(v, "http://", 7) == 0    ? v + 7
                         : strncasecmp(v, "https://", 8) == 0 ? v + 8
                                                              : NULL;
      if (!rest || !*rest || *rest == '/') return "is not an http:// or https:// URL";
      for (const char *p = rest; *p; p++)
        if (*p == ' ' || *p == '\t' || *p == '\n') return "is not a URL (no spaces)";
      return NULL;
    }
    case CK_EVENT: return cfg_event_problem(v);
    case CK_ORIGIN: return strcmp(v, "*") == 0 ? NULL : origin_problem(v);
    case CK_CIDR: {
      net_cidr n;
      return net_cidr_parse(v, strlen(v), &n);
    }
    case CK_ROOM:
      if (strncmp(v, "claims:", 7) == 0) {
        if (!v[7]) return "names no claim (claims:FIELD)";
        for (const char *p = v + 7; *p; p++)
          if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-' && *p != '.')
            return "is not a claim name (letters, digits, _ - .)";
      }
      return NULL;
    default: return NULL;
  }
}

/* ---- set ---- */

static int bad(char *why, size_t cap, const char *v, const char *what) {
  char shown[96];
  cfg_show(shown, sizeof shown, v);
  return cfg_errf(why, cap, "%s %s", shown, what);
}

static int parse_choice(const cfg_setting *s, const char *item, int *value, char *why, size_t cap) {
  cfg_near near;
  cfg_near_init(&near);
  char names[160] = "";
  size_t nl = 0;
  for (const cfg_choice *ch = s->choices; ch->name; ch++) {
    if (strcasecmp(item, ch->name) == 0) {
      *value = ch->value;
      return 0;
    }
    cfg_near_offer(&near, item, ch->name);
    nl += (size_t)snprintf(names + nl, nl < sizeof names ? sizeof names - nl : 0, "%s%s", nl ? ", " : "", ch->name);
    if (nl >= sizeof names) nl = sizeof names - 1;
  }
  char shown[96];
  cfg_show(shown, sizeof shown, item);
  const char *best = cfg_near_best(&near, item);
  if (best) return cfg_errf(why, cap, "%s is not one of %s (did you mean \"%s\"?)", shown, names, best);
  return cfg_errf(why, cap, "%s is not one of %s", shown, names);
}

/* Splits a comma list into trimmed items. Returns 0, WSIO_EINVAL (empty item) or WSIO_ENOMEM. */
static int split(const char *v, server_config_list *out, char *why, size_t cap) {
  memset(out, 0, sizeof *out);
  const char *p = v;
  for (;;) {
    const char *end = strchr(p, ',');
    if (!end) end = p + strlen(p);
    const char *a = p, *b = end;
    while (a < b && (*a == ' ' || *a == '\t')) a++;
    while (b > a && (b[-1] == ' ' || b[-1] == '\t')) b--;
    if (a == b) {
      for (size_t i = 0; i < out->n; i++) free(out->v[i]);
      free(out->v);
      memset(out, 0, sizeof *out);
      return bad(why, cap, v, "has an empty item");
    }
    char **nv = realloc(out->v, (out->n + 1) * sizeof *nv);
    char *item = nv ? strndup(a, (size_t)(b - a)) : NULL;
    if (nv) out->v = nv;
    if (!item) {
      for (size_t i = 0; i < out->n; i++) free(out->v[i]);
      free(out->v);
      memset(out, 0, sizeof *out);
      return WSIO_ENOMEM;
    }
    out->v[out->n++] = item;
    if (!*end) return 0;
    p = end + 1;
  }
}

static void list_free(server_config_list *l) {
  for (size_t i = 0; i < l->n; i++) free(l->v[i]);
  free(l->v);
  memset(l, 0, sizeof *l);
}

static int set_list(server_config *c, const cfg_setting *s, const char *v, char *why, size_t cap) {
  server_config_list l = {0};
  if (*v) {
    int rc = split(v, &l, why, cap);
    if (rc) return rc;
  }
  if (s->check == CK_CIDR && l.n > NET_TRUST_MAX) {
    list_free(&l);
    return cfg_errf(why, cap, "lists %zu networks: at most %d", l.n, NET_TRUST_MAX);
  }
  int claims = 0;
  for (size_t i = 0; i < l.n; i++) {
    const char *problem = string_problem(s->check, l.v[i]);
    if (!problem && s->check == CK_ORIGIN && strcmp(l.v[i], "*") == 0 && l.n > 1)
      problem = "stands for any origin: it must be alone";
    if (!problem && s->check == CK_ROOM && strncmp(l.v[i], "claims:", 7) == 0 && claims++)
      problem = "is a second claims: item (one claim at most)";
    if (problem) {
      int rc = bad(why, cap, l.v[i], problem);
      list_free(&l);
      return rc;
    }
  }
  server_config_list *dst = CFG_FIELD(c, s, server_config_list);
  list_free(dst);
  *dst = l;
  return 0;
}

static int set_number(server_config *c, const cfg_setting *s, const char *v, char *why, size_t cap) {
  uint64_t n = 0;
  char lo[32], hi[32];
  if (s->type == CT_UINT) {
    if ((s->flags & CF_AUTO) && strcasecmp(v, "auto") == 0) {
      *CFG_FIELD(c, s, unsigned) = 0;
      return 0;
    }
    const char *p = v;
    if (!*v || strspn(v, "0123456789") != strlen(v))
      return bad(why, cap, v, (s->flags & CF_AUTO) ? "is not a number (or auto)" : "is not a number");
    if (digits(&p, &n) != 0) return bad(why, cap, v, "is too large");
    snprintf(lo, sizeof lo, "%llu", s->min);
    snprintf(hi, sizeof hi, "%llu", s->max);
  } else if (s->type == CT_MS) {
    int rc = with_unit(v, ms_units, 1, &n);
    if (rc == -2) return bad(why, cap, v, "needs a unit (examples: 25s, 500ms)");
    if (rc == -3) return bad(why, cap, v, "is too large");
    if (rc) return bad(why, cap, v, "is not a duration (examples: 25s, 500ms)");
    cfg_fmt_ms(s->min, lo, sizeof lo);
    cfg_fmt_ms(s->max, hi, sizeof hi);
  } else {
    int rc = with_unit(v, size_units, 0, &n);
    if (rc == -3) return bad(why, cap, v, "is too large");
    if (rc) return bad(why, cap, v, "is not a size (examples: 1MB, 512KiB, 16MiB)");
    cfg_fmt_size(s->min, lo, sizeof lo);
    cfg_fmt_size(s->max, hi, sizeof hi);
  }
  if (n < s->min || n > s->max) {
    char shown[96];
    cfg_show(shown, sizeof shown, v);
    return cfg_errf(why, cap, "%s is out of range (%s to %s)", shown, lo, hi);
  }
  if (s->type == CT_UINT) *CFG_FIELD(c, s, unsigned) = (unsigned)n;
  else if (s->type == CT_MS) *CFG_FIELD(c, s, uint32_t) = (uint32_t)n;
  else *CFG_FIELD(c, s, size_t) = (size_t)n;
  return 0;
}

int cfg_set(server_config *c, const cfg_setting *s, const char *v, char *why, size_t cap) {
  size_t len = strlen(v);
  if (!utf8_valid((const uint8_t *)v, len)) return cfg_errf(why, cap, "is not valid UTF-8");
  if (cfg_has_ctl(v, len)) return bad(why, cap, v, "contains a control character");
  if (!*v && !(s->flags & CF_OPTIONAL)) return cfg_errf(why, cap, "needs a value");
  switch (s->type) {
    case CT_STR: {
      const char *problem = *v ? string_problem(s->check, v) : NULL;
      if (!problem && *v && strchr(v, '\n') && s->check != CK_NONE) problem = "contains a line break";
      if (problem) return bad(why, cap, v, problem);
      char *dup = NULL;
      if (*v && !(dup = strdup(v))) return WSIO_ENOMEM;
      char **dst = CFG_FIELD(c, s, char *);
      free(*dst);
      *dst = dup;
      return 0;
    }
    case CT_UINT:
    case CT_MS:
    case CT_SIZE: return set_number(c, s, v, why, cap);
    case CT_BOOL: {
      static const char *yes[] = {"true", "yes", "on"}, *no[] = {"false", "no", "off"};
      for (int i = 0; i < 3; i++) {
        if (strcasecmp(v, yes[i]) == 0 || strcasecmp(v, no[i]) == 0) {
          *CFG_FIELD(c, s, int) = strcasecmp(v, yes[i]) == 0;
          return 0;
        }
      }
      return bad(why, cap, v, "is not a boolean (true/false, yes/no, on/off)");
    }
    case CT_ENUM: return parse_choice(s, v, CFG_FIELD(c, s, int), why, cap);
    case CT_FLAGS: {
      server_config_list l = {0};
      int bits = 0, rc = 0;
      if (*v && (rc = split(v, &l, why, cap)) != 0) return rc;
      for (size_t i = 0; i < l.n && rc == 0; i++) {
        int one = 0;
        rc = parse_choice(s, l.v[i], &one, why, cap);
        bits |= one;
      }
      list_free(&l);
      if (rc == 0) *CFG_FIELD(c, s, int) = bits;
      return rc;
    }
    case CT_LIST: return set_list(c, s, v, why, cap);
  }
  return WSIO_EINVAL;
}

void cfg_clear(server_config *c, const cfg_setting *s) {
  if (s->type == CT_STR) {
    char **p = CFG_FIELD(c, s, char *);
    free(*p);
    *p = NULL;
  } else if (s->type == CT_LIST) {
    list_free(CFG_FIELD(c, s, server_config_list));
  }
}

/* ---- format, compare ---- */

int cfg_format(const server_config *c, const cfg_setting *s, buf *out) {
  char tmp[48];
  switch (s->type) {
    case CT_STR: {
      const char *v = *CFG_CFIELD(c, s, char *);
      return v ? buf_append(out, v, strlen(v)) : 0;
    }
    case CT_UINT: {
      unsigned v = *CFG_CFIELD(c, s, unsigned);
      if (v == 0 && (s->flags & CF_AUTO)) return buf_append(out, "auto", 4);
      snprintf(tmp, sizeof tmp, "%u", v);
      break;
    }
    case CT_MS: cfg_fmt_ms(*CFG_CFIELD(c, s, uint32_t), tmp, sizeof tmp); break;
    case CT_SIZE: cfg_fmt_size(*CFG_CFIELD(c, s, size_t), tmp, sizeof tmp); break;
    case CT_BOOL: snprintf(tmp, sizeof tmp, "%s", *CFG_CFIELD(c, s, int) ? "true" : "false"); break;
    case CT_ENUM:
      tmp[0] = 0;
      for (const cfg_choice *ch = s->choices; ch->name; ch++)
        if (ch->value == *CFG_CFIELD(c, s, int)) snprintf(tmp, sizeof tmp, "%s", ch->name);
      break;
    case CT_FLAGS: {
      int bits = *CFG_CFIELD(c, s, int), first = 1;
      for (const cfg_choice *ch = s->choices; ch->name; ch++) {
        if (!(bits & ch->value)) continue;
        if ((!first && buf_append(out, ",", 1)) || buf_append(out, ch->name, strlen(ch->name))) return WSIO_ENOMEM;
        first = 0;
      }
      return 0;
    }
    case CT_LIST: {
      const server_config_list *l = CFG_CFIELD(c, s, server_config_list);
      for (size_t i = 0; i < l->n; i++)
        if ((i && buf_append(out, ",", 1)) || buf_append(out, l->v[i], strlen(l->v[i]))) return WSIO_ENOMEM;
      return 0;
    }
  }
  return buf_append(out, tmp, strlen(tmp));
}

int cfg_equal(const server_config *a, const server_config *b, const cfg_setting *s) {
  switch (s->type) {
    case CT_STR: {
      const char *x = *CFG_CFIELD(a, s, char *), *y = *CFG_CFIELD(b, s, char *);
      return (!x && !y) || (x && y && strcmp(x, y) == 0);
    }
    case CT_UINT: return *CFG_CFIELD(a, s, unsigned) == *CFG_CFIELD(b, s, unsigned);
    case CT_MS: return *CFG_CFIELD(a, s, uint32_t) == *CFG_CFIELD(b, s, uint32_t);
    case CT_SIZE: return *CFG_CFIELD(a, s, size_t) == *CFG_CFIELD(b, s, size_t);
    case CT_BOOL: return !*CFG_CFIELD(a, s, int) == !*CFG_CFIELD(b, s, int);
    case CT_ENUM:
    case CT_FLAGS: return *CFG_CFIELD(a, s, int) == *CFG_CFIELD(b, s, int);
    case CT_LIST: {
      const server_config_list *x = CFG_CFIELD(a, s, server_config_list), *y = CFG_CFIELD(b, s, server_config_list);
      if (x->n != y->n) return 0;
      for (size_t i = 0; i < x->n; i++)
        if (strcmp(x->v[i], y->v[i]) != 0) return 0;
      return 1;
    }
  }
  return 0;
}

/* Bare when the file parser would read the same string back: not empty, no surrounding blanks, no quote
 * first, no comment marker, no escapes needed. */
int cfg_write_value(buf *out, const char *v) {
  size_t n = strlen(v);
  int bare = n > 0 && v[0] != '"' && v[0] != '#' && v[0] != ' ' && v[0] != '\t' && v[n - 1] != ' ' &&
             v[n - 1] != '\t' && !strchr(v, '\n');
  for (size_t i = 1; bare && i < n; i++)
    if (v[i] == '#' && (v[i - 1] == ' ' || v[i - 1] == '\t')) bare = 0;
  if (bare) return buf_append(out, v, n);
  if (buf_append(out, "\"", 1)) return WSIO_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    const char *esc = v[i] == '"' ? "\\\"" : v[i] == '\\' ? "\\\\" : v[i] == '\n' ? "\\n" : v[i] == '\t' ? "\\t" : NULL;
    if (esc ? buf_append(out, esc, 2) : buf_append(out, v + i, 1)) return WSIO_ENOMEM;
  }
  return buf_append(out, "\"", 1);
}
