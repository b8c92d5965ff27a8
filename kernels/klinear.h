/*
 * klinear.h - row helpers linear.c shares with lora.c (room-internal).
 */
#ifndef ORCH_KLINEAR_H
#define ORCH_KLINEAR_H

/* y (n, out) += b (out) on every row; returns 1 when every result is
 * finite, 0 when some is NaN or Inf. */
int orch_linear_add_bias(float *y, const float *b, int n, int out);

/* db (out) += sum over the n rows of dy (n, out); deterministic. */
void orch_linear_col_sum(float *db, const float *dy, int n, int out);

#endif
