/*
 * kernels.h - the numerical stages pipelines are made of (the kernels room).
 *
 * Every stage is a forward and a backward function over fp32 buffers. Rules
 * that hold for every function below unless its comment says otherwise:
 *
 *  - Argument order is llm.c's: outputs first, then inputs, then sizes.
 *  - Buffers are row-major and contiguous; a row stride ("ld", in floats) is
 *    taken only where a caller needs to address columns of a wider buffer
 *    (the fused qkv output of attention, rotary in place on q and k).
 *  - Weights use PyTorch's layout: Linear.weight is (out, in), row-major, so
 *    checkpoints load without transposed copies.
 *  - Forward outputs are overwritten. Every gradient output of a _bwd
 *    function is ACCUMULATED (+=) so micro-batches and residual branches add
 *    up; the caller zeroes gradient buffers when a new sum starts. (Exception,
 *    stated at the function: orch_rotary_bwd overwrites, so it can run in
 *    place on the dq/dk columns of a dqkv buffer.)
 *  - A NULL gradient output means "not needed" and skips that work.
 *  - Kernels never allocate, never free, never print and never exit. Scratch
 *    is passed in, with a documented size. Shape preconditions are the
 *    caller's; nothing expensive is validated.
 *  - Matrix products go through BLIS (kernels/blas.c and blis_arch.c are
 *    the only files that include blis.h). The thread count comes from one place,
 *    orch_threads_get(); results are deterministic for a fixed thread count.
 *  - Element counts that can exceed 2^31 are int64_t; row counts and widths
 *    are int.
 *  - Call kernels from serial code, one at a time: they open their own
 *    OpenMP teams (a call from inside a parallel region would run with a
 *    team of one and, for attention, share one scratch slice).
 *
 * Shape legend: N rows (tokens of all images of a batch, concatenated), D
 * features, H heads, hd head_dim, B batch rows of a loss, C classes.
 */
#ifndef ORCH_KERNELS_H
#define ORCH_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* ============================================================== threads */

/* Sets the number of threads every kernel uses from now on: BLIS's runtime
 * setting for products and the OpenMP team size of element-wise kernels.
 * n <= 0 restores the default (omp_get_max_threads(), i.e. OMP_NUM_THREADS
 * or the number of processors). `--threads N` and ORCH_THREADS map here. */
void orch_threads_set(int n);

/* The thread count kernels use now (>= 1). */
int orch_threads_get(void);

/* ================================================================ BLIS */

/* Which BLIS runs the products, on which kernels, and why. */
typedef struct orch_blas_info {
    char version[32];   /* BLIS version, "0.9.0" */
    char subconfig[24]; /* sub-configuration in use, "skx" */
    char why[192];      /* why this one, one sentence */
    char cpu[96];       /* CPU model, vendor, family and model numbers */
    char features[96];  /* "avx512f avx512dq ... avx2 fma" */
} orch_blas_info;

/* Starts BLIS on the right kernels; idempotent, thread-safe. BLIS fixes its
 * sub-configuration at its first call, so this runs before it (orch_sgemm
 * and orch_threads_set call it too, for library users that do not). Unless
 * BLIS_ARCH_TYPE is set, BLIS's own choice stands except where it would fall
 * back to its generic C kernels on a CPU that runs better ones (BLIS 0.9 on
 * CPUs newer than it): then the best supported sub-configuration is used. A
 * BLIS_ARCH_TYPE that is unknown or names kernels this CPU lacks is refused
 * (ORCH_EINVAL; BLIS itself would abort or fault); it may be a name (skx,
 * zen3, ...) or BLIS's number. The chosen kernels are checked on small
 * products against a double reference (ORCH_ERUNTIME when wrong). */
orch_status orch_blas_init(orch_err *err);
const orch_blas_info *orch_blas_get_info(void); /* starts BLIS if needed */

/* Every orch_sgemm call, reported to a hook, so a benchmark can replay a
 * step's exact products. Calls are serialised; NULL stops. */
typedef struct orch_gemm_call {
    int64_t m, n, k, rsa, csa, rsb, csb, rsc, csc;
    float beta;
    int nthreads; /* as resolved for the call */
    int sup;      /* orch_sup as resolved for the call */
} orch_gemm_call;
typedef void (*orch_gemm_trace_fn)(void *ctx, const orch_gemm_call *call);
void orch_gemm_trace_set(orch_gemm_trace_fn fn, void *ctx);

/* ============================================================ products */

/* How orch_sgemm drives BLIS: its default path (with the small/unpacked
 * "sup" code), the packed path with sup disabled, or a choice by shape made
 * in one place (blas.c; see docs/performance.md for the measurements). */
typedef enum orch_sup {
    ORCH_SUP_AUTO = 0,
    ORCH_SUP_ON = 1, /* BLIS default */
    ORCH_SUP_OFF = 2
} orch_sup;

/* C = alpha * A B + beta * C, fp32, general strides (in floats).
 * a (m, k) addressed a[i*rsa + p*csa]; b (k, n) b[p*rsb + j*csb];
 * c (m, n) c[i*rsc + j*csc]. A transposed operand is expressed by swapping
 * its strides (a (out,in) weight used as (in,out): rs = 1, cs = in).
 * beta == 0 overwrites C without reading it (NaNs in C do not propagate).
 * nthreads <= 0 uses up to orch_threads_get() threads, fewer for small
 * products (one thread per 2^17 multiply-adds); inside an OpenMP parallel
 * region pass 1. m, n or k of 0 is allowed (k == 0 scales C by beta). */
void orch_sgemm(int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t rsa,
                int64_t csa, const float *b, int64_t rsb, int64_t csb, float beta, float *c,
                int64_t rsc, int64_t csc, orch_sup sup, int nthreads);

/* The path ORCH_SUP_AUTO picks (ON or OFF) for an m x n x k product whose
 * A and B are stored row-major (NN). */
orch_sup orch_sup_choice(int64_t m, int64_t n, int64_t k);

/* The same for any layout: a_trans / b_trans non-zero when that operand is
 * a transposed view (unit row stride), e.g. b_trans for x W^T, for a call
 * on orch_threads_get() threads. This is the rule orch_sgemm applies (with
 * the thread count of the call); measurements in docs/performance.md. */
orch_sup orch_sup_choice_layout(int64_t m, int64_t n, int64_t k, int a_trans, int b_trans);

/* ============================================================== linear */

/* y = x W^T + b.
 * y (N, out) overwritten; x (N, in); w (out, in); b (out) or NULL. */
void orch_linear_fwd(float *y, const float *x, const float *w, const float *b, int n, int in,
                     int out);

/* Backward of orch_linear_fwd, accumulating:
 * dx (N, in) += dy W;  dw (out, in) += dy^T x;  db (out) += sum_rows dy.
 * Any of dx, dw, db may be NULL (not needed). dy (N, out); x (N, in);
 * w (out, in) (read only when dx != NULL). */
void orch_linear_bwd(float *dx, float *dw, float *db, const float *dy, const float *x,
                     const float *w, int n, int in, int out);

/* ========================================================== lora linear */

/* PEFT LoRA linear with frozen base weight, no dropout:
 *   u = x A^T;   y = x W^T + b + scale * u B^T      (scale = alpha / r).
 * y (N, out) overwritten; u (N, r) overwritten, saved for the backward;
 * x (N, in); w (out, in); b (out) or NULL; a (r, in) = lora_A.weight;
 * bm (out, r) = lora_B.weight. */
void orch_lora_linear_fwd(float *y, float *u, const float *x, const float *w, const float *b,
                          const float *a, const float *bm, float scale, int n, int in, int out,
                          int r);

/* Backward of orch_lora_linear_fwd, accumulating:
 *   du = scale * dy B          (written to scratch du, (N, r), overwritten)
 *   da (r, in)   += du^T x
 *   dbm (out, r) += scale * dy^T u
 *   dx (N, in)   += dy W + du A
 *   dw (out, in) += dy^T x,  db (out) += sum_rows dy   (only when asked)
 * Any gradient may be NULL. du is caller scratch of N*r floats, required
 * when da or dx is non-NULL. u is the forward's saved u. */
void orch_lora_linear_bwd(float *dx, float *da, float *dbm, float *dw, float *db, float *du,
                          const float *dy, const float *x, const float *u, const float *w,
                          const float *a, const float *bm, float scale, int n, int in, int out,
                          int r);

/* ============================================================= rmsnorm */

/* y = w * x * rstd, rstd = 1/sqrt(mean(x^2) + eps), per row (Qwen2RMSNorm).
 * y (N, D) overwritten (may alias x); rstd (N) overwritten, saved for the
 * backward, or NULL; x (N, D); w (D), or NULL for no learned weight (ones). */
void orch_rmsnorm_fwd(float *y, float *rstd, const float *x, const float *w, float eps, int n,
                      int d);

/* Backward, accumulating: with xh = x*rstd, g = dy*w:
 *   dx (N, D) += rstd * (g - xh * mean_d(g*xh));   dw (D) += sum_rows dy*xh.
 * dx or dw may be NULL; w NULL means ones. rstd is the forward's. */
void orch_rmsnorm_bwd(float *dx, float *dw, const float *dy, const float *x, const float *w,
                      const float *rstd, int n, int d);

/* ========================================================= activations */

/* GELU, y = x * Phi(x): exact (erf, nn.GELU()) when tanh_form == 0, else
 * 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (approximate='tanh').
 * y (n) overwritten, may alias x; x (n). Error <= 1.5e-6 * (1 + |y|) against
 * the exact function (erf approximated in fp32, as PyTorch's CPU kernel does). */
void orch_gelu_fwd(float *y, const float *x, int64_t n, int tanh_form);

/* dx (n) += dy * gelu'(x). dy, x (n). */
void orch_gelu_bwd(float *dx, const float *dy, const float *x, int64_t n, int tanh_form);

/* y = x * sigmoid(x). y (n) overwritten, may alias x. */
void orch_silu_fwd(float *y, const float *x, int64_t n);

/* dx (n) += dy * sigmoid(x) * (1 + x (1 - sigmoid(x))). */
void orch_silu_bwd(float *dx, const float *dy, const float *x, int64_t n);

/* h = silu(g) * u (the Qwen2.5-VL vision MLP). h, g, u (n); h may alias u. */
void orch_swiglu_fwd(float *h, const float *g, const float *u, int64_t n);

/* dg (n) += dh * u * silu'(g);  du (n) += dh * silu(g). dg or du may be NULL. */
void orch_swiglu_bwd(float *dg, float *du, const float *dh, const float *g, const float *u,
                     int64_t n);

/* Residual add y = a + b. y (n) overwritten, may alias a or b. */
void orch_add_fwd(float *y, const float *a, const float *b, int64_t n);

/* da (n) += dy;  db (n) += dy. Either may be NULL. */
void orch_add_bwd(float *da, float *db, const float *dy, int64_t n);

/* =========================================================== attention */

/* Floats of scratch orch_attention_fwd/bwd need for these segments when run
 * with nthreads threads (<= 0: orch_threads_get()). Bounded: query rows are
 * processed in blocks (ORCH_ATTN_QBLOCK rows x segment length per thread),
 * so a 4096-token segment needs 2 * 256 * 4096 floats per thread, not L^2. */
#define ORCH_ATTN_QBLOCK 256
size_t orch_attention_scratch_floats(const int32_t *cu_seqlens, int n_seg, int nthreads);

/* Multi-head softmax attention, non-causal, within each segment
 * [cu_seqlens[s], cu_seqlens[s+1]) only; scale 1/sqrt(hd); stable softmax.
 *   out (N, H*hd) overwritten (contiguous, head h = columns [h*hd,(h+1)*hd))
 *   lse (N, H) overwritten: log-sum-exp of the scaled scores of row i, head
 *       h at lse[i*H + h], saved for the backward
 *   scratch: scratch_floats floats (see orch_attention_scratch_floats; with
 *       less, fewer threads are used; at least one thread's share needed)
 *   q, k, v: (N, H*hd) with row stride ld (floats) each: separate buffers
 *       (ld = H*hd) or columns of a fused qkv (q = qkv, k = qkv + D,
 *       v = qkv + 2D, ld = 3D) with no copies
 *   cu_seqlens (n_seg + 1) int32, cumulative, cu_seqlens[0] = 0,
 *       N = cu_seqlens[n_seg]; empty segments are allowed. */
void orch_attention_fwd(float *out, float *lse, float *scratch, size_t scratch_floats,
                        const float *q, const float *k, const float *v, int ld,
                        const int32_t *cu_seqlens, int n_seg, int n_head, int head_dim);

/* Backward (flash-style: P is recomputed from q, k and the saved lse):
 *   dq, dk, dv (N, H*hd) with row stride ld_d, ACCUMULATED (+=); pass
 *   dq = dqkv, dk = dqkv + D, dv = dqkv + 2D, ld_d = 3D to fill a fused
 *   gradient in place. dout (N, H*hd) contiguous; out and lse are the
 *   forward's; q, k, v, ld, cu_seqlens as in the forward. */
void orch_attention_bwd(float *dq, float *dk, float *dv, int ld_d, float *scratch,
                        size_t scratch_floats, const float *dout, const float *out,
                        const float *lse, const float *q, const float *k, const float *v, int ld,
                        const int32_t *cu_seqlens, int n_seg, int n_head, int head_dim);

/* ============================================================== rotary */

/* The vision rotary tables of Qwen2.5-VL (rotate-half form).
 * pos_hw (N, 2) int32: (row, column) patch position of each token;
 * cos, sin (N, hd) overwritten. With q4 = hd/4 and
 * inv_freq[j] = 1 / theta^(4j/hd) (j < q4), computed in fp32 like PyTorch:
 *   ang[d] = h * inv_freq[d] (d < q4), w * inv_freq[d-q4] (q4 <= d < hd/2),
 *   cos[d] = cos(ang[d mod hd/2]), sin likewise. hd must be a multiple of 4. */
void orch_rotary_tables(float *cos_t, float *sin_t, const int32_t *pos_hw, int n, int head_dim,
                        float theta);

/* y = x*cos + rotate_half(x)*sin per head, rotate_half(x) = [-x2, x1]:
 *   y[d] = x[d] cos[d] - x[d+hd/2] sin[d]      (d <  hd/2)
 *   y[d] = x[d] cos[d] + x[d-hd/2] sin[d]      (d >= hd/2)
 * y, x: (N, H*hd) with row strides ld_y, ld_x; y may equal x (in place on
 * the q or k columns of a fused qkv buffer). cos, sin (N, hd). */
void orch_rotary_fwd(float *y, int ld_y, const float *x, int ld_x, const float *cos_t,
                     const float *sin_t, int n, int n_head, int head_dim);

/* The inverse rotation of dy: dx[d] = dy[d] cos[d] + dy[d+hd/2] sin[d]
 * (d < hd/2), dx[d] = dy[d] cos[d] - dy[d-hd/2] sin[d] (d >= hd/2).
 * OVERWRITES dx (not +=) so that dx may equal dy: run it in place on the dq
 * and dk columns of a dqkv buffer after orch_attention_bwd. */
void orch_rotary_bwd(float *dx, int ld_dx, const float *dy, int ld_dy, const float *cos_t,
                     const float *sin_t, int n, int n_head, int head_dim);

/* ============================================================ pooling */

/* out[s] = mean of rows [offsets[s], offsets[s+1]) of x (one row per image).
 * out (n_seg, D) overwritten (zeros for an empty segment); x (N, D);
 * offsets (n_seg + 1) int32 cumulative. */
void orch_mean_pool_fwd(float *out, const float *x, const int32_t *offsets, int n_seg, int d);

/* dx[i] (D) += dout[s] / len(s) for every row i of segment s. */
void orch_mean_pool_bwd(float *dx, const float *dout, const int32_t *offsets, int n_seg, int d);

/* =============================================================== losses */

/* Cross-entropy of logits (B, C) against labels (B) int32, mean over the
 * rows whose label is >= 0 (a negative label, e.g. -100, is ignored as by
 * PyTorch's ignore_index); log-sum-exp stable. Returns the mean loss (NaN
 * when no row counts, as PyTorch). lse (B) overwritten with each row's
 * log-sum-exp when not NULL (the backward can reuse it). */
float orch_cross_entropy_fwd(float *lse, const float *logits, const int32_t *labels, int b, int c);

/* dlogits (B, C) += dloss / n_valid * (softmax(logits) - onehot(label)),
 * rows with a negative label get nothing. lse: the forward's, or NULL
 * (recomputed). dloss is d(total)/d(mean loss), 1 for a plain loss. */
void orch_cross_entropy_bwd(float *dlogits, const float *logits, const float *lse,
                            const int32_t *labels, float dloss, int b, int c);

/* Mean squared error mean((pred - target)^2) over n elements (accumulated in
 * double). Returns the loss. */
float orch_mse_fwd(const float *pred, const float *target, int64_t n);

/* dpred (n) += dloss * 2 (pred - target) / n. */
void orch_mse_bwd(float *dpred, const float *pred, const float *target, float dloss, int64_t n);

/* ========================================================== optimizers */

/* One SGD step, PyTorch's torch.optim.SGD (maximize=False):
 *   g = grad + weight_decay * p
 *   if momentum != 0: buf = (t == 1) ? g : momentum*buf + (1-dampening)*g
 *                     g = nesterov ? g + momentum*buf : buf
 *   p -= lr * g
 * param (n) and buf (n) updated in place; buf may be NULL when momentum is
 * 0. grad (n) is read only. t is the 1-based step count of this buffer. */
void orch_sgd_step(float *param, float *buf, const float *grad, int64_t n, float lr, float momentum,
                   float dampening, float weight_decay, int nesterov, int64_t t);

/* One AdamW step, PyTorch's torch.optim.AdamW (amsgrad=False):
 *   p *= 1 - lr*weight_decay                       (decoupled decay)
 *   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
 *   p -= (lr / (1-b1^t)) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
 * param, m, v (n) updated in place (m, v start at 0); grad (n) read only;
 * t is the 1-based step count. */
void orch_adamw_step(float *param, float *m, float *v, const float *grad, int64_t n, float lr,
                     float beta1, float beta2, float eps, float weight_decay, int64_t t);

/* Global L2 norm of n_bufs gradient buffers (bufs[i] has lens[i] floats),
 * sums of squares in double. NaN or Inf anywhere is returned as is (NaN if
 * any NaN, else Inf), never hidden. */
double orch_grad_norm(const float *const *bufs, const int64_t *lens, int n_bufs);

/* Scales every buffer by min(1, max_norm / (norm + 1e-6)), norm being the
 * total norm from orch_grad_norm, with PyTorch clip_grad_norm_'s semantics
 * (error_if_nonfinite=False) for non-finite norms too: an Inf norm scales by
 * 0 (finite values become 0, infinite ones NaN), a NaN norm by NaN (every
 * value NaN). Each product is taken in double and rounded once. Returns the
 * coefficient applied (1 when nothing was scaled). */
double orch_clip_by_norm(float *const *bufs, const int64_t *lens, int n_bufs, double norm,
                         double max_norm);

/* orch_grad_norm + orch_clip_by_norm in one call, like clip_grad_norm_:
 * returns the total norm BEFORE clipping. */
double orch_clip_grad_norm(float *const *bufs, const int64_t *lens, int n_bufs, double max_norm);

/* ============================================================ finite scan */

/* What orch_finite_scan found. */
typedef struct orch_finite_stats {
    int64_t nan_count; /* NaNs (any payload, either sign) */
    int64_t inf_count; /* +Inf and -Inf */
    int64_t first_bad; /* index of the first NaN or Inf, -1 if none */
    float max_abs;     /* largest finite |x| (0 for an empty or all-bad buffer) */
} orch_finite_stats;

/* One vectorized pass over x (n): counts NaN/Inf, finds the first bad index
 * and the largest finite magnitude. Runs after every stage; the slow path
 * (exact counts and index) runs only when something is bad. */
orch_finite_stats orch_finite_scan(const float *x, int64_t n);

/* ============================================================ precision */

/* Rounds every element of x (n) in place to the nearest bf16 value
 * (ties to even), widened back to fp32; keeps fp32's range; NaN stays NaN. */
void orch_round_bf16_buf(float *x, int64_t n);

/* Rounds every element of x (n) in place to the nearest IEEE fp16 value
 * (ties to even): 65504 stays, >= 65520 becomes Inf, fp16 subnormals are
 * kept, smaller magnitudes flush to signed zero, NaN stays NaN. Bit-exact
 * with orch_round_f16() of half.h. */
void orch_round_f16_buf(float *x, int64_t n);

#endif
