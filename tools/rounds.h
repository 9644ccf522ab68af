/* rounds.h - the order in which `mixrt bench` runs its rows in each interleaved round
 * (tools/rounds.c). A run's time depends on what ran just before it: the row after the
 * ONNX Runtime peer finds the caches cold and mixrt's worker threads asleep (MnasNet
 * {fp32,bf16}: one plan in two rows, 1.915 against 1.866 ms for the copy that followed the
 * peer half as often). So each round's order is chosen to even out, over the rounds, how often
 * each row runs right after each row (itself included, across a round's boundary). */
#ifndef MIXRT_TOOLS_ROUNDS_H
#define MIXRT_TOOLS_ROUNDS_H

#include <stddef.h>

enum { ROUNDS_MAX_ROWS = 64 };

struct rounds {
    int last;                                         /* the row that ran last, -1 before the first */
    unsigned after[ROUNDS_MAX_ROWS][ROUNDS_MAX_ROWS]; /* after[a][b]: times b ran right after a */
};

/* Starts the count afresh (last = -1). */
void rounds_init(struct rounds *r);

/* Forgets the counts but keeps the last row (the measured rounds after the warm-up). */
void rounds_reset_counts(struct rounds *r);

/* Writes round k's order of rows 0..n-1 to order[] and counts its transitions: each place
 * takes, of the rows not yet run this round, the one that has run after the previous row
 * least often, ties going to the first from row k % n on. Past ROUNDS_MAX_ROWS rows the
 * order is k % n, k % n + 1, ... (rotated, uncounted). */
void rounds_next(struct rounds *r, size_t k, int n, int *order);

#endif
