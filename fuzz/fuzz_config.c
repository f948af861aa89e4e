/*
 * fuzz_config — the wsio configuration file parser. Whatever the text: no crash, no leak, an error names
 * the file and line. When it parses, the dump (with secrets) parses back to the same configuration — so the
 * dump's quoting, the value formatters and the parser agree — and the cross-checks give the same answer on
 * both. The pattern matcher is compared with a dynamic-programming reference on the first two lines.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/config.h"
#include "wsio.h"

#define CHECK(x)                \
  do {                          \
    if (!(x)) __builtin_trap(); \
  } while (0)

/* Reference glob: m[i][j] = pattern[i..] matches s[j..]. */
static int ref_match(const char *p, size_t pn, const char *s, size_t sn) {
  unsigned char *m = calloc((pn + 1) * (sn + 1), 1);
  CHECK(m);
#define M(i, j) m[(i) * (sn + 1) + (j)]
  M(pn, sn) = 1;
  for (size_t i = pn; i-- > 0;) {
    for (size_t j = sn + 1; j-- > 0;) {
      if (p[i] == '*') M(i, j) = M(i + 1, j) || (j < sn && M(i, j + 1));
      else M(i, j) = j < sn && p[i] == s[j] && M(i + 1, j + 1);
    }
  }
  int r = M(0, 0);
#undef M
  free(m);
  return r;
}

static void check_match(const uint8_t *data, size_t size) {
  const uint8_t *nl = memchr(data, '\n', size);
  if (!nl) return;
  size_t pn = (size_t)(nl - data);
  const uint8_t *rest = nl + 1;
  const uint8_t *nl2 = memchr(rest, '\n', size - pn - 1);
  size_t sn = nl2 ? (size_t)(nl2 - rest) : size - pn - 1;
  if (pn > 256 || sn > 256) return;
  char p[257], s[257];
  memcpy(p, data, pn);
  p[pn] = 0;
  memcpy(s, rest, sn);
  s[sn] = 0;
  if (strlen(p) != pn || strlen(s) != sn) return; /* NULs: the C strings differ from the bytes */
  CHECK(server_config_match(p, s) == ref_match(p, pn, s, sn));
}

static char *dump_text(const server_config *c) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  CHECK(f);
  CHECK(server_config_dump(c, f, SERVER_CONFIG_DUMP_SECRETS) == 0);
  fclose(f);
  return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  check_match(data, size);

  server_config c;
  char err[512] = "";
  CHECK(server_config_init(&c) == 0);
  int rc = server_config_parse(&c, "fuzz.conf", (const char *)data, size, err, sizeof err);
  if (rc != 0) {
    CHECK(rc == WSIO_EINVAL);
    CHECK(strncmp(err, "fuzz.conf", 9) == 0);
    server_config_free(&c);
    return 0;
  }

  /* Round trip before the cross-checks (which resolve "auto" and derived values). */
  char *text = dump_text(&c);
  server_config back;
  char err2[512] = "";
  CHECK(server_config_init(&back) == 0);
  rc = server_config_parse(&back, "dump.conf", text, strlen(text), err2, sizeof err2);
  if (rc != 0) {
    fprintf(stderr, "the dump does not parse: %s\n%s\n", err2, text);
    __builtin_trap();
  }
  char diff[1024];
  if (server_config_diff(&c, &back, diff, sizeof diff, NULL) != 0) {
    fprintf(stderr, "the dump reads back differently:\n%s\n%s\n", diff, text);
    __builtin_trap();
  }
  free(text);

  int f1 = server_config_finish(&c, err, sizeof err), f2 = server_config_finish(&back, err2, sizeof err2);
  CHECK(f1 == f2);
  if (f1 == 0) CHECK(server_config_diff(&c, &back, NULL, 0, NULL) == 0);
  server_config_free(&back);
  server_config_free(&c);
  return 0;
}
