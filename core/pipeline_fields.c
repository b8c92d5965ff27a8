/* pipeline_fields.c - the field table and its markdown; see pipeline_fields.h. */
#include "core/pipeline_fields.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"

/* ----------------------------------------------------------- predicates */

static int never(const orch_pipeline *p)
{
    (void)p;
    return 0;
}
static int has_preset(const orch_pipeline *p)
{
    return p->model.preset[0] != '\0';
}
static int no_weights(const orch_pipeline *p)
{
    return p->model.weights[0] == '\0';
}
static int has_weights(const orch_pipeline *p)
{
    return p->model.weights[0] != '\0';
}
static int synthetic(const orch_pipeline *p)
{
    return p->data.source == ORCH_DATA_SYNTHETIC;
}
static int npy(const orch_pipeline *p)
{
    return p->data.source == ORCH_DATA_NPY;
}
static int images(const orch_pipeline *p)
{
    return p->data.source == ORCH_DATA_IMAGES;
}
static int shards(const orch_pipeline *p)
{
    return p->data.source == ORCH_DATA_SHARDS;
}
/* the sources before images and shards: their JSON keeps every key it had */
static int synthetic_or_npy(const orch_pipeline *p)
{
    return synthetic(p) || npy(p);
}
static int npy_or_images(const orch_pipeline *p)
{
    return npy(p) || images(p);
}
/* labels was written for every source before shards */
static int not_shards(const orch_pipeline *p)
{
    return !shards(p);
}
static int shuffle_not_1000(const orch_pipeline *p)
{
    return shards(p) && p->data.shuffle != 1000;
}
static int keeps_order(const orch_pipeline *p)
{
    return !shards(p) && p->data.shuffle != 1;
}
static int has_data_seed(const orch_pipeline *p)
{
    return p->data.has_seed;
}
static int decodes_images(const orch_pipeline *p)
{
    return images(p) || shards(p) ||
           (p->eval.enabled && p->eval.split == 0 &&
            (p->eval.data.source == ORCH_DATA_IMAGES || p->eval.data.source == ORCH_DATA_SHARDS));
}
/* written when not the hub's values (the rows' defaults, which
 * tests/test_pipeline_fields.c holds to orch_processor_defaults); 0 stands
 * for them too (a pipeline built by hand) */
static int processor_bounds_set(const orch_pipeline *p)
{
    int min = p->processor.min_pixels, max = p->processor.max_pixels;
    return (min != 0 && min != atoi(orch_field_get("processor.min_pixels")->def)) ||
           (max != 0 && max != atoi(orch_field_get("processor.max_pixels")->def));
}
static int evaluates(const orch_pipeline *p)
{
    return p->eval.enabled;
}
static int eval_set(const orch_pipeline *p)
{
    return p->eval.enabled && p->eval.split == 0;
}
static int eval_split(const orch_pipeline *p)
{
    return p->eval.enabled && p->eval.split > 0;
}
static int eval_end_only(const orch_pipeline *p)
{
    return p->eval.every == 0;
}
static int stops(const orch_pipeline *p)
{
    return p->schedule.stop.enabled;
}
static int lr_decays(const orch_pipeline *p)
{
    return p->optimizer.schedule != ORCH_LR_CONSTANT;
}
static int has_min_lr(const orch_pipeline *p)
{
    return p->optimizer.min_lr != 0;
}
static int synthetic_grids(const orch_pipeline *p)
{
    return synthetic(p) && p->data.n_grids > 0;
}
static int synthetic_size(const orch_pipeline *p)
{
    return synthetic(p) && p->data.n_grids == 0;
}
static int has_classes(const orch_pipeline *p)
{
    return p->data.n_classes > 0;
}
static int surgery(const orch_pipeline *p)
{
    return p->strategy.kind == ORCH_STRATEGY_SURGERY;
}
static int no_init(const orch_pipeline *p)
{
    return p->strategy.init[0] == '\0';
}
static int detach(const orch_pipeline *p)
{
    return p->strategy.kind == ORCH_STRATEGY_DETACH;
}
static int detach_mlp(const orch_pipeline *p)
{
    return detach(p) && p->strategy.adapter == ORCH_ADAPTER_MLP;
}
static int lora(const orch_pipeline *p)
{
    return p->strategy.kind == ORCH_STRATEGY_LORA;
}
static int classifier(const orch_pipeline *p)
{
    return p->head.kind == ORCH_HEAD_CLASSIFIER;
}
static int regression(const orch_pipeline *p)
{
    return p->head.kind == ORCH_HEAD_REGRESSION;
}
static int sgd(const orch_pipeline *p)
{
    return p->optimizer.kind == ORCH_OPT_SGD;
}
static int adamw(const orch_pipeline *p)
{
    return p->optimizer.kind == ORCH_OPT_ADAMW;
}
static int no_clipping(const orch_pipeline *p)
{
    return !(p->optimizer.grad_clip > 0);
}
static int end_only(const orch_pipeline *p)
{
    return p->schedule.checkpoint_every == 0;
}
static int accumulates(const orch_pipeline *p)
{
    return p->schedule.grad_accum != 1;
}
static int no_scaling(const orch_pipeline *p)
{
    return p->loss_scale.init == 1 && !p->loss_scale.dynamic;
}
static int inject_one_rank(const orch_pipeline *p)
{
    return p->checks.inject.enabled && p->checks.inject.rank >= 0;
}
static int data_parallel(const orch_pipeline *p)
{
    return p->parallel.data > 1;
}
static int stats_off(const orch_pipeline *p)
{
    return p->checks.stats_every == 0;
}
static int injecting(const orch_pipeline *p)
{
    return p->checks.inject.enabled;
}
static int main_tensor(const orch_pipeline *p)
{
    return p->checks.inject.tensor[0] == '\0';
}

/* ---------------------------------------------------------------- names */

static const char *const strategy_names[] = {"surgery", "detach", "lora", "full"};
static const char *const adapter_names[] = {"linear", "mlp"};
static const char *const source_names[] = {"synthetic", "npy", "images", "shards"};
static const char *const lr_schedule_names[] = {"constant", "linear", "cosine"};
static const char *const metric_names[] = {"eval/loss", "eval/accuracy", "eval/accuracy_top5",
                                           "eval/mse"};
static const char *const head_names[] = {"classifier", "regression"};
static const char *const loss_names[] = {"cross_entropy", "mse"};
static const char *const optimizer_names[] = {"sgd", "adamw"};
static const char *const precision_names[] = {"fp32", "bf16", "fp16"};
static const char *const on_nan_names[] = {"abort", "skip_update", "continue"};
static const char *const phase_names[] = {"forward", "backward", "update"};
static const char *const value_names[] = {"nan", "inf"}; /* inject.value_is_inf 0, 1 */
static const char *const preset_names[] = {"tiny", "small", "qwen2.5-vl-3b", "qwen2.5-vl-7b"};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* --------------------------------------------------------------- the table */

#define AT(m)          offsetof(orch_pipeline, m)
#define SIZE(m)        sizeof(((orch_pipeline *)0)->m)
#define COUNT(m)       (sizeof(((orch_pipeline *)0)->m) / sizeof(((orch_pipeline *)0)->m[0]))
#define ENUM(list)     .names = (list), .n_names = N_OF(list)
#define IRANGE(lo, hi) .imin = (lo), .imax = (hi)
#define KIND(k)        (1u << (k))
#define I32            2147483647LL

#define SUR KIND(ORCH_STRATEGY_SURGERY)
#define DET KIND(ORCH_STRATEGY_DETACH)
#define LOR KIND(ORCH_STRATEGY_LORA)
#define SYN KIND(ORCH_DATA_SYNTHETIC)
#define NPY KIND(ORCH_DATA_NPY)
#define IMG KIND(ORCH_DATA_IMAGES)
#define SHD KIND(ORCH_DATA_SHARDS)
#define SGD KIND(ORCH_OPT_SGD)
#define ADW KIND(ORCH_OPT_ADAMW)

const orch_field orch_fields[] = {
    /* top level: meta */
    {"path", ORCH_FIELD_STRING, AT(path), .size = SIZE(path), .doc = "the pipeline file as given",
     .flags = ORCH_FIELDF_META | ORCH_FIELDF_NO_DSL, .in_plan = never},
    {"name", ORCH_FIELD_STRING, AT(name), .size = SIZE(name),
     .def_doc = "the file's base name without `.lua`", .doc = "not empty",
     .flags = ORCH_FIELDF_META | ORCH_FIELDF_CUSTOM},
    {"tags", ORCH_FIELD_STRING_LIST, AT(tags), AT(n_tags), COUNT(tags), .def = "{}",
     .doc = "each not empty", .flags = ORCH_FIELDF_META},

    /* model */
    {"model", ORCH_FIELD_SECTION, .type_doc = "table or preset name",
     .flags = ORCH_FIELDF_REQUIRED | ORCH_FIELDF_BREAK},
    {"model.preset", ORCH_FIELD_STRING, AT(model.preset), .size = SIZE(model.preset),
     ENUM(preset_names), .def_doc = "none", .type_doc = "preset name",
     .doc = "`tiny`, `small`, `qwen2.5-vl-3b` or `qwen2.5-vl-7b`; explicit fields override it",
     .in_plan = has_preset},
    {"model.weights", ORCH_FIELD_FILE, AT(model.weights), .size = SIZE(model.weights),
     .def_doc = "none: seeded initialization",
     .doc = "safetensors file or index; a `qwen2.5-vl-*` preset without it makes `orch plan` "
            "warn on stderr that the tower is randomly initialized",
     .note = "none: seeded initialization", .note_if = no_weights},
    {"model.depth", ORCH_FIELD_INT, AT(model.config.depth), IRANGE(1, 1024), .def_doc = "preset"},
    {"model.hidden_size", ORCH_FIELD_INT, AT(model.config.hidden_size), IRANGE(1, 65536),
     .def_doc = "preset", .doc = "a multiple of num_heads"},
    {"model.num_heads", ORCH_FIELD_INT, AT(model.config.num_heads), IRANGE(1, 1024),
     .def_doc = "preset", .doc = "hidden_size / num_heads is a multiple of 4 (rotary h, w halves)"},
    {"model.intermediate_size", ORCH_FIELD_INT, AT(model.config.intermediate_size),
     IRANGE(1, 1 << 20), .def_doc = "preset"},
    {"model.patch_size", ORCH_FIELD_INT, AT(model.config.patch_size), IRANGE(1, 1024),
     .def_doc = "preset"},
    {"model.temporal_patch_size", ORCH_FIELD_INT, AT(model.config.temporal_patch_size),
     IRANGE(1, 64), .def_doc = "preset"},
    {"model.in_channels", ORCH_FIELD_INT, AT(model.config.in_channels), IRANGE(1, 64),
     .def_doc = "preset"},
    {"model.spatial_merge_size", ORCH_FIELD_INT, AT(model.config.spatial_merge_size), IRANGE(1, 64),
     .def_doc = "preset"},
    {"model.window_size", ORCH_FIELD_INT, AT(model.config.window_size), IRANGE(1, 1 << 20),
     .def_doc = "preset", .type_doc = "integer (pixels)",
     .doc = "a multiple of patch_size x spatial_merge_size", .note = "pixels"},
    {"model.out_hidden_size", ORCH_FIELD_INT, AT(model.config.out_hidden_size), IRANGE(1, 1 << 20),
     .def_doc = "preset"},
    {"model.fullatt_block_indexes", ORCH_FIELD_INT_LIST, AT(model.config.fullatt_block_indexes),
     AT(model.config.n_fullatt), COUNT(model.config.fullatt_block_indexes), IRANGE(0, I32),
     .def_doc = "preset",
     .doc = "blocks with full attention: each in 0 .. depth-1, no repeats; stored sorted"},
    {"model.initializer_range", ORCH_FIELD_REAL, AT(model.config.initializer_range), .rmin = 0,
     .rmax = 1, .rflags = ORCH_RANGE_MIN_OPEN | ORCH_RANGE_MAX, .def = "0.02",
     .doc = "std of the normal init without weights", .note = "unused: weights are loaded",
     .note_if = has_weights},

    /* data (eval.data has the same rows) */
    {"data", ORCH_FIELD_SECTION, AT(data), .size = SIZE(data), .type_doc = "table",
     .flags = ORCH_FIELDF_REQUIRED | ORCH_FIELDF_BREAK},
    {"data.source", ORCH_FIELD_ENUM, AT(data.source), ENUM(source_names), .def = "\"synthetic\"",
     .doc = "`images { ... }` and `shards { ... }` set it", .flags = ORCH_FIELDF_KIND},
    {"data.samples", ORCH_FIELD_INT, AT(data.n_samples), IRANGE(1, 10000000), .kinds = SYN,
     .def_doc = "**required** (synthetic)", .doc = "images in the data set",
     .in_json = synthetic_or_npy, .in_plan = synthetic},
    {"data.pixel_values", ORCH_FIELD_FILE, AT(data.pixel_values), .size = SIZE(data.pixel_values),
     .kinds = NPY, .def_doc = "**required** (npy)", .doc = "`(patches, C*tp*P*P)` float32 .npy",
     .in_json = synthetic_or_npy, .in_plan = npy},
    {"data.image_grid_thw", ORCH_FIELD_FILE, AT(data.grid_thw_path),
     .size = SIZE(data.grid_thw_path), .kinds = NPY, .def_doc = "**required** (npy)",
     .doc = "npy: `(images, 3)` int64 .npy", .in_json = npy, .in_plan = npy},
    {"data.image_grid_thw", ORCH_FIELD_GRIDS, AT(data.image_grid_thw), AT(data.n_grids),
     COUNT(data.image_grid_thw), IRANGE(1, I32), .kinds = SYN,
     .type_doc = "list of `{t, h, w}` (patches), or one `{t, h, w}`",
     .doc = "synthetic, instead of image_size: t first, h and w multiples of spatial_merge_size, "
            "at most 2^22 patches per image; images cycle through the rows",
     .in_json = synthetic, .in_plan = synthetic_grids, .note = "[t, h, w] in patches"},
    {"data.image_size", ORCH_FIELD_INT_PAIR, AT(data.image_height), IRANGE(1, I32), .kinds = SYN,
     .type_doc = "`{height, width}` or one number (square), pixels",
     .doc = "synthetic, instead of image_grid_thw: each side patch_size x spatial_merge_size .. "
            "16384, aspect ratio at most 200",
     .in_json = synthetic_or_npy, .in_plan = synthetic_size, .note = "height, width in pixels"},
    {"data.dir", ORCH_FIELD_FILE, AT(data.dir), .size = SIZE(data.dir), .kinds = IMG,
     .def_doc = "**required** (images)", .type_doc = "folder name",
     .doc = "PNG and JPEG files (or one sub-folder of them per class); relative to the pipeline "
            "file's folder; read by the data source",
     .flags = ORCH_FIELDF_NO_STAT, .in_json = images, .in_plan = images},
    {"data.shards", ORCH_FIELD_FILE_LIST, AT(data.shards), AT(data.n_shards), COUNT(data.shards),
     .kinds = SHD, .def_doc = "**required** (shards)",
     .type_doc = "list of file patterns (the positional entries of `shards { ... }`)",
     .doc = "tar shards: brace ranges `{000..003}` and globs, expanded by the data source; "
            "relative to the pipeline file's folder",
     .in_json = shards, .in_plan = shards},
    {"data.labels", ORCH_FIELD_FILE, AT(data.labels), .size = SIZE(data.labels), .kinds = NPY | IMG,
     .def_doc = "**required** (npy); images: none",
     .doc = "npy classifier: `(images,)` int64 class ids in `[0, head.classes)`; npy regression: "
            "`(images, head.outputs)` float32, or `(images,)` when `head.outputs = 1`; images: a "
            "CSV `file,label` with a header row, none = the sub-folders are the classes",
     .in_json = not_shards, .in_plan = npy_or_images},
    {"data.classes", ORCH_FIELD_INT, AT(data.n_classes), IRANGE(2, 1 << 20),
     .def_doc = "`head.classes`", .doc = "classifier only", .in_plan = has_classes},
    {"data.shuffle", ORCH_FIELD_INT, AT(data.shuffle), IRANGE(0, 1 << 24), .kinds = SHD,
     .def = "1000", .doc = "the shuffle buffer in images; 0 = the shards' order",
     .flags = ORCH_FIELDF_SPARSE, .in_json = shuffle_not_1000, .in_plan = shards},
    {"data.shuffle", ORCH_FIELD_BOOL, AT(data.shuffle), .kinds = SYN | NPY | IMG, .def = "true",
     .doc = "shuffle the whole set every epoch; false = the data's order",
     .flags = ORCH_FIELDF_SPARSE, .in_json = keeps_order, .in_plan = keeps_order},
    {"data.seed", ORCH_FIELD_U64, AT(data.seed), IRANGE(0, INT64_MAX), .def_doc = "`seed`",
     .doc = "the data order (and synthetic images): runs with other seeds can see the same data",
     .flags = ORCH_FIELDF_SPARSE, .in_json = has_data_seed, .in_plan = has_data_seed,
     .given_offset = AT(data.has_seed)},

    /* the image processor, for images decoded from files or shards */
    {"processor", ORCH_FIELD_SECTION, .type_doc = "table", .def_doc = "see below",
     .flags = ORCH_FIELDF_BREAK | ORCH_FIELDF_SPARSE, .in_json = processor_bounds_set,
     .in_plan = decodes_images},
    {"processor.min_pixels", ORCH_FIELD_INT, AT(processor.min_pixels), IRANGE(1, I32),
     .def = "3136",
     .doc = "smart_resize's lower bound on height x width (the hub's preprocessor_config.json); "
            "at least (patch_size x spatial_merge_size)^2",
     .flags = ORCH_FIELDF_SPARSE, .in_json = processor_bounds_set, .in_plan = decodes_images},
    {"processor.max_pixels", ORCH_FIELD_INT, AT(processor.max_pixels), IRANGE(1, I32),
     .def = "12845056", .doc = "its upper bound; at least min_pixels", .flags = ORCH_FIELDF_SPARSE,
     .in_json = processor_bounds_set, .in_plan = decodes_images},

    /* evaluation */
    {"eval", ORCH_FIELD_OPTIONAL, AT(eval.enabled), .type_doc = "table", .def_doc = "none",
     .doc = "a held-out set evaluated without gradients, below",
     .flags = ORCH_FIELDF_BREAK | ORCH_FIELDF_SPARSE, .in_json = evaluates, .in_plan = evaluates},
    {"eval.data", ORCH_FIELD_SECTION, AT(eval.data), .size = SIZE(eval.data),
     .type_doc = "table like `data`", .def_doc = "**required** unless split",
     .doc = "the set: the fields of `data` (`images { ... }`, `shards { ... }`, ...)",
     .flags = ORCH_FIELDF_SPARSE, .in_json = eval_set, .in_plan = eval_set,
     .same_as = "data"}, /* sparse: split, which decides, is read after it */
    {"eval.split", ORCH_FIELD_REAL, AT(eval.split), .rmin = 0, .rmax = 0.5,
     .rflags = ORCH_RANGE_MIN_OPEN | ORCH_RANGE_MAX, .def_doc = "none",
     .doc = "instead of data: hold out this fraction of the training data",
     .flags = ORCH_FIELDF_CUSTOM, .in_json = evaluates, .in_plan = eval_split},
    {"eval.every", ORCH_FIELD_INT, AT(eval.every), IRANGE(0, I32), .def = "0",
     .doc = "evaluate every N steps and at the end (0: only at the end); at most schedule.steps",
     .in_json = evaluates, .in_plan = evaluates, .note = "only at the end",
     .note_if = eval_end_only},
    {"eval.batch_size", ORCH_FIELD_INT, AT(eval.batch_size), IRANGE(1, 1 << 20),
     .def_doc = "`schedule.batch_size`", .doc = "images per evaluation batch",
     .flags = ORCH_FIELDF_CUSTOM, .in_json = evaluates, .in_plan = evaluates},

    /* strategy */
    {"strategy", ORCH_FIELD_SECTION, .type_doc = "table or kind name",
     .flags = ORCH_FIELDF_REQUIRED | ORCH_FIELDF_BREAK},
    {"strategy.kind", ORCH_FIELD_ENUM, AT(strategy.kind), ENUM(strategy_names),
     .def_doc = "**required**",
     .doc = "set by the constructors surgery {}, detach {}, lora {}, full {}",
     .flags = ORCH_FIELDF_KIND | ORCH_FIELDF_REQUIRED},
    {"strategy.replace", ORCH_FIELD_STRING, AT(strategy.replace), .size = SIZE(strategy.replace),
     .kinds = SUR, .def = "\"visual.merger.mlp.2\"", .type_doc = "module name",
     .doc = "a Linear of the tower", .in_plan = surgery},
    {"strategy.init", ORCH_FIELD_FILE, AT(strategy.init), .size = SIZE(strategy.init),
     .def_doc = "none: seeded",
     .doc = "safetensors with initial values of trainable tensors, by the names checkpoints use; "
            "absent tensors keep their seeded values",
     .in_plan = surgery, .note = "none: seeded initialization", .note_if = no_init},
    {"strategy.grad_through_frozen", ORCH_FIELD_BOOL, AT(strategy.grad_through_frozen),
     .kinds = SUR, .def = "false", .doc = "backward down to the input", .in_plan = surgery},
    {"strategy.adapter", ORCH_FIELD_ENUM, AT(strategy.adapter), ENUM(adapter_names), .kinds = DET,
     .def = "\"linear\"", .in_plan = detach},
    {"strategy.hidden", ORCH_FIELD_INT, AT(strategy.adapter_hidden), IRANGE(1, 1 << 16),
     .kinds = DET, .def_doc = "`model.out_hidden_size`", .doc = "the MLP adapter's width; mlp only",
     .flags = ORCH_FIELDF_CUSTOM, .in_plan = detach_mlp},
    {"strategy.rank", ORCH_FIELD_INT, AT(strategy.rank), IRANGE(1, 4096), .kinds = LOR, .def = "8",
     .in_plan = lora},
    {"strategy.alpha", ORCH_FIELD_REAL, AT(strategy.alpha), .rmin = 0,
     .rflags = ORCH_RANGE_MIN_OPEN, .kinds = LOR, .def = "8", .doc = "scale alpha / rank, as PEFT",
     .in_plan = lora},
    {"strategy.dropout", ORCH_FIELD_REAL, AT(strategy.dropout), .rmin = 0, .rmax = 1,
     .rflags = ORCH_RANGE_MAX | ORCH_RANGE_MAX_OPEN, .kinds = LOR, .def = "0", .in_plan = lora},
    {"strategy.targets", ORCH_FIELD_STRING_LIST, AT(strategy.targets), AT(strategy.n_targets),
     COUNT(strategy.targets), .kinds = LOR,
     .def = "{\"visual.merger.mlp.0\", \"visual.merger.mlp.2\"}",
     .type_doc = "list of module names", .doc = "Linears of the tower, not empty, no repeats",
     .in_plan = lora},

    /* head, loss */
    {"head", ORCH_FIELD_SECTION, .type_doc = "table or kind name",
     .def_doc = "`{ kind = \"classifier\" }`", .flags = ORCH_FIELDF_BREAK},
    {"head.kind", ORCH_FIELD_ENUM, AT(head.kind), ENUM(head_names), .def = "\"classifier\"",
     .flags = ORCH_FIELDF_KIND},
    {"head.classes", ORCH_FIELD_INT, AT(head.n_outputs), IRANGE(2, 1 << 20),
     .def_doc = "`data.classes`",
     .doc = "classifier only; must equal data.classes when both are given", .in_json = classifier,
     .in_plan = classifier},
    {"head.outputs", ORCH_FIELD_INT, AT(head.n_outputs), IRANGE(1, 1 << 16),
     .def_doc = "**required** (regression)", .doc = "values per image; regression only",
     .in_json = regression, .in_plan = regression},
    {"loss", ORCH_FIELD_ENUM, AT(loss), ENUM(loss_names), .def_doc = "from the head",
     .doc = "cross_entropy for a classifier, mse for a regression head",
     .flags = ORCH_FIELDF_CUSTOM},

    /* optimizer */
    {"optimizer", ORCH_FIELD_SECTION, .type_doc = "table",
     .flags = ORCH_FIELDF_REQUIRED | ORCH_FIELDF_BREAK},
    {"optimizer.kind", ORCH_FIELD_ENUM, AT(optimizer.kind), ENUM(optimizer_names),
     .def_doc = "**required**", .flags = ORCH_FIELDF_KIND | ORCH_FIELDF_REQUIRED},
    {"optimizer.lr", ORCH_FIELD_REAL, AT(optimizer.lr), .rmin = 0, .rflags = ORCH_RANGE_MIN_OPEN,
     .def_doc = "**required**", .doc = "the learning rate", .flags = ORCH_FIELDF_REQUIRED},
    {"optimizer.momentum", ORCH_FIELD_REAL, AT(optimizer.momentum), .rmin = 0, .rmax = 1,
     .rflags = ORCH_RANGE_MAX | ORCH_RANGE_MAX_OPEN, .kinds = SGD, .def = "0", .in_plan = sgd},
    {"optimizer.nesterov", ORCH_FIELD_BOOL, AT(optimizer.nesterov), .kinds = SGD, .def = "false",
     .doc = "needs momentum > 0", .in_plan = sgd},
    {"optimizer.betas", ORCH_FIELD_REAL_PAIR, AT(optimizer.beta1), .rmin = 0, .rmax = 1,
     .rflags = ORCH_RANGE_MAX | ORCH_RANGE_MAX_OPEN, .kinds = ADW, .def = "{0.9, 0.999}",
     .type_doc = "`{beta1, beta2}`", .in_plan = adamw},
    {"optimizer.eps", ORCH_FIELD_REAL, AT(optimizer.eps), .rmin = 0, .rflags = ORCH_RANGE_MIN_OPEN,
     .kinds = ADW, .def = "1e-8", .in_plan = adamw},
    {"optimizer.weight_decay", ORCH_FIELD_REAL, AT(optimizer.weight_decay), .rmin = 0, .kinds = SGD,
     .def = "0", .in_json = sgd, .in_plan = sgd},
    {"optimizer.weight_decay", ORCH_FIELD_REAL, AT(optimizer.weight_decay), .rmin = 0, .kinds = ADW,
     .def = "0.01", .in_json = adamw, .in_plan = adamw},
    {"optimizer.grad_clip", ORCH_FIELD_REAL, AT(optimizer.grad_clip), .rmin = 0, .def = "0",
     .doc = "max global grad norm; 0 = no clipping", .note = "no clipping", .note_if = no_clipping},
    {"optimizer.schedule", ORCH_FIELD_ENUM, AT(optimizer.schedule), ENUM(lr_schedule_names),
     .def = "\"constant\"",
     .doc = "the learning rate after warm-up, as Hugging Face's get_*_schedule_with_warmup: "
            "constant, or linear / cosine (half a cycle) decay to min_lr at schedule.steps",
     .flags = ORCH_FIELDF_SPARSE, .in_json = lr_decays, .in_plan = lr_decays},
    {"optimizer.min_lr", ORCH_FIELD_REAL, AT(optimizer.min_lr), .rmin = 0, .def = "0",
     .doc = "where linear and cosine decay end; less than lr", .flags = ORCH_FIELDF_SPARSE,
     .in_json = has_min_lr, .in_plan = has_min_lr},

    /* schedule */
    {"schedule", ORCH_FIELD_SECTION, .type_doc = "table",
     .flags = ORCH_FIELDF_REQUIRED | ORCH_FIELDF_BREAK},
    {"schedule.steps", ORCH_FIELD_INT, AT(schedule.steps), IRANGE(1, 1000000000),
     .def_doc = "**required**", .doc = "optimizer steps to run", .flags = ORCH_FIELDF_REQUIRED},
    {"schedule.batch_size", ORCH_FIELD_INT, AT(schedule.batch_size), IRANGE(1, 1 << 20),
     .def_doc = "**required**", .doc = "images per step; at most data.samples for synthetic data",
     .flags = ORCH_FIELDF_REQUIRED},
    {"schedule.grad_accum", ORCH_FIELD_INT, AT(schedule.grad_accum), IRANGE(1, 1 << 20), .def = "1",
     .doc = "micro-batches of batch_size images accumulated into one update (a global batch of "
            "batch_size x grad_accum images, at most data.samples for synthetic data)",
     .flags = ORCH_FIELDF_SPARSE, .in_json = accumulates, .in_plan = accumulates},
    {"schedule.warmup_steps", ORCH_FIELD_INT, AT(schedule.warmup_steps), IRANGE(0, I32), .def = "0",
     .doc = "at most steps: linear warm-up from 0 to lr (lr x s / warmup_steps at step s, as "
            "Hugging Face's schedules)"},
    {"schedule.checkpoint_every", ORCH_FIELD_INT, AT(schedule.checkpoint_every), IRANGE(0, I32),
     .def = "0",
     .doc = "write a checkpoint every N steps (0: only at the end); orch resume starts "
            "from the last one",
     .note = "only at the end", .note_if = end_only},
    {"schedule.stop", ORCH_FIELD_OPTIONAL, AT(schedule.stop.enabled), .type_doc = "table",
     .def_doc = "none",
     .doc = "early stopping: the run ends `finished` when metric did not improve for patience "
            "evaluations in a row; needs `eval`",
     .flags = ORCH_FIELDF_SPARSE, .in_json = stops, .in_plan = stops},
    {"schedule.stop.metric", ORCH_FIELD_STRING, AT(schedule.stop.metric),
     .size = SIZE(schedule.stop.metric), ENUM(metric_names), .def = "\"eval/loss\"",
     .type_doc = "metric name",
     .doc = "`eval/loss`; `eval/accuracy` (a classifier; `eval/accuracy_top5` with more than 5 "
            "classes) or `eval/mse` (a regression head); lower is better for losses and errors",
     .flags = ORCH_FIELDF_CUSTOM, .in_plan = stops},
    {"schedule.stop.patience", ORCH_FIELD_INT, AT(schedule.stop.patience), IRANGE(1, I32),
     .def_doc = "**required**", .doc = "evaluations without improvement before the run stops",
     .flags = ORCH_FIELDF_REQUIRED, .in_plan = stops},

    /* precision, loss scaling, the rest */
    {"precision", ORCH_FIELD_ENUM, AT(precision), ENUM(precision_names), .def = "\"fp32\"",
     .flags = ORCH_FIELDF_BREAK},
    {"loss_scale", ORCH_FIELD_SECTION, .type_doc = "table", .def_doc = "see below"},
    {"loss_scale.init", ORCH_FIELD_REAL, AT(loss_scale.init), .rmin = 0,
     .rflags = ORCH_RANGE_MIN_OPEN, .def = "1",
     .doc = "1: no scaling (PyTorch's GradScaler starts "
            "at 65536)",
     .note = "no loss scaling", .note_if = no_scaling},
    {"loss_scale.dynamic", ORCH_FIELD_BOOL, AT(loss_scale.dynamic), .def = "false",
     .doc = "skip the step and halve on non-finite gradients, double after growth_interval good "
            "steps"},
    {"loss_scale.growth_interval", ORCH_FIELD_INT, AT(loss_scale.growth_interval),
     IRANGE(1, 1000000000), .def = "2000"},
    {"checkpoint", ORCH_FIELD_BOOL, AT(checkpoint), .def = "false",
     .doc = "gradient checkpointing of frozen blocks"},
    {"seed", ORCH_FIELD_U64, AT(seed), IRANGE(0, INT64_MAX), .def = "0"},

    /* checks */
    {"checks", ORCH_FIELD_SECTION, .type_doc = "table", .def_doc = "see below",
     .flags = ORCH_FIELDF_BREAK},
    {"checks.nan", ORCH_FIELD_BOOL, AT(checks.nan), .def = "true",
     .doc = "scan for NaN/Inf after every stage"},
    {"checks.frozen", ORCH_FIELD_BOOL, AT(checks.frozen), .def = "false",
     .doc = "checksum the frozen parameters every step"},
    {"checks.on_nan", ORCH_FIELD_ENUM, AT(checks.on_nan), ENUM(on_nan_names), .def = "\"abort\"",
     .doc = "what a non-finite loss, gradient or parameter does: `abort` ends the run `diverged` "
            "at once, `skip_update` drops that step's update, `continue` keeps going; whatever "
            "the policy, a run that ends with a non-finite loss or parameters is `diverged` (exit "
            "1)"},
    {"checks.stats_every", ORCH_FIELD_INT, AT(checks.stats_every), IRANGE(0, 1000000000),
     .def = "0", .doc = "steps between per-stage statistics; 0 = off", .note = "off",
     .note_if = stats_off},
    {"checks.inject", ORCH_FIELD_OPTIONAL, AT(checks.inject.enabled), .type_doc = "table",
     .def_doc = "none", .doc = "a deliberate NaN/Inf, below"},
    {"checks.inject.step", ORCH_FIELD_INT, AT(checks.inject.step), IRANGE(0, I32),
     .def_doc = "**required**", .doc = "at most steps-1 (steps count from 0)",
     .flags = ORCH_FIELDF_REQUIRED, .in_plan = injecting},
    {"checks.inject.phase", ORCH_FIELD_ENUM, AT(checks.inject.phase), ENUM(phase_names),
     .def = "\"forward\"", .in_plan = injecting},
    {"checks.inject.stage", ORCH_FIELD_STRING, AT(checks.inject.stage),
     .size = SIZE(checks.inject.stage), .def_doc = "**required**", .type_doc = "stage name",
     .doc = "a node of the graph this pipeline builds (`orch plan FILE --dot` shows them)",
     .flags = ORCH_FIELDF_REQUIRED, .in_plan = injecting},
    {"checks.inject.tensor", ORCH_FIELD_STRING, AT(checks.inject.tensor),
     .size = SIZE(checks.inject.tensor), .def = "\"\"", .doc = "\"\" = the stage's main tensor",
     .in_plan = injecting, .note = "the stage's main tensor", .note_if = main_tensor},
    {"checks.inject.value", ORCH_FIELD_ENUM, AT(checks.inject.value_is_inf), ENUM(value_names),
     .def = "\"nan\"", .in_plan = injecting},
    {"checks.inject.rank", ORCH_FIELD_INT, AT(checks.inject.rank), IRANGE(-1, 1 << 20), .def = "-1",
     .def_doc = "`-1`: every rank",
     .doc = "a data-parallel run injects on this rank only (a NaN that one rank finds)",
     .flags = ORCH_FIELDF_SPARSE, .in_json = inject_one_rank, .in_plan = inject_one_rank},

    /* parallel: how the run spreads over ranks, not what it computes */
    {"parallel", ORCH_FIELD_SECTION, .type_doc = "table", .def_doc = "see below",
     .flags = ORCH_FIELDF_META | ORCH_FIELDF_BREAK | ORCH_FIELDF_SPARSE, .in_json = data_parallel,
     .in_plan = data_parallel},
    {"parallel.data", ORCH_FIELD_INT, AT(parallel.data), IRANGE(1, 1 << 20), .def = "1",
     .doc = "ranks that train this run data-parallel (`orch run` under mpirun/srun with as many "
            "ranks; `--ranks N` overrides it); not hashed: a run may resume on another count",
     .flags = ORCH_FIELDF_META | ORCH_FIELDF_SPARSE, .in_json = data_parallel,
     .in_plan = data_parallel},
};
const size_t orch_fields_count = N_OF(orch_fields);

/* --------------------------------------------------------------- lookup */

const orch_field *orch_field_find(const char *path)
{
    for (size_t i = 0; i < orch_fields_count; i++)
        if (strcmp(orch_fields[i].path, path) == 0)
            return &orch_fields[i];
    /* a field of a section with another's rows: eval.data.dir is data.dir */
    for (size_t i = 0; i < orch_fields_count; i++) {
        const orch_field *f = &orch_fields[i];
        size_t n = strlen(f->path);
        if (f->same_as != NULL && strncmp(path, f->path, n) == 0 && path[n] == '.') {
            char inner[256];
            if (snprintf(inner, sizeof inner, "%s%s", f->same_as, path + n) < (int)sizeof inner)
                return orch_field_find(inner);
        }
    }
    return NULL;
}

const orch_field *orch_field_get(const char *path)
{
    const orch_field *f = orch_field_find(path);
    ORCH_ASSERT(f != NULL);
    return f;
}

size_t orch_field_keys(const char *section, int kind, const char **keys, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < orch_fields_count; i++) {
        const orch_field *f = &orch_fields[i];
        if (!orch_field_in(f, section) || (f->flags & ORCH_FIELDF_NO_DSL) ||
            (kind >= 0 && f->kinds != 0 && !(f->kinds & (1u << kind))))
            continue;
        const char *key = orch_field_key(f);
        size_t k = 0;
        while (k < n && strcmp(keys[k], key) != 0)
            k++;
        if (k == n && n < max)
            keys[n++] = key;
    }
    return n;
}

const orch_field *orch_field_kind_of(const char *section)
{
    for (size_t i = 0; i < orch_fields_count; i++)
        if ((orch_fields[i].flags & ORCH_FIELDF_KIND) && orch_field_in(&orch_fields[i], section))
            return &orch_fields[i];
    return NULL;
}

int orch_field_applies(const orch_field *f, const orch_pipeline *p)
{
    if (f->kinds == 0)
        return 1;
    char section[64];
    size_t len = (size_t)(orch_field_key(f) - f->path);
    ORCH_ASSERT(len > 0 && len <= sizeof section);
    memcpy(section, f->path, len - 1);
    section[len - 1] = '\0';
    const orch_field *kind = orch_field_kind_of(section);
    ORCH_ASSERT(kind != NULL);
    int v;
    memcpy(&v, orch_field_cptr(kind, p), sizeof v);
    return (f->kinds & (1u << v)) != 0;
}

void orch_field_view(const orch_field *f, const orch_pipeline *p, orch_pipeline *view)
{
    const orch_field *base = orch_field_get(f->same_as);
    ORCH_ASSERT(base->size == f->size);
    memcpy(view, p, sizeof *view);
    memcpy((char *)view + base->offset, (const char *)p + f->offset, f->size);
}

void orch_field_view_back(const orch_field *f, const orch_pipeline *view, orch_pipeline *p)
{
    const orch_field *base = orch_field_get(f->same_as);
    memcpy((char *)p + f->offset, (const char *)view + base->offset, f->size);
}

const char *orch_field_key(const orch_field *f)
{
    const char *dot = strrchr(f->path, '.');
    return dot ? dot + 1 : f->path;
}

int orch_field_in(const orch_field *f, const char *parent)
{
    size_t n = strlen(parent);
    const char *key = orch_field_key(f);
    if (n == 0)
        return key == f->path;
    return (size_t)(key - f->path) == n + 1 && strncmp(f->path, parent, n) == 0;
}

void *orch_field_ptr(const orch_field *f, orch_pipeline *p)
{
    return (char *)p + f->offset;
}

const void *orch_field_cptr(const orch_field *f, const orch_pipeline *p)
{
    return (const char *)p + f->offset;
}

/* ------------------------------------------------------------- markdown */

static void put_type(const orch_field *f, FILE *out)
{
    if (f->type_doc != NULL) {
        fputs(f->type_doc, out);
        return;
    }
    switch (f->type) {
    case ORCH_FIELD_SECTION:
    case ORCH_FIELD_OPTIONAL:
        fputs("table", out);
        return;
    case ORCH_FIELD_INT:
    case ORCH_FIELD_U64:
        fputs("integer", out);
        return;
    case ORCH_FIELD_REAL:
        fputs("number", out);
        return;
    case ORCH_FIELD_BOOL:
        fputs("boolean", out);
        return;
    case ORCH_FIELD_ENUM:
        for (size_t i = 0; i < f->n_names; i++)
            fprintf(out, "%s`\"%s\"`", i ? ", " : "", f->names[i]);
        return;
    case ORCH_FIELD_STRING:
        fputs("string", out);
        return;
    case ORCH_FIELD_FILE:
        fputs("file name", out);
        return;
    case ORCH_FIELD_INT_LIST:
        fputs("list of integers", out);
        return;
    case ORCH_FIELD_STRING_LIST:
        fputs("list of strings", out);
        return;
    case ORCH_FIELD_INT_PAIR:
        fputs("`{a, b}`", out);
        return;
    case ORCH_FIELD_REAL_PAIR:
        fputs("`{a, b}`", out);
        return;
    case ORCH_FIELD_GRIDS:
        fputs("list of `{t, h, w}`", out);
        return;
    case ORCH_FIELD_FILE_LIST:
        fputs("list of file names", out);
        return;
    case ORCH_FIELD__COUNT:
        break;
    }
    ORCH_UNREACHABLE();
}

/* A bound as the docs write it: 1048576 is 2^20. */
static void put_bound(long long v, FILE *out)
{
    if (v >= (1LL << 20) && (v & (v - 1)) == 0) {
        int e = 0;
        while ((1LL << e) != v)
            e++;
        fprintf(out, "2^%d", e);
    } else if (v == 1000000000 || v == 10000000) {
        fprintf(out, "10^%d", v == 1000000000 ? 9 : 7);
    } else {
        fprintf(out, "%lld", v);
    }
}

static void put_range(const orch_field *f, FILE *out)
{
    switch (f->type) {
    case ORCH_FIELD_INT:
    case ORCH_FIELD_U64:
        if (f->imax == INT64_MAX)
            fputs("0 .. 2^63-1", out);
        else if (f->imax >= 2147483647LL)
            fprintf(out, ">= %lld", f->imin);
        else {
            put_bound(f->imin, out);
            fputs(" .. ", out);
            put_bound(f->imax, out);
        }
        return;
    case ORCH_FIELD_REAL:
    case ORCH_FIELD_REAL_PAIR:
        if (f->type == ORCH_FIELD_REAL_PAIR)
            fputs("each in ", out);
        if (f->rflags & ORCH_RANGE_MAX)
            fprintf(out, "%c%g, %g%c", (f->rflags & ORCH_RANGE_MIN_OPEN) ? '(' : '[', f->rmin,
                    f->rmax, (f->rflags & ORCH_RANGE_MAX_OPEN) ? ')' : ']');
        else
            fprintf(out, "%s %g", (f->rflags & ORCH_RANGE_MIN_OPEN) ? ">" : ">=", f->rmin);
        return;
    case ORCH_FIELD_STRING:
        if (f->names == NULL)
            fprintf(out, "at most %zu bytes", f->size - 1);
        return;
    case ORCH_FIELD_INT_LIST:
    case ORCH_FIELD_STRING_LIST:
    case ORCH_FIELD_GRIDS:
    case ORCH_FIELD_FILE_LIST:
        fprintf(out, "at most %zu entries", f->size);
        return;
    default:
        return;
    }
}

/* The names of the kinds whose option f is, "" for all. */
static void put_kinds(const orch_field *f, FILE *out)
{
    if (f->kinds == 0)
        return;
    char section[64];
    size_t len = (size_t)(orch_field_key(f) - f->path);
    ORCH_ASSERT(len > 0 && len <= sizeof section);
    memcpy(section, f->path, len - 1);
    section[len - 1] = '\0';
    const orch_field *k = orch_field_kind_of(section);
    ORCH_ASSERT(k != NULL);
    int first = 1;
    for (size_t i = 0; i < k->n_names; i++)
        if (f->kinds & (1u << i)) {
            fprintf(out, "%s%s", first ? "" : ", ", k->names[i]);
            first = 0;
        }
}

void orch_fields_markdown(const char *section, FILE *out)
{
    fputs("| field | type | default | range | notes |\n", out);
    fputs("| --- | --- | --- | --- | --- |\n", out);
    for (size_t i = 0; i < orch_fields_count; i++) {
        const orch_field *f = &orch_fields[i];
        if (!orch_field_in(f, section) || (f->flags & ORCH_FIELDF_NO_DSL))
            continue;
        fprintf(out, "| `%s` | ", orch_field_key(f));
        put_type(f, out);
        if (f->kinds != 0) {
            fputs(" (", out);
            put_kinds(f, out);
            fputs(")", out);
        }
        fputs(" | ", out);
        if (f->def_doc != NULL)
            fputs(f->def_doc, out);
        else if (f->def != NULL)
            fprintf(out, "`%s`", f->def);
        else if (f->flags & ORCH_FIELDF_REQUIRED)
            fputs("**required**", out);
        fputs(" | ", out);
        put_range(f, out);
        fprintf(out, " | %s |\n", f->doc ? f->doc : "");
    }
}

static const char open_mark[] = "<!-- fields:";
static const char close_mark[] = "<!-- /fields -->";

char *orch_fields_update_doc(const char *text)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&buf, &size);
    if (out == NULL)
        return NULL;
    const char *at = text;
    int ok = 1;
    for (;;) {
        const char *open = strstr(at, open_mark);
        if (open == NULL) {
            fputs(at, out);
            break;
        }
        const char *name = open + sizeof open_mark - 1;
        const char *name_end = strstr(name, " -->");
        const char *close = name_end ? strstr(name_end, close_mark) : NULL;
        if (close == NULL) {
            ok = 0;
            break;
        }
        char section[64];
        size_t len = (size_t)(name_end - name);
        if (len >= sizeof section) {
            ok = 0;
            break;
        }
        memcpy(section, name, len);
        section[len] = '\0';
        fwrite(at, 1, (size_t)(name_end + 4 - at), out);
        fputs("\n", out);
        orch_fields_markdown(section, out);
        fputs(close_mark, out);
        at = close + sizeof close_mark - 1;
    }
    if (fclose(out) != 0 || !ok) {
        free(buf);
        return NULL;
    }
    return buf;
}
