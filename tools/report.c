/* report.c - the bench HTML report: one self-contained HTML5 page (inline CSS and SVG, no
 * scripts, no network) written in one pass. Invariants: every caller string reaches the
 * page through put_text (HTML-escaped, valid UTF-8, controls made visible), and every
 * number written into SVG geometry is finite (coord() maps NaN/inf to 0). */
#include "report.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Page geometry (SVG user units; the SVGs scale to the page width through viewBox). */
#define PAGE_W 1000.0
#define LABEL_X 262.0 /* right edge of the row labels */
#define PLOT_X0 270.0
#define PLOT_X1 720.0
#define NOTE_X 730.0
/* The layer chart leaves more room on the right for op, precision and kernel. */
#define LAYER_X1 560.0
#define LAYER_NOTE_X 570.0
#define TOP_LAYERS 25
#define HIST_BINS 60
/* Values beyond this are clamped, so that differences and scales never overflow. */
#define VALUE_LIMIT 1e300

static const char report_css[] =
    "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:24px auto;max-width:1040px;"
    "padding:0 16px;color:#1d2430;background:#fff}\n"
    "h1{font-size:1.5em;margin:0 0 8px}h2{font-size:1.15em;margin:28px 0 6px;border-bottom:1px solid #d8dde6;"
    "padding-bottom:4px}\n"
    "dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:8px 0 0;font-size:.92em}\n"
    "dl.meta dt{color:#5b6576}dl.meta dd{margin:0;word-break:break-all}\n"
    "svg{display:block;width:100%;height:auto;font-size:12px}\n"
    "svg text{fill:#1d2430}svg .small{font-size:10.5px;fill:#5b6576}svg .axis{font-size:10.5px;fill:#5b6576}\n"
    "svg .grid{stroke:#e3e7ee;stroke-width:1}\n"
    ".row-bar{fill:#6a9fb5}.row-bar.base{fill:#33658a}.row-bar.peer{fill:#e07b39}\n"
    ".whisker{stroke:#1d2430;stroke-width:1.5}.p90{stroke:#b3261e;stroke-width:2}\n"
    ".hist{fill:#6a9fb5;fill-opacity:.55}.hist.base{fill:#33658a}.hist.peer{fill:#e07b39}\n"
    ".box{fill:#fff;fill-opacity:.6;stroke:#1d2430;stroke-width:1}.med{stroke:#b3261e;stroke-width:2}\n"
    ".range{stroke:#1d2430;stroke-width:1}\n"
    ".swatch{display:inline-block;width:11px;height:11px;margin:0 4px 0 12px;vertical-align:-1px}\n"
    "p.note{font-size:.85em;color:#5b6576;margin:4px 0}\n"
    "table{border-collapse:collapse;font-size:.85em;margin:6px 0}\n"
    "th,td{border-bottom:1px solid #e3e7ee;padding:3px 8px;text-align:left;vertical-align:top}\n"
    "td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}\n"
    "tr.peer td{background:#fdf1e8}tr.base td{background:#eef4f8}\n"
    "details{margin:8px 0}code{font-size:.95em}.wide{overflow-x:auto}\n";

struct out {
    FILE *f;
};

static void put(struct out *o, const char *s) { fputs(s, o->f); }

static void putf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct out *o, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfprintf(o->f, fmt, ap);
    va_end(ap);
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when it is not one (stray
 * continuation, overlong form, surrogate, beyond U+10FFFF, truncated). */
static size_t utf8_len(const unsigned char *s) {
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) return (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if ((s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80) return 0;
        if (c == 0xE0 && s[1] < 0xA0) return 0; /* overlong */
        if (c == 0xED && s[1] > 0x9F) return 0; /* surrogate */
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if ((s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80) return 0;
        if (c == 0xF0 && s[1] < 0x90) return 0;
        if (c == 0xF4 && s[1] > 0x8F) return 0;
        return 4;
    }
    return 0;
}

/* Code points of s as put_text counts them (an invalid byte counts as one). */
static size_t text_chars(const char *s) {
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; n++) {
        size_t l = utf8_len(p);
        p += l ? l : 1;
    }
    return n;
}

/* Writes s as HTML text or attribute content: & < > " ' become entities, invalid UTF-8
 * bytes U+FFFD, control bytes their visible Control Pictures (U+2400 + c), so a name
 * can never open a tag, end an attribute or break the encoding. NULL is "-". With max > 0
 * at most max code points are written, the last one an ellipsis when s is longer. */
static void put_text(struct out *o, const char *s, size_t max) {
    if (!s) {
        put(o, "-");
        return;
    }
    size_t limit = (size_t)-1;
    if (max > 0 && text_chars(s) > max) limit = max - 1;
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p && n < limit; n++) {
        size_t l = utf8_len(p);
        if (!l) {
            put(o, "\xEF\xBF\xBD");
            p++;
            continue;
        }
        unsigned char c = *p;
        switch (c) {
        case '&': put(o, "&amp;"); break;
        case '<': put(o, "&lt;"); break;
        case '>': put(o, "&gt;"); break;
        case '"': put(o, "&quot;"); break;
        case '\'': put(o, "&#39;"); break;
        default:
            if (c < 0x20) { /* U+2400 + c: E2 90 80+c */
                fputc(0xE2, o->f);
                fputc(0x90, o->f);
                fputc(0x80 + c, o->f);
            } else if (c == 0x7F) {
                put(o, "\xE2\x90\xA1");
            } else {
                fwrite(p, 1, l, o->f);
            }
        }
        p += l;
    }
    if (limit != (size_t)-1) put(o, "\xE2\x80\xA6");
}

/* ---- numbers ---- */

static bool is_fin(double v) { return isfinite(v) != 0; }

/* NaN stays NaN (unknown); infinities and huge magnitudes are clamped to the limit. */
static double clampv(double v) {
    if (isnan(v)) return NAN;
    if (v > VALUE_LIMIT) return VALUE_LIMIT;
    if (v < -VALUE_LIMIT) return -VALUE_LIMIT;
    return v;
}

/* Sums saturate at the clamp limit instead of reaching infinity. */
static double add_sat(double a, double b) { return clampv(a + b); }

/* A coordinate for SVG geometry: always finite and within a sane range. */
static double coord(double v) {
    if (!is_fin(v)) return 0;
    if (v > 1e6) return 1e6;
    if (v < -1e6) return -1e6;
    return v;
}

/* A latency in ms (or any figure) for people: "-" when unknown, more digits when small. */
static const char *fmt_num(char *buf, size_t size, double v) {
    if (!is_fin(v)) return "-";
    double a = fabs(v);
    if (a == 0) snprintf(buf, size, "0");
    else if (a >= 1e6 || a < 1e-3) snprintf(buf, size, "%.3g", v);
    else if (a >= 100) snprintf(buf, size, "%.1f", v);
    else if (a >= 1) snprintf(buf, size, "%.3f", v);
    else snprintf(buf, size, "%.4f", v);
    return buf;
}

static const char *fmt_ratio(char *buf, size_t size, double v) {
    if (!is_fin(v)) return "-";
    if (fabs(v) >= 1e4 || (v != 0 && fabs(v) < 1e-2)) snprintf(buf, size, "%.3gx", v);
    else snprintf(buf, size, "%.2fx", v);
    return buf;
}

static const char *fmt_bytes(char *buf, size_t size, long long b) {
    if (b < 0) return "-";
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double v = (double)b;
    int u = 0;
    while (v >= 1024 && u < 6) {
        v /= 1024;
        u++;
    }
    if (u == 0) snprintf(buf, size, "%lld B", b);
    else snprintf(buf, size, "%.1f %s (%lld bytes)", v, units[u], b);
    return buf;
}

/* An axis label: as many decimals as the tick step needs ("0.5", "2.5", "250"). */
static const char *fmt_tick(char *buf, size_t size, double v, double step) {
    if (!is_fin(v)) return "-";
    if (v == 0) return "0";
    double a = fabs(v);
    if (a >= 1e6 || a < 1e-3 || !(step > 0)) {
        snprintf(buf, size, "%.3g", v);
        return buf;
    }
    int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    if (dec > 6) dec = 6;
    snprintf(buf, size, "%.*f", dec, v);
    return buf;
}

/* A share (fraction) as a percentage. */
static const char *fmt_pct(char *buf, size_t size, double share) {
    if (!is_fin(share)) return "-";
    double v = clampv(share * 100);
    if (fabs(v) >= 1e4) snprintf(buf, size, "%.3g%%", v);
    else snprintf(buf, size, "%.1f%%", v);
    return buf;
}

/* The smallest of 1, 2, 5 x 10^k that is >= v (v > 0, finite). */
static double nice_step(double v) {
    if (!(v > 0) || !is_fin(v)) return 1;
    double e = pow(10, floor(log10(v)));
    if (!(e > 0) || !is_fin(e)) return v;
    double f = v / e;
    double s = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
    return s * e;
}

/* ---- scales: value -> x in [PLOT_X0, x1] ---- */

struct scale {
    double lo, hi; /* in value units, lo < hi, both finite */
    double step;   /* tick step (linear) or decades per tick (log) */
    bool log;
    double x1; /* right end of the plot */
};

/* A linear scale from 0 (or lo when negative) to a rounded hi that covers vmax. */
static struct scale scale_zero(double vmin, double vmax) {
    struct scale s = {0, 1, 0.2, false, PLOT_X1};
    if (is_fin(vmin) && vmin < 0) s.lo = vmin;
    if (!is_fin(vmax) || vmax <= s.lo) vmax = s.lo + 1;
    s.step = nice_step((vmax - s.lo) / 5);
    s.hi = ceil(vmax / s.step) * s.step;
    if (s.lo < 0) s.lo = floor(s.lo / s.step) * s.step;
    if (!is_fin(s.hi) || s.hi <= s.lo) s.hi = vmax;
    return s;
}

/* A scale covering [vmin, vmax]: logarithmic when the values are positive and span more
 * than a factor of 30 (one slow outlier would otherwise squash every row), else linear. */
static struct scale scale_range(double vmin, double vmax) {
    struct scale s = {0, 1, 0.2, false, PLOT_X1};
    if (!is_fin(vmin) || !is_fin(vmax)) return s;
    if (vmin > 0 && vmax / vmin > 30) {
        s.log = true;
        s.lo = floor(log10(vmin));
        s.hi = ceil(log10(vmax));
        if (s.hi <= s.lo) s.hi = s.lo + 1;
        s.step = ceil((s.hi - s.lo) / 8);
        return s;
    }
    double span = vmax - vmin;
    if (!(span > 0)) span = vmin != 0 ? fabs(vmin) * 0.1 : 1;
    s.step = nice_step(span / 5);
    s.lo = floor(vmin / s.step) * s.step;
    s.hi = ceil(vmax / s.step) * s.step;
    if (s.hi <= s.lo) s.hi = s.lo + s.step;
    if (!is_fin(s.lo) || !is_fin(s.hi) || s.hi <= s.lo) {
        s.lo = vmin;
        s.hi = vmin + 1;
        s.step = 0.2;
    }
    return s;
}

/* Position in [0, 1] (clamped); NaN for an unknown value. */
static double scale_t(const struct scale *s, double v) {
    if (isnan(v)) return NAN;
    double t;
    if (s->log) t = v > 0 ? (log10(v) - s->lo) / (s->hi - s->lo) : 0;
    else t = (v - s->lo) / (s->hi - s->lo);
    if (!is_fin(t)) return v > 0 ? 1 : 0;
    return t < 0 ? 0 : t > 1 ? 1 : t;
}

static double scale_x(const struct scale *s, double v) {
    double t = scale_t(s, v);
    return coord(PLOT_X0 + (is_fin(t) ? t : 0) * (s->x1 - PLOT_X0));
}

/* Vertical grid lines and their labels from y0 to y1, labels above y0. */
static void put_axis(struct out *o, const struct scale *s, double y0, double y1, const char *unit) {
    char b[32];
    int n = 0;
    if (s->log) {
        for (double d = s->lo; d <= s->hi + 1e-9 && n < 40; d += s->step, n++) {
            double x = coord(PLOT_X0 + (d - s->lo) / (s->hi - s->lo) * (s->x1 - PLOT_X0));
            putf(o, "<line class=\"grid\" x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>", x, y0, x, y1);
            putf(o, "<text class=\"axis\" x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\">%s</text>\n", x, y0 - 4,
                 fmt_tick(b, sizeof b, pow(10, d), pow(10, d)));
        }
    } else {
        long long k0 = (long long)llround(s->lo / s->step), k1 = (long long)llround(s->hi / s->step);
        for (long long k = k0; k <= k1 && n < 40; k++, n++) {
            double v = (double)k * s->step;
            double x = scale_x(s, v);
            putf(o, "<line class=\"grid\" x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>", x, y0, x, y1);
            putf(o, "<text class=\"axis\" x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\">%s</text>\n", x, y0 - 4,
                 fmt_tick(b, sizeof b, v, s->step));
        }
    }
    putf(o, "<text class=\"axis\" x=\"%.2f\" y=\"%.2f\" text-anchor=\"end\">%s%s</text>\n", LABEL_X - 18, y0 - 4, unit,
         s->log ? " (log scale)" : "");
}

/* ---- per-row statistics ---- */

struct row_stats {
    double *sorted; /* finite latencies, ascending (NULL when none) */
    size_t n;
    double min, max, mean;
};

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double quantile(const struct row_stats *st, double q) {
    if (!st->n) return NAN;
    double pos = q * (double)(st->n - 1);
    size_t lo = (size_t)pos;
    if (lo + 1 >= st->n) return st->sorted[st->n - 1];
    double f = pos - (double)lo;
    return st->sorted[lo] + f * (st->sorted[lo + 1] - st->sorted[lo]);
}

/* 0 ok, -1 out of memory. Non-finite samples are dropped (they cannot be placed). */
static int row_stats_init(struct row_stats *st, const struct report_row *r) {
    memset(st, 0, sizeof *st);
    st->min = st->max = st->mean = NAN;
    if (!r->lat_ms || !r->n) return 0;
    if (r->n > SIZE_MAX / sizeof(double)) return -1;
    st->sorted = malloc(r->n * sizeof(double));
    if (!st->sorted) return -1;
    double mean = 0; /* running mean: no sum that could overflow */
    for (size_t i = 0; i < r->n; i++)
        if (is_fin(r->lat_ms[i])) {
            double v = clampv(r->lat_ms[i]);
            st->sorted[st->n++] = v;
            mean += (v - mean) / (double)st->n;
        }
    if (!st->n) return 0;
    qsort(st->sorted, st->n, sizeof(double), cmp_double);
    st->min = st->sorted[0];
    st->max = st->sorted[st->n - 1];
    st->mean = clampv(mean);
    return 0;
}

/* ---- sections ---- */

static const char *row_class(const struct bench_report *r, size_t i) {
    if (r->rows[i].is_peer) return " peer";
    return i == 0 ? " base" : "";
}

/* Two-line row label: the spec, and model / precision / typing / backend in small type. */
static void put_row_label(struct out *o, const struct report_row *row, size_t i, double y) {
    putf(o, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"end\">%zu. ", LABEL_X, y, i + 1);
    put_text(o, row->spec, 34);
    put(o, "</text>");
    putf(o, "<text class=\"small\" x=\"%.2f\" y=\"%.2f\" text-anchor=\"end\">", LABEL_X, y + 13);
    put_text(o, row->precision, 14);
    put(o, " \xC2\xB7 ");
    put_text(o, row->typing, 10);
    put(o, " \xC2\xB7 ");
    put_text(o, row->backend, 12);
    put(o, "</text>\n");
}

static void put_comparison(struct out *o, const struct bench_report *r) {
    char b1[32], b2[32], b3[32], b4[32], b5[32];
    put(o, "<section>\n<h2>Comparison</h2>\n");
    if (!r->n_rows) {
        put(o, "<svg id=\"comparison\" viewBox=\"0 0 1000 40\" role=\"img\"><text x=\"10\" y=\"24\">no rows were "
               "measured</text></svg>\n</section>\n");
        return;
    }
    const double row_h = 40, top = 30;
    double base = clampv(r->rows[0].median);
    double vmax = NAN, vmin = NAN;
    for (size_t i = 0; i < r->n_rows; i++) {
        const struct report_row *row = &r->rows[i];
        double cand[4] = {row->median, row->p90, NAN, NAN};
        if (is_fin(base)) {
            cand[2] = row->ratio_p10 * base;
            cand[3] = row->ratio_p90 * base;
        }
        for (int k = 0; k < 4; k++) {
            double v = clampv(cand[k]);
            if (!is_fin(v)) continue;
            if (!(vmax >= v)) vmax = v;
            if (!(vmin <= v)) vmin = v;
        }
    }
    struct scale s = scale_zero(vmin, vmax);
    double h = top + row_h * (double)r->n_rows + 8;
    putf(o, "<svg id=\"comparison\" viewBox=\"0 0 %.0f %.0f\" role=\"img\" aria-label=\"median latency per row\">\n",
         PAGE_W, coord(h));
    put_axis(o, &s, top - 8, h - 4, "ms");
    for (size_t i = 0; i < r->n_rows; i++) {
        const struct report_row *row = &r->rows[i];
        double y = top + row_h * (double)i;
        double med = clampv(row->median), p90 = clampv(row->p90);
        put_row_label(o, row, i, y + 14);
        double x0 = scale_x(&s, 0), x1 = is_fin(med) ? scale_x(&s, med) : x0;
        putf(o, "<rect class=\"row-bar%s\" x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"20\"><title>", row_class(r, i),
             x1 < x0 ? x1 : x0, y + 2, fabs(x1 - x0));
        put_text(o, row->spec, 0);
        putf(o, ": median %s ms, p90 %s ms, ratio %s</title></rect>\n", fmt_num(b1, sizeof b1, med),
             fmt_num(b2, sizeof b2, p90), fmt_ratio(b3, sizeof b3, row->ratio));
        double ym = y + 12;
        if (is_fin(base) && is_fin(row->ratio_p10) && is_fin(row->ratio_p90)) {
            double a = scale_x(&s, clampv(row->ratio_p10 * base)), c = scale_x(&s, clampv(row->ratio_p90 * base));
            putf(o,
                 "<line class=\"whisker\" x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>"
                 "<line class=\"whisker\" x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>"
                 "<line class=\"whisker\" x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n",
                 a, ym, c, ym, a, ym - 5, a, ym + 5, c, ym - 5, c, ym + 5);
        }
        if (is_fin(p90))
            putf(o, "<line class=\"p90\" x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"><title>p90 %s ms</title></line>\n",
                 scale_x(&s, p90), y, scale_x(&s, p90), y + 24, fmt_num(b1, sizeof b1, p90));
        putf(o, "<text x=\"%.2f\" y=\"%.2f\">%s ms</text>", NOTE_X, y + 11, fmt_num(b1, sizeof b1, med));
        putf(o, "<text class=\"small\" x=\"%.2f\" y=\"%.2f\">%s%s", NOTE_X, y + 25,
             i == 0 ? "baseline " : "", fmt_ratio(b2, sizeof b2, row->ratio));
        if (is_fin(row->ratio_p10) || is_fin(row->ratio_p90))
            putf(o, " (%s\xE2\x80\x93%s)", fmt_ratio(b4, sizeof b4, row->ratio_p10),
                 fmt_ratio(b5, sizeof b5, row->ratio_p90));
        put(o, row->is_peer ? " \xC2\xB7 peer</text>\n" : "</text>\n");
    }
    put(o, "</svg>\n<p class=\"note\">Bars: median latency per row (row 1 is the baseline of every ratio)."
           "<span class=\"swatch\" style=\"background:#33658a\"></span>baseline"
           "<span class=\"swatch\" style=\"background:#6a9fb5\"></span>compared"
           "<span class=\"swatch\" style=\"background:#e07b39\"></span>peer"
           "<span class=\"swatch\" style=\"background:#b3261e\"></span>p90 latency. "
           "Whiskers: the p10\xE2\x80\x93p90 spread of the ratio, drawn at baseline median \xC3\x97 ratio."
           "</p>\n</section>\n");
}

static void put_distribution(struct out *o, const struct bench_report *r, const struct row_stats *st) {
    char b1[32], b2[32], b3[32];
    put(o, "<section>\n<h2>Latency distribution</h2>\n");
    double vmin = NAN, vmax = NAN;
    for (size_t i = 0; i < r->n_rows; i++)
        if (st[i].n) {
            if (!(vmin <= st[i].min)) vmin = st[i].min;
            if (!(vmax >= st[i].max)) vmax = st[i].max;
        }
    if (!is_fin(vmin)) {
        put(o, "<svg id=\"distribution\" viewBox=\"0 0 1000 40\" role=\"img\"><text x=\"10\" y=\"24\">no timed runs"
               "</text></svg>\n</section>\n");
        return;
    }
    struct scale s = scale_range(vmin, vmax);
    const double row_h = 56, top = 30;
    double h = top + row_h * (double)r->n_rows + 8;
    putf(o, "<svg id=\"distribution\" viewBox=\"0 0 %.0f %.0f\" role=\"img\" aria-label=\"latency distributions\">\n",
         PAGE_W, coord(h));
    put_axis(o, &s, top - 8, h - 4, "ms");
    for (size_t i = 0; i < r->n_rows; i++) {
        const struct report_row *row = &r->rows[i];
        const struct row_stats *rs = &st[i];
        double y = top + row_h * (double)i;
        put_row_label(o, row, i, y + 24);
        if (!rs->n) {
            putf(o, "<text class=\"small\" x=\"%.2f\" y=\"%.2f\">no timed runs</text>\n", PLOT_X0 + 4, y + 30);
            continue;
        }
        /* Histogram over the shared axis, one path per row. Heights grow with log(1 + count)
         * relative to the row's fullest bin, so that a few slow runs (the tail that p99 is
         * about) stay visible next to a bin holding thousands. */
        size_t bins[HIST_BINS] = {0}, peak = 0;
        for (size_t k = 0; k < rs->n; k++) {
            double t = scale_t(&s, rs->sorted[k]);
            size_t b = is_fin(t) ? (size_t)(t * HIST_BINS) : 0;
            if (b >= HIST_BINS) b = HIST_BINS - 1;
            if (++bins[b] > peak) peak = bins[b];
        }
        const double bw = (PLOT_X1 - PLOT_X0) / HIST_BINS, hist_h = 34, base_y = y + 40;
        putf(o, "<path class=\"hist%s\" d=\"", row_class(r, i));
        for (size_t b = 0; b < HIST_BINS; b++) {
            if (!bins[b]) continue;
            double bh = hist_h * log1p((double)bins[b]) / log1p((double)peak);
            putf(o, "M%.2f %.2fh%.2fv%.2fh%.2fz", PLOT_X0 + bw * (double)b, base_y, bw - 0.5, -bh, -(bw - 0.5));
        }
        put(o, "\"><title>");
        put_text(o, row->spec, 0);
        putf(o, ": %zu runs</title></path>\n", rs->n);
        /* Box: min-max range, p25-p75 box, median. */
        double xmin = scale_x(&s, rs->min), xmax = scale_x(&s, rs->max);
        double q1 = scale_x(&s, quantile(rs, 0.25)), q3 = scale_x(&s, quantile(rs, 0.75));
        double med = quantile(rs, 0.5), xm = scale_x(&s, med), yb = y + 46;
        putf(o, "<line class=\"range\" x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>", xmin, yb, xmax, yb);
        putf(o, "<rect class=\"box\" x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"8\"/>", q1, yb - 4, coord(q3 - q1));
        putf(o, "<line class=\"med\" x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n", xm, yb - 6, xm, yb + 6);
        putf(o, "<text class=\"small\" x=\"%.2f\" y=\"%.2f\">n=%zu, median %s ms</text>", NOTE_X, y + 28, rs->n,
             fmt_num(b1, sizeof b1, med));
        putf(o, "<text class=\"small\" x=\"%.2f\" y=\"%.2f\">min %s \xC2\xB7 max %s</text>\n", NOTE_X, y + 42,
             fmt_num(b2, sizeof b2, rs->min), fmt_num(b3, sizeof b3, rs->max));
    }
    put(o, "</svg>\n<p class=\"note\">Per row: a histogram of every timed run on the shared axis (bar height "
           "\xE2\x88\x9D log(1 + runs in the bin), relative to the row's fullest bin, so that single slow runs show); "
           "the line spans min to max, the box p25 to p75, the red tick is the median.</p>\n"
           "</section>\n");
}

/* A stable colour per op type (FNV-1a of the name into a small palette). */
static const char *op_colour(const char *op) {
    static const char *palette[] = {"#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2",
                                    "#b279a2", "#ff9da6", "#9d755d", "#bab0ac", "#eeca3b"};
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)(op ? op : ""); *p; p++) h = (h ^ *p) * 16777619u;
    return palette[h % (sizeof palette / sizeof palette[0])];
}

static bool same_str(const char *a, const char *b) {
    if (!a || !b) return a == b;
    return strcmp(a, b) == 0;
}

struct op_group {
    const char *op;
    size_t count;
    double ms, share, flop_ms, known_ms; /* flop_ms: sum of gflops * ms where known */
};

/* qsort has no context argument; the report is written by one thread at a time. */
static const struct report_layer *sort_layers_base;
static int cmp_layer_idx(const void *a, const void *b) {
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    double x = sort_layers_base[i].ms, y = sort_layers_base[j].ms;
    bool fx = is_fin(x), fy = is_fin(y);
    if (fx != fy) return fx ? -1 : 1; /* unknown times last */
    if (fx && x != y) return x > y ? -1 : 1;
    return i < j ? -1 : i > j; /* stable: model order among equals */
}

static int cmp_group(const void *a, const void *b) {
    const struct op_group *x = a, *y = b;
    if (x->ms != y->ms) return x->ms > y->ms ? -1 : 1;
    return 0;
}

static double layer_share(const struct report_layer *l, double total_ms) {
    if (is_fin(l->share)) return l->share;
    return is_fin(l->ms) && total_ms > 0 ? clampv(l->ms) / total_ms : NAN;
}

static void put_layer_cells(struct out *o, const struct report_layer *l, double total_ms) {
    char b1[32], b2[32], b3[32];
    double sh = layer_share(l, total_ms), gf = l->gflops;
    put(o, "<td>");
    put_text(o, l->name, 0);
    put(o, "</td><td>");
    put_text(o, l->op, 0);
    put(o, "</td><td>");
    put_text(o, l->precision, 0);
    put(o, "</td><td>");
    put_text(o, l->kernel, 0);
    putf(o, "</td><td class=\"num\">%s</td><td class=\"num\">%s</td><td class=\"num\">%s</td>",
         fmt_num(b1, sizeof b1, clampv(l->ms)), fmt_pct(b2, sizeof b2, sh),
         is_fin(gf) && gf >= 0 ? fmt_num(b3, sizeof b3, clampv(gf)) : "-");
}

/* 0 ok, -1 out of memory. */
static int put_layers(struct out *o, const struct bench_report *r) {
    char b1[32], b2[32], b3[32], b4[32];
    size_t n = r->layers ? r->n_layers : 0;
    put(o, "<section>\n<h2>Per-layer profile</h2>\n");
    if (!n) {
        put(o, "<svg id=\"layers\" viewBox=\"0 0 1000 40\" role=\"img\"><text x=\"10\" y=\"24\">no per-layer profile "
               "in this run (mixrt bench --profile)</text></svg>\n</section>\n");
        return 0;
    }
    if (n > SIZE_MAX / sizeof(struct op_group)) return -1;
    size_t *idx = malloc(n * sizeof *idx);
    struct op_group *groups = malloc(n * sizeof *groups);
    if (!idx || !groups) {
        free(idx);
        free(groups);
        return -1;
    }
    double total = 0;
    for (size_t i = 0; i < n; i++) {
        idx[i] = i;
        if (is_fin(r->layers[i].ms) && r->layers[i].ms > 0) total = add_sat(total, r->layers[i].ms);
    }
    sort_layers_base = r->layers;
    qsort(idx, n, sizeof *idx, cmp_layer_idx);
    size_t top = n < TOP_LAYERS ? n : TOP_LAYERS;

    double vmax = NAN, vmin = NAN;
    for (size_t k = 0; k < top; k++) {
        double v = clampv(r->layers[idx[k]].ms);
        if (!is_fin(v)) continue;
        if (!(vmax >= v)) vmax = v;
        if (!(vmin <= v)) vmin = v;
    }
    struct scale s = scale_zero(vmin, vmax);
    s.x1 = LAYER_X1;
    const double row_h = 22, top_y = 30;
    double h = top_y + row_h * (double)top + 8;
    putf(o, "<svg id=\"layers\" viewBox=\"0 0 %.0f %.0f\" role=\"img\" aria-label=\"slowest layers\">\n", PAGE_W,
         coord(h));
    put_axis(o, &s, top_y - 8, h - 4, "ms per run");
    for (size_t k = 0; k < top; k++) {
        const struct report_layer *l = &r->layers[idx[k]];
        double y = top_y + row_h * (double)k, ms = clampv(l->ms), sh = layer_share(l, total);
        putf(o, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"end\">", LABEL_X, y + 13);
        put_text(o, l->name, 36);
        put(o, "</text>");
        double x0 = scale_x(&s, 0), x1 = is_fin(ms) ? scale_x(&s, ms) : x0;
        putf(o, "<rect class=\"layer-bar\" style=\"fill:%s\" x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"16\"><title>",
             op_colour(l->op), x1 < x0 ? x1 : x0, y + 2, fabs(x1 - x0));
        put_text(o, l->name, 0);
        put(o, " (");
        put_text(o, l->op, 0);
        putf(o, "): %s ms</title></rect>", fmt_num(b1, sizeof b1, ms));
        putf(o, "<text class=\"small\" x=\"%.2f\" y=\"%.2f\">%s ms \xC2\xB7 %s \xC2\xB7 ", LAYER_NOTE_X, y + 13,
             fmt_num(b4, sizeof b4, ms), fmt_pct(b2, sizeof b2, sh));
        put_text(o, l->op, 12);
        put(o, " \xC2\xB7 ");
        put_text(o, l->precision, 6);
        put(o, " \xC2\xB7 ");
        put_text(o, l->kernel, 14);
        if (is_fin(l->gflops) && l->gflops >= 0) putf(o, " \xC2\xB7 %s GF/s", fmt_num(b3, sizeof b3, clampv(l->gflops)));
        put(o, "</text>\n");
    }
    put(o, "</svg>\n");
    putf(o, "<p class=\"note\">The %zu slowest of %zu layers by time per run (colour by op type); right: "
            "time \xC2\xB7 share of the profiled time \xC2\xB7 op \xC2\xB7 precision \xC2\xB7 kernel \xC2\xB7 GFLOP/s where the FLOP count is known."
            "</p>\n",
         top, n);

    /* Per op type: layers grouped by op name, slowest first. */
    size_t ng = 0;
    for (size_t i = 0; i < n; i++) {
        const struct report_layer *l = &r->layers[i];
        size_t g = 0;
        while (g < ng && !same_str(groups[g].op, l->op)) g++;
        if (g == ng) {
            memset(&groups[ng], 0, sizeof groups[ng]);
            groups[ng++].op = l->op;
        }
        double ms = clampv(l->ms), sh = layer_share(l, total);
        groups[g].count++;
        if (is_fin(ms)) groups[g].ms = add_sat(groups[g].ms, ms);
        if (is_fin(sh)) groups[g].share = add_sat(groups[g].share, clampv(sh));
        if (is_fin(ms) && is_fin(l->gflops) && l->gflops >= 0) {
            groups[g].flop_ms = add_sat(groups[g].flop_ms, clampv(clampv(l->gflops) * ms));
            groups[g].known_ms = add_sat(groups[g].known_ms, ms);
        }
    }
    qsort(groups, ng, sizeof *groups, cmp_group);
    put(o, "<h3>By op type</h3>\n<table id=\"layer-ops\">\n<thead><tr><th>op</th><th class=\"num\">layers</th>"
           "<th class=\"num\">ms per run</th><th class=\"num\">share</th><th class=\"num\">GFLOP/s</th></tr></thead>\n"
           "<tbody>\n");
    for (size_t g = 0; g < ng; g++) {
        const struct op_group *gr = &groups[g];
        double gf = gr->known_ms > 0 ? clampv(gr->flop_ms / gr->known_ms) : NAN;
        putf(o, "<tr><td><span class=\"swatch\" style=\"background:%s;margin-left:0\"></span>", op_colour(gr->op));
        put_text(o, gr->op, 0);
        putf(o, "</td><td class=\"num\">%zu</td><td class=\"num\">%s</td><td class=\"num\">%s</td>"
                "<td class=\"num\">%s</td></tr>\n",
             gr->count, fmt_num(b1, sizeof b1, gr->ms), fmt_pct(b2, sizeof b2, gr->share),
             fmt_num(b4, sizeof b4, gf));
    }
    put(o, "</tbody>\n</table>\n");

    putf(o, "<details><summary>All %zu layers, slowest first</summary>\n<table id=\"layer-table\">\n<thead><tr>"
            "<th>layer</th><th>op</th><th>precision</th><th>kernel</th><th class=\"num\">ms per run</th>"
            "<th class=\"num\">share</th><th class=\"num\">GFLOP/s</th></tr></thead>\n<tbody>\n",
         n);
    for (size_t k = 0; k < n; k++) {
        put(o, "<tr>");
        put_layer_cells(o, &r->layers[idx[k]], total);
        put(o, "</tr>\n");
    }
    put(o, "</tbody>\n</table>\n</details>\n</section>\n");
    free(idx);
    free(groups);
    return 0;
}

static void put_summary(struct out *o, const struct bench_report *r, const struct row_stats *st) {
    char b[8][32];
    put(o, "<section>\n<h2>All numbers</h2>\n<div class=\"wide\"><table id=\"summary\">\n<thead><tr><th>#</th><th>spec</th><th>model</th>"
           "<th>precision</th><th>typing</th><th>backend</th><th class=\"num\">runs</th><th class=\"num\">min ms</th>"
           "<th class=\"num\">median ms</th><th class=\"num\">mean ms</th><th class=\"num\">p90 ms</th>"
           "<th class=\"num\">max ms</th><th class=\"num\">ratio</th><th class=\"num\">ratio p10\xE2\x80\x93p90</th>"
           "</tr></thead>\n<tbody>\n");
    for (size_t i = 0; i < r->n_rows; i++) {
        const struct report_row *row = &r->rows[i];
        putf(o, "<tr class=\"row%s\"><td class=\"num\">%zu</td><td>", row_class(r, i), i + 1);
        put_text(o, row->spec, 0);
        if (row->is_peer) put(o, " (peer)");
        put(o, "</td><td>");
        put_text(o, row->model, 0);
        put(o, "</td><td>");
        put_text(o, row->precision, 0);
        put(o, "</td><td>");
        put_text(o, row->typing, 0);
        put(o, "</td><td>");
        put_text(o, row->backend, 0);
        putf(o,
             "</td><td class=\"num\">%zu</td><td class=\"num\">%s</td><td class=\"num\">%s</td><td class=\"num\">%s</td>"
             "<td class=\"num\">%s</td><td class=\"num\">%s</td><td class=\"num\">%s</td>"
             "<td class=\"num\">%s \xE2\x80\x93 %s</td></tr>\n",
             row->lat_ms ? row->n : 0, fmt_num(b[0], 32, st[i].min), fmt_num(b[1], 32, clampv(row->median)),
             fmt_num(b[2], 32, st[i].mean), fmt_num(b[3], 32, clampv(row->p90)), fmt_num(b[4], 32, st[i].max),
             fmt_ratio(b[5], 32, row->ratio), fmt_ratio(b[6], 32, row->ratio_p10),
             fmt_ratio(b[7], 32, row->ratio_p90));
    }
    if (!r->n_rows) put(o, "<tr><td colspan=\"14\">no rows were measured</td></tr>\n");
    put(o, "</tbody>\n</table></div>\n<p class=\"note\">ratio = median / median of row 1; its spread is the p10 and p90 of "
           "the per-round ratios (rows are measured interleaved). \"-\": unknown.</p>\n</section>\n");
}

static void put_header(struct out *o, const struct bench_report *r) {
    char b1[64], b2[64], when[64];
    time_t now = time(NULL);
    struct tm tm;
    if (gmtime_r(&now, &tm) == NULL || !strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm))
        snprintf(when, sizeof when, "-");
    put(o, "<header>\n<h1>");
    put_text(o, r->title ? r->title : "mixrt bench", 0);
    put(o, "</h1>\n<dl class=\"meta\">\n<dt>model</dt><dd>");
    put_text(o, r->model, 0);
    put(o, "</dd>\n<dt>machine</dt><dd>");
    put_text(o, r->machine, 0);
    put(o, "</dd>\n<dt>mixrt</dt><dd>");
    put_text(o, r->mixrt_version, 0);
    putf(o, "</dd>\n<dt>peak resident memory</dt><dd>%s</dd>\n<dt>planned activation memory</dt><dd>%s</dd>\n",
         fmt_bytes(b1, sizeof b1, r->peak_rss_bytes), fmt_bytes(b2, sizeof b2, r->activation_bytes));
    putf(o, "<dt>rows</dt><dd>%zu</dd>\n<dt>generated</dt><dd>%s</dd>\n</dl>\n</header>\n", r->rows ? r->n_rows : 0,
         when);
}

/* The error line of the CLI contract, with control bytes of the path escaped. */
static int report_fail(const char *path, const char *what) {
    fputs("mixrt: error: cannot write report '", stderr);
    for (const unsigned char *p = (const unsigned char *)(path ? path : "(null)"); *p; p++) {
        if (*p < 0x20 || *p == 0x7F) fprintf(stderr, "\\x%02X", *p);
        else fputc(*p, stderr);
    }
    fprintf(stderr, "': %s\n", what);
    return 1;
}

int report_write_html(const char *path, const struct bench_report *r) {
    if (!path || !*path) return report_fail(path, "no file name");
    if (!r) return report_fail(path, "no report");
    struct bench_report rep = *r;
    if (!rep.rows) rep.n_rows = 0;
    if (!rep.layers) rep.n_layers = 0;
    if (rep.n_rows && rep.n_rows > SIZE_MAX / sizeof(struct row_stats)) return report_fail(path, "too many rows");
    struct row_stats *st = calloc(rep.n_rows ? rep.n_rows : 1, sizeof *st);
    if (!st) return report_fail(path, "out of memory");
    int rc = 1;
    FILE *f = NULL;
    for (size_t i = 0; i < rep.n_rows; i++)
        if (row_stats_init(&st[i], &rep.rows[i])) {
            report_fail(path, "out of memory");
            goto fail;
        }
    f = fopen(path, "wb");
    if (!f) {
        report_fail(path, strerror(errno));
        goto fail;
    }
    struct out o = {f};
    put(&o, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>");
    put_text(&o, rep.title ? rep.title : "mixrt bench", 0);
    put(&o, "</title>\n<style>\n");
    put(&o, report_css);
    put(&o, "</style>\n</head>\n<body>\n");
    put_header(&o, &rep);
    put_comparison(&o, &rep);
    put_distribution(&o, &rep, st);
    if (put_layers(&o, &rep)) {
        report_fail(path, "out of memory");
        goto fail;
    }
    put_summary(&o, &rep, st);
    put(&o, "<footer><p class=\"note\">Written by mixrt bench: one self-contained file (inline CSS and SVG, no "
            "scripts, nothing fetched).</p></footer>\n</body>\n</html>\n");
    if (ferror(f)) {
        report_fail(path, "write error");
        goto fail;
    }
    int e = fclose(f);
    f = NULL;
    if (e) {
        report_fail(path, strerror(errno));
        goto fail;
    }
    rc = 0;
fail:
    if (f) fclose(f);
    for (size_t i = 0; i < rep.n_rows; i++) free(st[i].sorted);
    free(st);
    return rc;
}
