/*
 * shards_order.h - the epoch order of a sharded set: WebDataset's
 * shuffle(n) buffer over the shards' stream, a pure function of
 * (seed, epoch).
 *
 * The stream of an epoch is the shards in a seeded order (a Fisher-Yates
 * permutation of the shards, core/dataset.h's orch_dataset_order rule over
 * n_shards), each shard's images in member order. The buffer holds at most
 * `shuffle` images: it fills from the stream; once full, each further
 * stream image replaces a uniformly drawn slot, whose image is emitted;
 * when the stream ends, the remaining images are emitted in a drawn order
 * (slot k drawn, then filled with the last). Draws come from splitmix64
 * seeded with mix(seed ^ mix(epoch + 2 golden)), unbiased as in
 * orch_dataset_order. So an image is emitted at most `shuffle` positions
 * before its stream position, and memory stays bounded by the buffer.
 *
 * shuffle = 0 is the stream order of the shards as expanded (sorted names),
 * every epoch: the order of the same images as a folder or an .npy set.
 */
#ifndef ORCH_SHARDS_ORDER_H
#define ORCH_SHARDS_ORDER_H

#include <stdint.h>

/* The ints of scratch orch_shards_order needs (shard order and buffer). */
int orch_shards_order_scratch(int n_shards, int n_images, int shuffle);

/* perm[0..first_image[n_shards]) gets the epoch's order of image indices;
 * shard s holds images [first_image[s], first_image[s + 1]). scratch is the
 * caller's, orch_shards_order_scratch ints (the order allocates nothing, so
 * it cannot fail). */
void orch_shards_order(const int *first_image, int n_shards, int shuffle, uint64_t seed,
                       int64_t epoch, int *scratch, int *perm);

#endif
