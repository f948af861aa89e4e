/*
 * wsio_man — the SETTINGS section of man/wsio.1, generated from the program's settings table
 * (src/server/config.c), so the man page names every flag, variable and default the program knows.
 *
 *   wsio_man                 print the generated roff text
 *   wsio_man --check FILE    exit 0 when FILE holds it, unchanged, between its settings markers; else 1
 *   wsio_man --write FILE    replace what is between the markers with it
 *
 * Built with the program's configuration modules (tests/install/CMakeLists.txt); ctest case install/man.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/config_internal.h"

#define BEGIN_MARK ".\\\" settings:begin\n"
#define END_MARK ".\\\" settings:end\n"

/* Text for roff: backslashes as \e, every '-' as \- (flags, variables and ranges are copied and pasted,
 * so they must stay ASCII hyphen-minus), a leading '.' or '\'' guarded. */
static void put(FILE *f, const char *s) {
  if (*s == '.' || *s == '\'') fputs("\\&", f);
  for (; *s; s++) {
    if (*s == '\\') fputs("\\e", f);
    else if (*s == '-') fputs("\\-", f);
    else fputc(*s, f);
  }
}

static void range(FILE *f, const cfg_setting *s) {
  char lo[32], hi[32];
  switch (s->type) {
    case CT_UINT:
      snprintf(lo, sizeof lo, "%llu", s->min);
      snprintf(hi, sizeof hi, "%llu", s->max);
      break;
    case CT_MS:
      cfg_fmt_ms(s->min, lo, sizeof lo);
      cfg_fmt_ms(s->max, hi, sizeof hi);
      break;
    case CT_SIZE:
      cfg_fmt_size(s->min, lo, sizeof lo);
      cfg_fmt_size(s->max, hi, sizeof hi);
      break;
    case CT_ENUM:
    case CT_FLAGS:
      fputs(s->type == CT_ENUM ? "One of " : "A list of ", f);
      for (const cfg_choice *c = s->choices; c->name; c++) {
        fputs(c == s->choices ? "" : ", ", f);
        fputs("\\fB", f);
        put(f, c->name);
        fputs("\\fR", f);
      }
      fputs(". ", f);
      return;
    default: return;
  }
  fputs("From ", f);
  put(f, lo);
  fputs(" to ", f);
  put(f, hi);
  fputs((s->flags & CF_AUTO) ? ", or \\fBauto\\fR. " : ". ", f);
}

static void setting(FILE *f, const cfg_setting *s) {
  char flag[96], env[96];
  cfg_flag_name(s, flag, sizeof flag);
  cfg_env_name(s, env, sizeof env);
  fputs(".TP\n\\fB", f);
  put(f, flag);
  fputs("\\fR \\fI", f);
  put(f, s->meta);
  fputs("\\fR\n", f);
  /* The table's one-line help, as a sentence. */
  if (*s->help) {
    char first[2] = {(char)toupper((unsigned char)s->help[0]), 0};
    put(f, first);
    put(f, s->help + 1);
  }
  fputs(".\n", f);
  range(f, s);
  fputs("Default: ", f);
  if (*s->def) {
    fputs("\\fB", f);
    put(f, s->def);
    fputs("\\fR", f);
  } else {
    fputs("empty", f);
  }
  fputs(". File: \\fB", f);
  put(f, s->key);
  fputs("\\fR in [", f);
  put(f, s->section);
  fputs("]; environment: \\fB", f);
  put(f, env);
  fputs("\\fR", f);
  if (s->flags & CF_LIVE) fputs("; applied live on reload", f);
  fputs(".\n", f);
}

static void generate(FILE *f) {
  for (const char *const *sec = cfg_sections; *sec; sec++) {
    fputs(".SS [", f);
    put(f, *sec);
    fputs("]\n", f);
    for (size_t i = 0; i < cfg_nsettings; i++)
      if (strcmp(cfg_settings[i].section, *sec) == 0) setting(f, &cfg_settings[i]);
  }
  fputs(".SS Older flag names\nStill accepted, for scripts written against earlier versions:\n", f);
  char flag[96];
  for (const cfg_alias *a = cfg_aliases; a->flag; a++) {
    cfg_flag_name(&cfg_settings[cfg_find_dotted(a->name)], flag, sizeof flag);
    fputs(".TP\n\\fB\\-\\-", f);
    put(f, a->flag);
    fputs("\\fR\nThe same as \\fB", f);
    put(f, flag);
    fputs("\\fR", f);
    if (a->bare_ms) fputs(", but a bare number is milliseconds", f);
    fputs(".\n", f);
  }
}

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *text = NULL;
  size_t cap = 0, n = 0;
  for (;;) {
    if (n + 4096 + 1 > cap) {
      cap = cap ? cap * 2 : 65536;
      char *t = realloc(text, cap);
      if (!t) break;
      text = t;
    }
    size_t r = fread(text + n, 1, cap - n - 1, f);
    n += r;
    if (r == 0) break;
  }
  fclose(f);
  if (text) text[n] = 0;
  *len = n;
  return text;
}

int main(int argc, char **argv) {
  char *gen = NULL;
  size_t glen = 0;
  FILE *m = open_memstream(&gen, &glen);
  if (!m) return 1;
  generate(m);
  fclose(m);
  if (argc == 1) {
    fwrite(gen, 1, glen, stdout);
    free(gen);
    return 0;
  }
  if (argc != 3 || (strcmp(argv[1], "--check") != 0 && strcmp(argv[1], "--write") != 0)) {
    fprintf(stderr, "usage: wsio_man [--check FILE | --write FILE]\n");
    return 2;
  }
  size_t len;
  char *doc = slurp(argv[2], &len);
  if (!doc) {
    fprintf(stderr, "wsio_man: cannot read %s\n", argv[2]);
    free(gen);
    return 1;
  }
  char *begin = strstr(doc, BEGIN_MARK), *end = strstr(doc, END_MARK);
  if (!begin || !end || end < begin) {
    fprintf(stderr, "wsio_man: %s: no \"settings:begin\" and \"settings:end\" marker lines\n", argv[2]);
    free(doc);
    free(gen);
    return 1;
  }
  begin += strlen(BEGIN_MARK);
  int same = (size_t)(end - begin) == glen && memcmp(begin, gen, glen) == 0;
  int rc = 0;
  if (strcmp(argv[1], "--check") == 0) {
    if (!same) {
      fprintf(stderr, "wsio_man: %s is out of date with the settings table; regenerate it with\n"
                      "  <build>/wsio_man --write %s\n", argv[2], argv[2]);
      rc = 1;
    }
  } else if (!same) {
    FILE *out = fopen(argv[2], "wb");
    if (!out || fwrite(doc, 1, (size_t)(begin - doc), out) != (size_t)(begin - doc) ||
        fwrite(gen, 1, glen, out) != glen || fwrite(end, 1, strlen(end), out) != strlen(end)) rc = 1;
    if (out && fclose(out) != 0) rc = 1;
    if (rc) fprintf(stderr, "wsio_man: cannot write %s\n", argv[2]);
  }
  free(doc);
  free(gen);
  return rc;
}
