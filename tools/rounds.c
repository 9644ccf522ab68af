/* rounds.c - each round's order of `mixrt bench`'s rows: see rounds.h. Greedy on the
 * transition counts; over the rounds every row comes to run after every row (itself included,
 * across a round's boundary) within a count or two as often as any other. The rotation that
 * stood here before (round k ran k % n, k % n + 1, ...) put row 1 after the peer in two rounds
 * of three with two rows and the peer. */
#include "rounds.h"

#include <stdbool.h>
#include <string.h>

void rounds_init(struct rounds *r) {
    memset(r, 0, sizeof(*r));
    r->last = -1;
}

void rounds_reset_counts(struct rounds *r) { memset(r->after, 0, sizeof(r->after)); }

void rounds_next(struct rounds *r, size_t k, int n, int *order) {
    if (n <= 0) return;
    const int start = (int)(k % (size_t)n);
    if (n > ROUNDS_MAX_ROWS) {
        for (int j = 0; j < n; j++) order[j] = (start + j) % n;
        r->last = order[n - 1];
        return;
    }
    bool used[ROUNDS_MAX_ROWS] = {false};
    int prev = r->last >= 0 && r->last < n ? r->last : -1;
    for (int j = 0; j < n; j++) {
        int best = -1;
        for (int t = 0; t < n; t++) {
            const int b = (start + t) % n;
            if (used[b]) continue;
            if (best < 0 || (prev >= 0 && r->after[prev][b] < r->after[prev][best])) best = b;
        }
        if (prev >= 0) r->after[prev][best]++;
        used[best] = true;
        order[j] = best;
        prev = best;
    }
    r->last = prev;
}
