/* testutil.c - see testutil.h. */
#include "testutil.h"

#include <stdarg.h>

int tu_failures, tu_checks;

void tu_fail(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    tu_failures++;
    if (tu_failures > 50) return;
    fprintf(stderr, "FAIL %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int tu_finish(const char *name) {
    printf("%s: %d checks, %d failed\n", name, tu_checks, tu_failures);
    if (tu_checks == 0) {
        printf("%s: no checks ran\n", name);
        return 1;
    }
    return tu_failures ? 1 : 0;
}

/* The state tu_seed(1) makes, so that a test that never calls tu_seed still draws random
 * numbers (xoshiro's all-zero state yields zeros forever). */
static uint64_t s[4] = {0x910a2dec89025cc1ull, 0xbeeb8da1658eec67ull, 0xf893a2eefb32555eull, 0x71c18690ee42c90bull};
static uint64_t splitmix(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
void tu_seed(uint64_t seed) {
    for (int i = 0; i < 4; i++) s[i] = splitmix(&seed);
}
static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
uint64_t tu_rand(void) {
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}
double tu_uniform(double lo, double hi) { return lo + (hi - lo) * (double)(tu_rand() >> 11) * 0x1p-53; }
