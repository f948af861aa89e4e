#include "lg/stats.h"

#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* The middle of bucket i's range. */
static double hist_value(unsigned i) {
  if (i < LG_SUB) return (double)i;
  unsigned shift = (i - LG_SUB) / LG_HALF + 1;
  uint64_t m = (i - LG_SUB) % LG_HALF + LG_HALF;
  return (double)(m << shift) + (double)(1ull << shift) / 2;
}

void lg_hist_reset(lg_hist *h) { memset(h, 0, sizeof *h); }

double lg_hist_quantile(const lg_hist *h, double q) {
  if (h->n == 0) return 0;
  if (q >= 1.0) return (double)h->max;
  uint64_t rank = (uint64_t)(q * (double)h->n); /* nearest rank: ceil(q * n), at least 1 */
  if ((double)rank < q * (double)h->n || rank < 1) rank++;
  uint64_t seen = 0;
  for (unsigned i = 0; i < LG_BUCKETS; i++) {
    seen += h->count[i];
    if (seen >= rank) {
      double v = hist_value(i);
      return v < (double)h->max ? v : (double)h->max;
    }
  }
  return (double)h->max;
}

double lg_proc_cpu_s(int pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char *p = strrchr(buf, ')'); /* the command name may hold spaces and parentheses */
  if (!p) return -1;
  unsigned long long ut = 0, st = 0;
  /* After ")": state is field 3; utime and stime are fields 14 and 15. */
  if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) return -1;
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

long lg_proc_rss_kib(int pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  long kib = -1;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "VmRSS: %ld kB", &kib) == 1) break;
  fclose(f);
  return kib;
}

long lg_sockstat_tcp_kib(void) {
  FILE *f = fopen("/proc/net/sockstat", "r");
  if (!f) return -1;
  char line[256];
  long pages = -1;
  while (fgets(line, sizeof line, f)) {
    char *m = strncmp(line, "TCP:", 4) == 0 ? strstr(line, " mem ") : NULL;
    if (m && sscanf(m, " mem %ld", &pages) == 1) break;
  }
  fclose(f);
  return pages < 0 ? -1 : pages * (sysconf(_SC_PAGESIZE) / 1024);
}

long lg_meminfo_slab_kib(void) {
  FILE *f = fopen("/proc/meminfo", "r");
  if (!f) return -1;
  char line[256];
  long kib = -1;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "Slab: %ld kB", &kib) == 1) break;
  fclose(f);
  return kib;
}

long long lg_cpu_pressure_us(void) {
  FILE *f = fopen("/proc/pressure/cpu", "r");
  if (!f) return -1;
  char line[256];
  long long total = -1;
  while (fgets(line, sizeof line, f)) {
    char *t = strncmp(line, "some ", 5) == 0 ? strstr(line, "total=") : NULL;
    if (t && sscanf(t, "total=%lld", &total) == 1) break;
  }
  fclose(f);
  return total;
}

double lg_self_cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}
