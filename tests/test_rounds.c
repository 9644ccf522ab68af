/* test_rounds.c - the order of `mixrt bench`'s rows in its rounds (tools/rounds.c): every
 * round runs each row once, and over the rounds each row runs right after each row (itself
 * included, across a round's boundary) about as often as any other. The counts here come from
 * the orders written out, not from the struct's own tally; the rotation that stood before
 * fails the same check (shown below), so the check can fail. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "rounds.h"
#include "testutil.h"

enum { MAXN = 9, MAXR = 2000 };

/* after[a][b] of the sequence of rounds (each n long) in seq. */
static void tally(const int *seq, size_t len, int n, unsigned after[MAXN][MAXN]) {
    memset(after, 0, sizeof(unsigned) * MAXN * MAXN);
    for (size_t i = 1; i < len; i++)
        if (seq[i - 1] >= 0 && seq[i - 1] < n && seq[i] >= 0 && seq[i] < n) after[seq[i - 1]][seq[i]]++;
}

/* max - min over every (a, b), and over the rows that run after the last row (the peer). */
static void spread(unsigned after[MAXN][MAXN], int n, unsigned *all, unsigned *peer) {
    unsigned lo = ~0u, hi = 0, plo = ~0u, phi = 0;
    for (int a = 0; a < n; a++)
        for (int b = 0; b < n; b++) {
            unsigned c = after[a][b];
            lo = c < lo ? c : lo, hi = c > hi ? c : hi;
            if (a == n - 1 && b != n - 1) plo = c < plo ? c : plo, phi = c > phi ? c : phi;
        }
    *all = hi - lo;
    *peer = n > 1 ? phi - plo : 0;
}

static bool is_permutation(const int *o, int n) {
    bool seen[ROUNDS_MAX_ROWS + 16] = {false};
    for (int j = 0; j < n; j++) {
        if (o[j] < 0 || o[j] >= n || seen[o[j]]) return false;
        seen[o[j]] = true;
    }
    return true;
}

int main(void) {
    static int seq[MAXN * MAXR];
    static unsigned after[MAXN][MAXN];
    for (int n = 1; n < MAXN; n++) {
        const size_t rounds = (size_t)(60 * n);
        struct rounds r;
        rounds_init(&r);
        for (size_t k = 0; k < rounds; k++) {
            rounds_next(&r, k, n, &seq[k * (size_t)n]);
            TU_CHECK(is_permutation(&seq[k * (size_t)n], n), "n %d round %zu is not a permutation", n, k);
        }
        tally(seq, rounds * (size_t)n, n, after);
        unsigned all, peer;
        spread(after, n, &all, &peer);
        /* 60 n^2 - 1 transitions over n^2 pairs: ~60 each; within a tenth of that */
        TU_CHECK(all <= 6, "n %d: the pair counts spread over %u (more than 6 of ~60)", n, all);
        TU_CHECK(peer <= 3, "n %d: the rows after the last row spread over %u", n, peer);
        if (n == 3)
            TU_CHECK(after[2][0] >= 57 && after[2][0] <= 63 && after[2][1] >= 57 && after[2][1] <= 63,
                     "n 3: rows 0 and 1 ran after row 2 %u and %u times of 180 rounds", after[2][0], after[2][1]);
    }

    /* The rotation (round k: k % n, k % n + 1, ...) leaves row 0 after the last row twice as
     * often as row 1 with three rows: the same check fails it. */
    {
        const int n = 3;
        for (size_t k = 0; k < 180; k++)
            for (int j = 0; j < n; j++) seq[k * n + (size_t)j] = (int)((k + (size_t)j) % n);
        tally(seq, 180 * n, n, after);
        unsigned all, peer;
        spread(after, n, &all, &peer);
        TU_CHECK(peer > 3 && after[2][0] == 2 * after[2][1], "the rotation's rows after the peer: %u and %u",
                 after[2][0], after[2][1]);
    }

    /* The peer dropped mid-run (the last row goes): the rest stay whole rounds, balanced. */
    {
        struct rounds r;
        rounds_init(&r);
        int o[4];
        for (size_t k = 0; k < 7; k++) rounds_next(&r, k, 3, o);
        TU_CHECK(r.last >= 0 && r.last < 3, "last row %d", r.last);
        size_t len = 0;
        for (size_t k = 7; k < 7 + 200; k++) {
            rounds_next(&r, k, 2, &seq[len]);
            TU_CHECK(is_permutation(&seq[len], 2), "after the drop, round %zu", k);
            len += 2;
        }
        tally(seq, len, 2, after);
        unsigned all, peer;
        spread(after, 2, &all, &peer);
        TU_CHECK(all <= 2, "after the drop: the pair counts spread over %u", all);
    }

    /* Past ROUNDS_MAX_ROWS: rotated, still permutations. */
    {
        static int big[ROUNDS_MAX_ROWS + 6];
        struct rounds r;
        rounds_init(&r);
        for (size_t k = 0; k < 5; k++) {
            rounds_next(&r, k, ROUNDS_MAX_ROWS + 6, big);
            TU_CHECK(is_permutation(big, ROUNDS_MAX_ROWS + 6) && big[0] == (int)(k % (ROUNDS_MAX_ROWS + 6)),
                     "%d rows, round %zu", ROUNDS_MAX_ROWS + 6, k);
        }
    }

    /* The same calls give the same orders (a run's order is reproducible). */
    {
        struct rounds a, b;
        rounds_init(&a);
        rounds_init(&b);
        int oa[5], ob[5];
        bool same = true;
        for (size_t k = 0; k < 100; k++) {
            rounds_next(&a, k, 5, oa);
            rounds_next(&b, k, 5, ob);
            same = same && !memcmp(oa, ob, sizeof oa);
        }
        TU_CHECK(same, "two runs of the same rounds differ");
    }
    return tu_finish("test_rounds");
}
