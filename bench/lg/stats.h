/* lg_stats — the load generator's measuring helpers: a log-linear latency histogram and readers of /proc. */
#ifndef WSIO_BENCH_LG_STATS_H
#define WSIO_BENCH_LG_STATS_H

#include <stdint.h>

/* Values below 2^10 are exact; above, each power of two is split into 512 buckets (error < 0.2%). */
#define LG_SUB_BITS 10
#define LG_SUB (1u << LG_SUB_BITS)
#define LG_HALF (LG_SUB / 2)
#define LG_BUCKETS (LG_SUB + (64 - LG_SUB_BITS) * LG_HALF)

typedef struct lg_hist {
  uint64_t n;
  uint64_t max;
  uint64_t count[LG_BUCKETS];
} lg_hist;

static inline unsigned lg_hist_index(uint64_t v) {
  if (v < LG_SUB) return (unsigned)v;
  unsigned msb = 63u - (unsigned)__builtin_clzll(v);
  unsigned shift = msb - (LG_SUB_BITS - 1); /* v >> shift lies in [LG_HALF, LG_SUB) */
  return LG_SUB + (shift - 1) * LG_HALF + (unsigned)((v >> shift) - LG_HALF);
}

/* Inline: the broadcast mode adds one value per delivery, millions a second. */
static inline void lg_hist_add(lg_hist *h, uint64_t v) {
  h->count[lg_hist_index(v)]++;
  h->n++;
  if (v > h->max) h->max = v;
}
/* n values that fall in one bucket, the largest of them max. */
static inline void lg_hist_add_n(lg_hist *h, unsigned index, uint64_t n, uint64_t max) {
  h->count[index] += n;
  h->n += n;
  if (max > h->max) h->max = max;
}
void lg_hist_reset(lg_hist *h);
/* The q-quantile (0 < q <= 1) of the recorded values; 1.0 gives the exact maximum, no samples give 0. */
double lg_hist_quantile(const lg_hist *h, double q);

/* utime + stime of every thread of pid, in seconds (clock-tick resolution); -1 if it cannot be read. */
double lg_proc_cpu_s(int pid);
/* VmRSS of pid in KiB; -1 if it cannot be read. */
long lg_proc_rss_kib(int pid);
/* Memory the kernel has charged to TCP socket buffers, machine-wide ("TCP: ... mem N" pages), in KiB. */
long lg_sockstat_tcp_kib(void);
/* Slab memory of the whole kernel (/proc/meminfo "Slab:") in KiB: where struct sock and its kin live. */
long lg_meminfo_slab_kib(void);
/* Microseconds that some runnable task waited for a CPU, machine-wide, since boot (/proc/pressure/cpu
 * "some ... total="); -1 without PSI. Its growth over a window tells how contended the machine was. */
long long lg_cpu_pressure_us(void);
/* This process's user + system CPU time in seconds. */
double lg_self_cpu_s(void);

#endif
