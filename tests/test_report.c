/* test_report.c - the bench HTML report (tools/report.c, linked in by tests/report.cmake):
 * seeded random reports with hostile names and extreme numbers are written and read back;
 * every tag and attribute must be one the writer emits, every id appear once, one bar per
 * row, geometry finite, the text valid UTF-8. `test_report --sample FILE` writes the fixed
 * sample that tests/report_check.py renders in headless Chromium. */
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"
#include "testutil.h"

#define MAX_ROWS 8
#define MAX_LAYERS 1200
#define MAX_RUNS 3000

/* Names a model (or a command line) can carry: tags, attribute breakers, entities,
 * comments, invalid UTF-8, control bytes, and non-ASCII text. */
static const char *const hostile[] = {
    "<script>alert(1)</script>",
    "\"><img src=x onerror=alert(1)>",
    "a&b 'quoted' </svg></body></html>",
    "<!-- not a comment --> <![CDATA[ x ]]>",
    "bad utf8 \xff\xfe\xc3 end \xe2\x82",
    "ctrl \x01\x1b[31m red \x7f tab\tnl\n",
    "\xe5\xb1\x82_\xce\xb1\xe2\x86\x92\xce\xb2 conv/1",
    "</title><style>body{display:none}</style>",
    "&lt;already&gt; &amp; escaped",
    "",
};
#define N_HOSTILE (sizeof hostile / sizeof hostile[0])

static const char *const ops[] = {"Conv", "MatMul", "Add", "Relu", "<Softmax>", "LayerNormalization", "Gemm"};

struct sample {
    struct report_row rows[MAX_ROWS];
    struct report_layer layers[MAX_LAYERS];
    double lat[MAX_ROWS][MAX_RUNS];
    char long_name[6000];
    struct bench_report r;
};

static const char *pick_name(void) {
    uint64_t k = tu_rand() % (N_HOSTILE + 3);
    if (k < N_HOSTILE) return hostile[k];
    return k == N_HOSTILE ? NULL : k == N_HOSTILE + 1 ? "fp32" : "model.onnx";
}

/* A random report: rows with lognormal-ish latencies (occasionally with outliers or
 * special values), layers with random times, names drawn from the hostile list. */
static void sample_random(struct sample *s, size_t n_rows, size_t n_layers) {
    memset(&s->r, 0, sizeof s->r);
    memset(s->long_name, 'x', sizeof s->long_name - 1);
    s->long_name[sizeof s->long_name - 1] = 0;
    for (size_t i = 0; i < sizeof s->long_name - 1; i += 97) s->long_name[i] = '<';
    for (size_t i = 0; i < n_rows; i++) {
        struct report_row *row = &s->rows[i];
        size_t n = (size_t)(tu_rand() % 4 == 0 ? tu_rand() % 3 : tu_rand() % MAX_RUNS);
        double centre = exp(tu_uniform(-5, 6));
        for (size_t k = 0; k < n; k++) {
            double v = centre * exp(tu_uniform(-0.2, 0.2));
            uint64_t u = tu_rand() % 500;
            if (u == 0) v = NAN;
            else if (u == 1) v = centre * 100;
            s->lat[i][k] = v;
        }
        *row = (struct report_row){.spec = i == 1 ? s->long_name : pick_name(),
                                   .model = pick_name(),
                                   .precision = pick_name(),
                                   .typing = tu_rand() % 2 ? "strong" : "weak",
                                   .backend = pick_name(),
                                   .lat_ms = tu_rand() % 10 ? s->lat[i] : NULL,
                                   .n = n,
                                   .median = tu_rand() % 8 ? centre : NAN,
                                   .p90 = centre * 1.1,
                                   .ratio = tu_uniform(0.2, 3),
                                   .ratio_p10 = tu_rand() % 6 ? tu_uniform(0.2, 1) : NAN,
                                   .ratio_p90 = tu_uniform(1, 3),
                                   .is_peer = i + 1 == n_rows && tu_rand() % 2};
    }
    for (size_t i = 0; i < n_layers; i++) {
        uint64_t u = tu_rand() % 50;
        s->layers[i] = (struct report_layer){.name = tu_rand() % 3 ? pick_name() : "layer",
                                             .op = tu_rand() % 5 ? ops[tu_rand() % 7] : pick_name(),
                                             .precision = pick_name(),
                                             .kernel = pick_name(),
                                             .ms = u == 0 ? NAN : u == 1 ? 0 : exp(tu_uniform(-8, 2)),
                                             .share = u == 2 ? NAN : tu_uniform(0, 0.2),
                                             .gflops = u < 10 ? -1 : u == 11 ? NAN : tu_uniform(0, 500)};
    }
    s->r = (struct bench_report){.title = pick_name(),
                                 .mixrt_version = "0.1.0 <test>",
                                 .machine = pick_name(),
                                 .model = pick_name(),
                                 .rows = n_rows ? s->rows : NULL,
                                 .n_rows = n_rows,
                                 .layers = n_layers ? s->layers : NULL,
                                 .n_layers = n_layers,
                                 .peak_rss_bytes = tu_rand() % 3 ? (long long)(tu_rand() >> 20) : -1,
                                 .activation_bytes = tu_rand() % 3 ? (long long)(tu_rand() >> 30) : -1};
}

/* ---- reading the page back ---- */

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            char *nb = realloc(buf, cap * 2 + 1);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf) buf[n] = 0;
    *len = n;
    return buf;
}

static size_t count_str(const char *hay, const char *needle) {
    size_t n = 0, l = strlen(needle);
    for (const char *p = strstr(hay, needle); p; p = strstr(p + l, needle)) n++;
    return n;
}

static bool utf8_valid(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        size_t l = c < 0x80 ? 1 : (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3 : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
        if (!l || i + l > n) return false;
        for (size_t k = 1; k < l; k++)
            if ((s[i + k] & 0xC0) != 0x80) return false;
        if (c == 0 || (c < 0x20 && c != '\n')) return false; /* the writer emits no raw controls */
        i += l;
    }
    return true;
}

static bool in_list(const char *name, size_t len, const char *const *list) {
    for (; *list; list++)
        if (strlen(*list) == len && memcmp(*list, name, len) == 0) return true;
    return false;
}

static const char *const tags[] = {"html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "h3",
                                   "dl", "dt", "dd", "section", "svg", "line", "text", "rect", "path", "p", "span",
                                   "table", "thead", "tbody", "tr", "th", "td", "details", "summary", "footer", "div", NULL};
static const char *const attrs[] = {"lang", "charset", "name", "content", "class", "id", "viewBox", "role",
                                    "aria-label", "x", "y", "x1", "y1", "x2", "y2", "width", "height", "d",
                                    "text-anchor", "style", "colspan", NULL};
static const char *const numeric_attrs[] = {"x", "y", "x1", "y1", "x2", "y2", "width", "height", NULL};

/* Every value of a numeric attribute (and viewBox, path data) must be finite numbers. */
static bool numbers_ok(const char *name, size_t nlen, const char *v, size_t vlen) {
    char tmp[512];
    if (nlen == 1 && name[0] == 'd') {
        for (size_t k = 0; k < vlen; k++)
            if (!strchr("0123456789.-+ Mhvz", v[k])) return false;
        return true;
    }
    if (vlen >= sizeof tmp) return !in_list(name, nlen, numeric_attrs) && !(nlen == 7 && !memcmp(name, "viewBox", 7));
    memcpy(tmp, v, vlen);
    tmp[vlen] = 0;
    if (in_list(name, nlen, numeric_attrs)) {
        char *end;
        double x = strtod(tmp, &end);
        return end != tmp && *end == 0 && isfinite(x);
    }
    if (nlen == 7 && memcmp(name, "viewBox", 7) == 0) {
        char *p = tmp, *end;
        for (int k = 0; k < 4; k++, p = end) {
            double x = strtod(p, &end);
            if (end == p || !isfinite(x)) return false;
        }
        return *p == 0;
    }
    return true;
}

/* Walks every tag: names and attribute names from the writer's lists, quoted values, no
 * NaN geometry, elements balanced (void: meta; "/>" closes). Returns an error or NULL. */
static const char *check_markup(const char *s, char *where, size_t where_size) {
    const char *stack[64];
    size_t stack_len[64], depth = 0;
    const char *p = s;
    if (strncmp(p, "<!DOCTYPE html>\n", 16) != 0) return "no doctype";
    p += 16;
    for (; (p = strchr(p, '<')) != NULL;) {
        snprintf(where, where_size, "at byte %zu: %.60s", (size_t)(p - s), p);
        bool closing = p[1] == '/';
        const char *n = p + 1 + closing;
        size_t nl = strspn(n, "abcdefghijklmnopqrstuvwxyz0123456789");
        if (!nl || !in_list(n, nl, tags)) return "unexpected tag";
        const char *q = n + nl;
        if (closing) {
            if (*q != '>') return "bad closing tag";
            if (!depth || stack_len[depth - 1] != nl || memcmp(stack[depth - 1], n, nl)) return "unbalanced close";
            depth--;
            p = q + 1;
            continue;
        }
        for (;;) {
            q += strspn(q, " \n");
            if (*q == '>' || (q[0] == '/' && q[1] == '>')) break;
            size_t al = strspn(q, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-0123456789");
            if (!al || !in_list(q, al, attrs)) return "unexpected attribute";
            if (q[al] != '=' || q[al + 1] != '"') return "unquoted attribute";
            const char *v = q + al + 2, *ve = strchr(v, '"');
            if (!ve) return "unterminated attribute";
            if (memchr(v, '<', (size_t)(ve - v)) || memchr(v, '>', (size_t)(ve - v))) return "raw < or > in attribute";
            if (!numbers_ok(q, al, v, (size_t)(ve - v))) return "non-finite or malformed number";
            q = ve + 1;
        }
        bool self_closed = *q == '/';
        p = q + (self_closed ? 2 : 1);
        if (self_closed || (nl == 4 && memcmp(n, "meta", 4) == 0)) continue;
        if (depth == 64) return "nesting too deep";
        stack[depth] = n;
        stack_len[depth++] = nl;
        if ((nl == 5 && memcmp(n, "style", 5) == 0)) { /* raw text: must end at its close tag */
            const char *e = strstr(p, "</style>");
            if (!e) return "unterminated style";
            p = e;
        }
    }
    if (depth) return "unclosed elements";
    where[0] = 0;
    return NULL;
}

static size_t expected_layer_bars(const struct bench_report *r) {
    size_t n = r->layers ? r->n_layers : 0;
    return n < 25 ? n : 25;
}

/* Writes r to path and checks the page; label names the case in failures. */
static void check_report(const char *label, const struct bench_report *r, const char *path) {
    int rc = report_write_html(path, r);
    TU_CHECK(rc == 0, "%s: report_write_html returned %d", label, rc);
    if (rc) return;
    size_t len = 0;
    char *page = slurp(path, &len);
    TU_CHECK(page != NULL, "%s: cannot read %s back", label, path);
    if (!page) return;
    TU_CHECK(strlen(page) == len, "%s: NUL byte in the page", label);
    TU_CHECK(utf8_valid((const unsigned char *)page, len), "%s: page is not valid UTF-8 (or has raw controls)", label);
    static const char *const ids[] = {"comparison", "distribution", "layers", "summary"};
    for (size_t k = 0; k < 4; k++) {
        char id[64];
        snprintf(id, sizeof id, "id=\"%s\"", ids[k]);
        size_t c = count_str(page, id);
        TU_CHECK(c == 1, "%s: %s appears %zu times", label, id, c);
    }
    size_t n_rows = r->rows ? r->n_rows : 0;
    size_t bars = count_str(page, "<rect class=\"row-bar");
    TU_CHECK(bars == n_rows, "%s: %zu row bars for %zu rows", label, bars, n_rows);
    size_t lbars = count_str(page, "<rect class=\"layer-bar\"");
    TU_CHECK(lbars == expected_layer_bars(r), "%s: %zu layer bars, expected %zu", label, lbars, expected_layer_bars(r));
    size_t trs = count_str(page, "<tr class=\"row");
    TU_CHECK(trs == n_rows, "%s: %zu summary rows for %zu rows", label, trs, n_rows);
    char where[128];
    const char *err = check_markup(page, where, sizeof where);
    TU_CHECK(err == NULL, "%s: %s %s", label, err ? err : "", where);
    TU_CHECK(strstr(page, "<script") == NULL && strstr(page, "<img") == NULL, "%s: a name opened a tag", label);
    TU_CHECK(strstr(page, "http://") == NULL && strstr(page, "https://") == NULL && strstr(page, "url(") == NULL,
             "%s: the page refers to something outside itself", label);
    TU_CHECK(strstr(page, "nan") == NULL && strstr(page, "inf<") == NULL && strstr(page, ">inf") == NULL,
             "%s: a NaN or inf was printed", label);
    free(page);
}

/* The fixed page the Chromium test renders: 4 rows (one peer, one hostile spec), 40
 * layers. Prints the counts the checker expects. */
static int write_sample(const char *path) {
    static struct sample s;
    tu_seed(7);
    sample_random(&s, 4, 40);
    for (size_t i = 0; i < 4; i++) {
        s.rows[i].lat_ms = s.lat[i];
        s.rows[i].n = 200 + 100 * i;
        for (size_t k = 0; k < s.rows[i].n; k++) s.lat[i][k] = (1.0 + 0.3 * (double)i) * exp(tu_uniform(-0.1, 0.25));
        s.rows[i].median = 1.0 + 0.3 * (double)i;
        s.rows[i].p90 = s.rows[i].median * 1.15;
        s.rows[i].ratio = s.rows[i].median;
        s.rows[i].ratio_p10 = s.rows[i].ratio * 0.95;
        s.rows[i].ratio_p90 = s.rows[i].ratio * 1.05;
        s.rows[i].is_peer = i == 3;
    }
    s.rows[0].spec = "fp32";
    s.rows[1].spec = "<script>alert('spec')</script>";
    s.rows[2].spec = "fp32,bf16:strong";
    s.rows[3].spec = "ort";
    s.rows[3].backend = "onnxruntime-node";
    s.layers[0].name = "<script>alert('layer')</script>";
    s.layers[0].ms = 10;
    s.r.title = "mixrt bench <sample> & report";
    if (report_write_html(path, &s.r)) return 1;
    printf("sample: rows=%zu layer_bars=%zu scripts_in_names=2\n", s.r.n_rows, expected_layer_bars(&s.r));
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--sample") == 0) return write_sample(argv[2]);
    if (argc != 1) {
        fprintf(stderr, "usage: test_report [--sample FILE.html]\n");
        return 2;
    }
    static struct sample s;
    const char *path = "test_report_out.html";

    /* Random reports, every size class. */
    tu_seed(20261129);
    for (int it = 0; it < 40; it++) {
        char label[64];
        size_t n_rows = (size_t)(tu_rand() % (MAX_ROWS + 1));
        size_t n_layers = it % 4 == 0 ? 0 : it % 4 == 1 ? (size_t)(tu_rand() % 30) : (size_t)(tu_rand() % MAX_LAYERS);
        snprintf(label, sizeof label, "random #%d (%zu rows, %zu layers)", it, n_rows, n_layers);
        sample_random(&s, n_rows, n_layers);
        check_report(label, &s.r, path);
    }

    /* Nothing at all. */
    struct bench_report empty = {.peak_rss_bytes = -1, .activation_bytes = -1};
    check_report("empty", &empty, path);

    /* One row with one run; a row with no runs; the special values. */
    double one = 1.5;
    struct report_row r1 = {.spec = "fp32", .lat_ms = &one, .n = 1, .median = 1.5, .p90 = 1.5, .ratio = 1,
                            .ratio_p10 = 1, .ratio_p90 = 1};
    struct bench_report single = {.title = "one", .rows = &r1, .n_rows = 1, .peak_rss_bytes = 0, .activation_bytes = 1};
    check_report("one row, one run", &single, path);

    double extreme[] = {1e300, 1e-300, DBL_MAX, INFINITY, -INFINITY, NAN, -5, 0, DBL_MIN, 4.9e-324};
    struct report_row rx[4] = {
        {.spec = "extreme", .lat_ms = extreme, .n = 10, .median = DBL_MAX, .p90 = INFINITY, .ratio = NAN,
         .ratio_p10 = -INFINITY, .ratio_p90 = 1e308},
        {.spec = "no runs", .lat_ms = NULL, .n = 0, .median = NAN, .p90 = NAN, .ratio = NAN, .ratio_p10 = NAN,
         .ratio_p90 = NAN},
        {.spec = "n without data", .lat_ms = NULL, .n = 12, .median = 1e-300, .p90 = -3, .ratio = 0, .ratio_p10 = 0,
         .ratio_p90 = 0, .is_peer = 1},
        {.spec = "tiny", .lat_ms = extreme + 8, .n = 2, .median = 4.9e-324, .p90 = DBL_MIN, .ratio = 1e-300,
         .ratio_p10 = 1e-301, .ratio_p90 = 1e-299},
    };
    struct report_layer lx[3] = {
        {.name = "layer with infinite times", .op = NULL, .precision = NULL, .kernel = NULL, .ms = INFINITY, .share = INFINITY,
         .gflops = INFINITY},
        {.name = NULL, .op = "Conv", .ms = -1, .share = -2, .gflops = NAN},
        {.name = "huge", .op = "Conv", .ms = DBL_MAX, .share = NAN, .gflops = DBL_MAX},
    };
    struct bench_report ext = {.title = NULL, .rows = rx, .n_rows = 4, .layers = lx, .n_layers = 3,
                               .peak_rss_bytes = 0x7fffffffffffffffLL, .activation_bytes = -7};
    check_report("extreme values", &ext, path);
    ext.rows = rx + 1; /* rows without any timed run: the distribution says so */
    ext.n_rows = 2;
    check_report("rows without runs", &ext, path);

    /* Escaping, checked on the text itself. */
    {
        struct report_row rh = {.spec = "<script>alert(1)</script>", .model = "\"><img onerror=x>", .median = 1,
                                .p90 = 1, .ratio = 1, .ratio_p10 = 1, .ratio_p90 = 1};
        struct bench_report hr = {.title = "a&b", .rows = &rh, .n_rows = 1, .peak_rss_bytes = -1,
                                  .activation_bytes = -1};
        check_report("escaping", &hr, path);
        size_t len;
        char *page = slurp(path, &len);
        TU_CHECK(page && strstr(page, "&lt;script&gt;alert(1)&lt;/script&gt;"), "escaping: the spec is not shown escaped");
        TU_CHECK(page && strstr(page, "&quot;&gt;&lt;img onerror=x&gt;"), "escaping: the model is not shown escaped");
        TU_CHECK(page && strstr(page, "<title>a&amp;b</title>"), "escaping: the title is not escaped");
        free(page);
    }

    /* Failures: one error line and status 1, never a crash. */
    TU_CHECK(report_write_html("/nonexistent-dir/for/test_report.html", &single) == 1, "unwritable path not reported");
    TU_CHECK(report_write_html("/dev/full", &single) == 1, "write error (/dev/full) not reported");
    TU_CHECK(report_write_html(NULL, &single) == 1, "NULL path not reported");
    TU_CHECK(report_write_html(path, NULL) == 1, "NULL report not reported");
    remove(path);
    return tu_finish("test_report");
}
