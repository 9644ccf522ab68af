/* report.h - `mixrt bench --report FILE.html`: one self-contained HTML5 page (inline CSS and
 * SVG, no scripts, no network) with the comparison chart, the latency distributions, the
 * per-layer breakdown and a table of every number. Implemented in tools/report.c. */
#ifndef MIXRT_TOOLS_REPORT_H
#define MIXRT_TOOLS_REPORT_H

#include <stddef.h>

/* One benchmarked row (a --compare spec or the peer). Strings may be NULL (shown as "-")
 * and may hold anything a model can name (they are HTML-escaped). lat_ms holds every
 * timed run in milliseconds (n may be 0). median/p90 are the row's latencies in ms;
 * ratio is median / median of row 0, ratio_p10/ratio_p90 the spread of that ratio.
 * NaN (or any non-finite value) is printed as "-". is_peer != 0 marks the peer (ORT). */
struct report_row { const char *spec, *model, *precision, *typing, *backend;
                    const double *lat_ms; size_t n;   /* every timed run, ms */
                    double median, p90, ratio, ratio_p10, ratio_p90; int is_peer; };
/* One layer of the --profile breakdown: ms per run, share = fraction (0..1) of the total
 * profiled time (NaN: computed here from ms), gflops < 0 (or NaN): unknown. */
struct report_layer { const char *name, *op, *precision, *kernel; double ms, share, gflops; /* gflops<0: unknown */ };
/* The whole report. rows[0] is the baseline of the ratios. Nothing is retained after the
 * call; the caller owns every pointer. */
struct bench_report { const char *title, *mixrt_version, *machine, *model;
                      const struct report_row *rows; size_t n_rows;
                      const struct report_layer *layers; size_t n_layers;  /* may be 0 */
                      long long peak_rss_bytes, activation_bytes;          /* -1: unknown */ };

/* Writes the page to path (replacing it). Returns 0 on success; on failure prints one line
 * "mixrt: error: ..." to stderr and returns 1 (a partly written file may remain). */
int report_write_html(const char *path, const struct bench_report *r); /* 0 ok; 1 after printing one error line */

#endif
