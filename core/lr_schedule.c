/* lr_schedule.c - the learning rate at each step; see lr_schedule.h. */
#include "core/lr_schedule.h"

#include <math.h>

double orch_lr_at(const orch_optimizer *o, const orch_schedule *s, int64_t step)
{
    int64_t warmup = s->warmup_steps, total = s->steps;
    if (step < warmup)
        return o->lr * (double)step / (double)(warmup > 1 ? warmup : 1);
    double span = (double)(total - warmup > 1 ? total - warmup : 1);
    double factor = 1;
    switch (o->schedule) {
    case ORCH_LR_CONSTANT:
        return o->lr;
    case ORCH_LR_LINEAR:
        factor = (double)(total - step) / span;
        break;
    case ORCH_LR_COSINE:
        factor = 0.5 * (1.0 + cos(M_PI * ((double)(step - warmup) / span)));
        break;
    }
    if (factor < 0) /* past schedule.steps (a resumed run given more steps) */
        factor = 0;
    return o->min_lr + (o->lr - o->min_lr) * factor;
}
