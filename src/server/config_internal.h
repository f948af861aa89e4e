/* Shared by the config*.c files: the settings table and the value codecs. Not for the rest of the program. */
#ifndef WSIO_SERVER_CONFIG_INTERNAL_H
#define WSIO_SERVER_CONFIG_INTERNAL_H

#include <stdarg.h>

#include "server/config.h"
#include "util/buf.h"

/* How a value is stored in server_config. */
typedef enum cfg_type {
  CT_STR,   /* char *, NULL when empty (CF_OPTIONAL) */
  CT_UINT,  /* unsigned */
  CT_MS,    /* uint32_t milliseconds, written as a duration */
  CT_SIZE,  /* size_t bytes */
  CT_BOOL,  /* int */
  CT_ENUM,  /* int: one of choices */
  CT_FLAGS, /* int: a comma list of choices, OR-ed */
  CT_LIST   /* server_config_list */
} cfg_type;

/* Extra checks on strings and list items. */
typedef enum cfg_check {
  CK_NONE,
  CK_HOST,    /* no spaces */
  CK_PATH,    /* an URL path: starts with '/' */
  CK_FILE,    /* readable file, checked by server_config_finish */
  CK_DIR,     /* directory, checked by server_config_finish */
  CK_URL,     /* http:// or https:// */
  CK_EVENT,   /* an event name that is not reserved */
  CK_ORIGIN,  /* list items: "*" alone, or scheme://host[:port] */
  CK_PATTERN, /* list items: event patterns */
  CK_ROOM,    /* list items: room patterns or "claims:FIELD" */
  CK_CIDR     /* list items: an IP address or network (10.0.0.0/8, fd00::/8) */
} cfg_check;

/* Bounds that keep every check on routes and namespaces cheap (realistic files have tens). */
#define CFG_MAX_ROUTES 4096
#define CFG_MAX_NAMESPACES 1024

#define CF_LIVE 1u     /* applied on reload without a restart */
#define CF_SECRET 2u   /* never printed */
#define CF_OPTIONAL 4u /* may be empty */
#define CF_AUTO 8u     /* "auto" is accepted and stored as 0 */

typedef struct cfg_choice {
  const char *name;
  int value;
} cfg_choice;

typedef struct cfg_setting {
  const char *section, *key;
  cfg_type type;
  cfg_check check;
  unsigned flags;
  size_t offset;            /* of the field in server_config */
  const char *def;          /* the default, as it would be written in the file */
  unsigned long long min, max; /* numbers; durations in ms, sizes in bytes */
  const cfg_choice *choices;   /* CT_ENUM, CT_FLAGS; ends with {NULL, 0} */
  const char *meta;         /* placeholder in --help */
  const char *help;         /* one line */
} cfg_setting;

struct server_config_origin {
  server_config_source source;
  unsigned line;            /* SERVER_CONFIG_FILE */
  const char *derived;      /* set by server_config_finish when it computed the value, e.g. "auto" */
};

extern const cfg_setting cfg_settings[];
extern const size_t cfg_nsettings;
/* Plain sections in the order they are documented and dumped, NULL-terminated. */
extern const char *const cfg_sections[];

#define CFG_FIELD(c, s, T) ((T *)(void *)((char *)(c) + (s)->offset))
#define CFG_CFIELD(c, s, T) ((const T *)(const void *)((const char *)(c) + (s)->offset))

/* Older flag names, kept so existing scripts run. */
typedef struct cfg_alias {
  const char *flag; /* without "--" */
  const char *name; /* "section.key" */
  int bare_ms;      /* a bare number is milliseconds, as the old flag took */
} cfg_alias;
extern const cfg_alias cfg_aliases[]; /* ends with {NULL} */

/* ---- config.c ---- */
/* Index of section.key (or of "section.key"), or -1. */
int cfg_find(const char *section, const char *key);
int cfg_find_dotted(const char *name);
/* "--port", "--socketio-ping-interval"; "WSIO_PORT", "WSIO_SOCKETIO_PING_INTERVAL". */
void cfg_flag_name(const cfg_setting *s, char *buf, size_t cap);
void cfg_env_name(const cfg_setting *s, char *buf, size_t cap);
/* Writes "fmt..." into err (may be NULL). Returns WSIO_EINVAL. */
int cfg_errf(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- config_value.c ---- */
/* Parses v (NUL-terminated) for s and stores it in c, replacing the old value. Returns 0, WSIO_ENOMEM, or
 * WSIO_EINVAL with the reason in why, e.g. "\"25x\" is not a duration (examples: 25s, 500ms)". */
int cfg_set(server_config *c, const cfg_setting *s, const char *v, char *why, size_t cap);
/* Frees the value of s in c (strings, lists) and zeroes it. */
void cfg_clear(server_config *c, const cfg_setting *s);
/* Appends the canonical text of s's value (what the file would say, unquoted). Returns 0 or WSIO_ENOMEM. */
int cfg_format(const server_config *c, const cfg_setting *s, buf *out);
int cfg_equal(const server_config *a, const server_config *b, const cfg_setting *s);
/* Writes v for a message: quoted, control bytes escaped, cut at 60 bytes with "...". */
void cfg_show(char *out, size_t cap, const char *v);
/* Appends v as a file value: bare when that parses back the same, else quoted with escapes. */
int cfg_write_value(buf *out, const char *v);
/* 0 when p[0..n) holds no control character but \t and \n. */
int cfg_has_ctl(const char *p, size_t n);
/* Checks an event name for a route or a rooms event. Returns NULL or a reason (static). */
const char *cfg_event_problem(const char *name);

/* Near-miss suggestions: offer every candidate, then ask for the best within a few edits. */
typedef struct cfg_near {
  const char *best;
  unsigned d;
} cfg_near;
void cfg_near_init(cfg_near *n);
void cfg_near_offer(cfg_near *n, const char *word, const char *cand);
const char *cfg_near_best(const cfg_near *n, const char *word);

/* Durations and sizes, as written in the file. */
void cfg_fmt_ms(uint64_t ms, char *out, size_t cap);
void cfg_fmt_size(uint64_t n, char *out, size_t cap);

/* ---- config_file.c ---- */
/* server_config_parse without recording name as c->file; what it sets is marked as coming from source
 * (SERVER_CONFIG_DEFAULT for the embedded default text). */
int cfg_parse_text(server_config *c, const char *name, const char *text, size_t len, server_config_source source,
                   char *err, size_t cap);

/* ---- config_report.c ---- */
int cfg_buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
