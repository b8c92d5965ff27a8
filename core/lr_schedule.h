/*
 * lr_schedule.h - the learning rate at each optimizer step.
 *
 * Hugging Face's schedules (transformers.optimization), with
 * num_training_steps T = schedule.steps, W = schedule.warmup_steps and the
 * step s counted from 0:
 *   warm-up (s < W):  lr * s / max(1, W)           (0 at step 0)
 *   then factor f(s):
 *     constant        1
 *     linear          max(0, (T - s) / max(1, T - W))
 *     cosine          max(0, 0.5 * (1 + cos(pi * p))), p = (s - W) / max(1, T - W)
 *                     (num_cycles 0.5: half a cycle, from lr down to min_lr)
 *   lr(s) = min_lr + (lr - min_lr) * f(s)
 * With min_lr = 0 that is get_{constant,linear,cosine}_schedule_with_warmup;
 * with min_lr it is get_cosine_with_min_lr_schedule_with_warmup's
 * f * (1 - min_lr/lr) + min_lr/lr, times lr (and the same rule for linear).
 */
#ifndef ORCH_LR_SCHEDULE_H
#define ORCH_LR_SCHEDULE_H

#include <stdint.h>

#include "core/pipeline.h"

/* The learning rate of step `step` (0-based) under o's lr, schedule and
 * min_lr and s's steps and warmup_steps. */
double orch_lr_at(const orch_optimizer *o, const orch_schedule *s, int64_t step);

#endif
