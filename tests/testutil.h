/* testutil.h - the tiny test harness: checks that count failures and print a
 * reproduction hint, a seeded PRNG, and the summary line. */
#ifndef MIXRT_TESTUTIL_H
#define MIXRT_TESTUTIL_H

#include <stdint.h>
#include <stdio.h>

extern int tu_failures, tu_checks;

void tu_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#define TU_CHECK(cond, ...)                                                                                  \
    do {                                                                                                     \
        tu_checks++;                                                                                         \
        if (!(cond)) tu_fail(__FILE__, __LINE__, __VA_ARGS__);                                               \
    } while (0)

/* Prints "<name>: N checks, M failed" and returns the process exit code. */
int tu_finish(const char *name);

/* xoshiro256** seeded by splitmix64. */
void tu_seed(uint64_t seed);
uint64_t tu_rand(void);
double tu_uniform(double lo, double hi); /* [lo, hi) */

#endif
