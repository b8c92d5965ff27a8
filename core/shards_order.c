/* shards_order.c - the shuffle buffer's epoch order; see shards_order.h. */
#include "core/shards_order.h"

#include "core/dataset.h"

#define GOLDEN 0x9e3779b97f4a7c15ull

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* An unbiased integer in [0, bound) from splitmix64 state. */
static int draw(uint64_t *state, int bound)
{
    uint64_t b = (uint64_t)bound, threshold = (0 - b) % b, r;
    do {
        *state += GOLDEN;
        r = mix64(*state);
    } while (r < threshold);
    return (int)(r % b);
}

int orch_shards_order_scratch(int n_shards, int n_images, int shuffle)
{
    return n_shards + (shuffle < n_images ? shuffle : n_images);
}

void orch_shards_order(const int *first_image, int n_shards, int shuffle, uint64_t seed,
                       int64_t epoch, int *scratch, int *perm)
{
    int n = first_image[n_shards];
    if (shuffle <= 0 || n <= 1) {
        for (int i = 0; i < n; i++)
            perm[i] = i;
        return;
    }
    /* the shard order: orch_dataset_order's permutation of n_shards items */
    int *shard_order = scratch, *buf = scratch + n_shards;
    orch_dataset ds_shards = {0};
    ds_shards.n_images = n_shards;
    orch_dataset_order(&ds_shards, seed, epoch, shard_order);
    int cap = shuffle < n ? shuffle : n, held = 0, out = 0;
    uint64_t state = mix64(seed ^ mix64((uint64_t)epoch + 2 * GOLDEN));
    for (int k = 0; k < n_shards; k++) {
        int s = shard_order[k];
        for (int i = first_image[s]; i < first_image[s + 1]; i++) {
            if (held < cap) {
                buf[held++] = i;
                continue;
            }
            int slot = draw(&state, cap);
            perm[out++] = buf[slot];
            buf[slot] = i;
        }
    }
    while (held > 0) {
        int slot = draw(&state, held);
        perm[out++] = buf[slot];
        buf[slot] = buf[--held];
    }
}
