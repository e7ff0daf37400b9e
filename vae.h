/* vae.h - v0.1.0 - Variational Autoencoders in one C header - public domain or MIT

   Train, evaluate, sample and deploy VAEs anywhere a C compiler goes.
   No dependencies beyond libc and libm; OpenMP is optional.

   USAGE
     #define VAE_IMPLEMENTATION   in *one* C or C++ file before including vae.h:

       #define VAE_IMPLEMENTATION
       #include "vae.h"

     Every other file just includes "vae.h".

   QUICK START
       vae_config cfg = vae_config_default();        // Adam 1e-3, BCE, beta 1, batch 128
       char arch[VAE_ARCH_MAX];
       vae_arch_preset(arch, sizeof arch, "mlp", 1, 28, 28, 400, 20);   // seed 003 MLP

       vae_model m;
       if (vae_model_init(&m, arch, &cfg, 0) != VAE_OK) { puts(m.error); return 1; }

       vae_data train;                                 // Fashion-MNIST, or built-in shapes
       if (vae_data_load(&train, "/usr/share/datasets/fashion-mnist", VAE_SPLIT_TRAIN) != VAE_OK)
           { puts(train.error); return 1; }

       for (int epoch = 0; epoch < 10; epoch++) {
           vae_stats s;
           if (vae_model_train_epoch(&m, &train, NULL, NULL, &s) != VAE_OK) { puts(m.error); break; }
           printf("epoch %d: %.2f nats/image\n", epoch + 1, s.loss);
       }
       vae_model_save(&m, "model.safetensors", VAE_SAVE_TRAINING_STATE);

       float img[784];                                 // one image from the prior
       vae_rng rng; vae_rng_seed(&rng, 42);
       vae_model_sample(&m, &rng, 1, img);
       vae_model_free(&m); vae_data_free(&train);

   COMPILE-TIME OPTIONS
     VAE_IMPLEMENTATION        (one .c file)   include the implementation
     VAE_STATIC                (one .c file)   make every function static to that file
     VAE_MALLOC, VAE_FREE      (impl file)     your allocator; define both or neither
     VAE_ASSERT                (impl file)     assert() for programmer errors, never for input
     VAE_NO_RUNTIME_DISPATCH   (impl file)     x86: use only the SIMD the compile flags enable
     VAE_NO_STDIO              (impl file)     leave out every function that touches files

   MEMORY
     A model is planned before anything is allocated: the architecture text is parsed, every
     shape inferred and every size computed with overflow checks. Then one block is carved into
     parameters, gradients, optimizer moments (each one flat, contiguous array), activations for
     cfg.batch images, and scratch. A training step allocates nothing.
       vae_model_memory_size()  + vae_model_init_preallocated()  never call malloc;
       vae_model_init()                                           allocates the block for you.
     VAE_INFERENCE leaves out gradients and optimizer state.

   ERRORS
     Every fallible call returns a vae_result (VAE_OK == 0; vae_result_string() names it) and
     writes a message naming what is wrong into the object's `error` field. The library never
     prints, never exits, and never asserts on input. A save never destroys the previous file.

   SIMD AND THREADS
     GEMM kernels: scalar, SSE2, AVX2+FMA, NEON, WASM SIMD128. On x86-64 with gcc or clang the
     AVX2+FMA kernel is compiled with a target attribute and chosen at run time, so plain
     `cc -O2` uses it on CPUs that have it. Build with -fopenmp for threads (cfg.threads).

   DETERMINISM
     Work is split over outputs, never over a reduction, so a given build gives bit-identical
     results for any thread count. Different kernels (FMA vs no FMA) round differently, so
     results across machines agree to float precision, not bit for bit. The random number
     generator gives the same stream everywhere.

   CHECKPOINTS
     Safetensors layout: any safetensors reader opens them. Tensor names follow the seed
     models' PyTorch state_dict keys. __metadata__ holds the format version, the architecture
     text (enough to rebuild the model), the hyperparameters, and optionally the training state
     (step, epoch, RNG); optimizer moments are tensors "optim.m.<name>" / "optim.v.<name>".

   ARCHITECTURE TEXT
     One layer per token, separated by white space; `op(args):name`. For example the seed-003
     MLP VAE (what vae_arch_preset(.., "mlp", 1,28,28, 400,20) writes):
       input(1,28,28) flatten linear(400):img_to_hidden relu
       mulv(20):hidden_to_mean,hidden_to_logvar sample
       linear(400):latent_to_hidden relu linear(784):hidden_to_img reshape(1,28,28) sigmoid
     Ops: input(C,H,W) flatten reshape(C,H,W) linear(N[,bias=0]) mulv(Z) sample[(clamp=X)]
          relu leakyrelu[(slope)] sigmoid tanh silu
     `mulv(Z)` is a pair of linear heads producing mu and log-variance; `sample` splits its input
     into halves (mu | logvar) and draws z = mu + exp(logvar/2)*eps. Layers before `sample` are
     the encoder, layers after it the decoder; the decoder must give back the input's shape.
     With the BCE loss the decoder must end in `sigmoid`; the loss then works on its input (the
     logits), which is the numerically stable form.

   LICENSE at the end of the file.
*/
#ifndef VAE_H_INCLUDED
#define VAE_H_INCLUDED

#define VAE_VERSION_MAJOR 0
#define VAE_VERSION_MINOR 1
#define VAE_VERSION_PATCH 0
#define VAE_VERSION_STRING "0.1.0"

#include <stddef.h>
#include <stdint.h>

#ifdef VAE_STATIC
#if defined(__GNUC__) || defined(__clang__)
#define VAEDEF static __attribute__((unused))   /* a program may use only part of the API */
#else
#define VAEDEF static
#endif
#else
#define VAEDEF extern
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* >>api */

typedef enum vae_result {
    VAE_OK = 0,
    VAE_ERROR_INVALID_ARGUMENT,  /* a bad value passed by the caller                     */
    VAE_ERROR_ARCH,              /* the architecture text does not describe a valid VAE */
    VAE_ERROR_OUT_OF_MEMORY,
    VAE_ERROR_IO,                /* open, read, write or rename failed                  */
    VAE_ERROR_FORMAT,            /* a file is corrupt, truncated or not what it claims  */
    VAE_ERROR_MISMATCH,          /* a well-formed file that does not fit this model     */
    VAE_ERROR_NUMERIC,           /* a loss or gradient became NaN or infinite           */
    VAE_RESULT_COUNT
} vae_result;

VAEDEF const char *vae_result_string(vae_result r);

#define VAE_ERROR_SIZE 256
#define VAE_ARCH_MAX   8192    /* longest architecture text */

/* ---- random numbers: xoshiro128** seeded by splitmix64; same stream on every platform ---- */
typedef struct vae_rng { uint32_t s[4]; } vae_rng;
VAEDEF void     vae_rng_seed(vae_rng *rng, uint64_t seed);
VAEDEF uint32_t vae_rng_u32(vae_rng *rng);
VAEDEF float    vae_rng_uniform(vae_rng *rng);            /* [0,1), 24 random bits            */
VAEDEF float    vae_rng_normal(vae_rng *rng);             /* N(0,1), polar method              */

/* ---- hyperparameters ---- */
typedef enum vae_loss   { VAE_LOSS_DEFAULT = 0, VAE_LOSS_BCE, VAE_LOSS_MSE, VAE_LOSS_COUNT } vae_loss;
typedef enum vae_reduce {
    VAE_REDUCE_DEFAULT = 0,
    VAE_REDUCE_SUM,    /* recon and KL summed over an image, averaged over the batch: nats/image */
    VAE_REDUCE_MEAN,   /* recon averaged over pixels, KL over latents (seed 002's convention)   */
    VAE_REDUCE_COUNT
} vae_reduce;
typedef enum vae_optim  { VAE_OPTIM_DEFAULT = 0, VAE_OPTIM_ADAM, VAE_OPTIM_ADAMW, VAE_OPTIM_SGD, VAE_OPTIM_COUNT } vae_optim;

typedef struct vae_config {
    vae_loss   loss;          /* BCE (default) or MSE                                         */
    vae_reduce reduce;        /* SUM (default) or MEAN                                        */
    float      beta;          /* KL weight                                                    */
    int        beta_warmup;   /* >0: beta ramps linearly from 0 over this many steps          */
    float      logvar_clamp;  /* >0: the KL term sees log-variance clamped to +-this         */
    vae_optim  optim;         /* ADAM (default), ADAMW or SGD                                 */
    float      lr;
    float      beta1, beta2, eps;      /* Adam / AdamW                                        */
    float      momentum;               /* SGD                                                 */
    float      weight_decay;           /* L2 for Adam and SGD, decoupled for AdamW            */
    float      clip;          /* >0: clip the global gradient norm to this                    */
    int        batch;         /* largest batch the model plans memory for                     */
    uint64_t   seed;          /* weights, sampling noise and data order all follow from it    */
    int        threads;       /* OpenMP threads; results do not depend on it                  */
} vae_config;

VAEDEF vae_config vae_config_default(void);

/* Writes the architecture text of a preset into buf. Presets: "mlp" (seed 003).
   hidden and latent of 0 take the preset's defaults. */
VAEDEF vae_result vae_arch_preset(char *buf, size_t cap, const char *name, int c, int h, int w, int hidden, int latent);

/* ---- the model ---- */
typedef enum vae_op {
    VAE_OP_INPUT = 0, VAE_OP_FLATTEN, VAE_OP_RESHAPE, VAE_OP_LINEAR, VAE_OP_MULV, VAE_OP_SAMPLE,
    VAE_OP_RELU, VAE_OP_LEAKY_RELU, VAE_OP_SIGMOID, VAE_OP_TANH, VAE_OP_SILU,
    VAE_OP_COUNT
} vae_op;

#define VAE_NAME_MAX 64

/* One layer. x is the previous layer's output; every size is per image. */
typedef struct vae_layer {
    vae_op op;
    char   name[VAE_NAME_MAX];    /* tensor name prefix: <name>.weight, <name>.bias          */
    char   name2[VAE_NAME_MAX];   /* mulv: the log-variance head's prefix                   */
    int    c, h, w;               /* output shape                                           */
    int    in_c, in_h, in_w;      /* input shape                                            */
    int    units;                 /* linear: outputs; mulv: latent size                     */
    int    bias;                  /* linear, mulv: has a bias                               */
    float  alpha;                 /* leakyrelu: slope; sample: log-variance clamp (0 = off) */
    size_t nparams;
    float *y, *dy;                /* output and its gradient, (batch, c, h, w)              */
    float *w_, *b_, *dw, *db;     /* parameters and their gradients                         */
    float *aux;                   /* layer state kept for backward (sample: eps)            */
} vae_layer;

enum {
    VAE_INFERENCE      = 1,       /* init/load: no gradients, no optimizer state            */
    VAE_TRAINING_STATE = 2        /* save/load: also optimizer moments, step, epoch and RNG */
};

typedef struct vae_stats {
    double loss, recon, kl;       /* averaged over images: nats per image with REDUCE_SUM   */
    int    images;
} vae_stats;

typedef struct vae_model {
    vae_config cfg;
    unsigned   flags;
    char      *arch;              /* the architecture text, copied into the model's block   */
    vae_layer *layers;
    int        nlayers;
    int        sample_layer;      /* index of the `sample` layer                             */
    int        in_c, in_h, in_w, in_size;   /* image shape; in_size = c*h*w                 */
    int        latent;            /* elements of z per image                                */
    size_t     nparams;
    float     *params, *grads, *opt_m, *opt_v;   /* flat blocks of nparams floats           */
    float     *scratch;           /* GEMM packing                                           */
    size_t     scratch_floats;
    int64_t    step;              /* optimizer steps taken                                   */
    int        epoch;             /* epochs completed (the data-order state)                */
    vae_rng    rng;               /* sampling noise during training                         */
    float      last_grad_norm;
    void      *memory;
    size_t     memory_size;
    int        owns_memory;
    char       error[VAE_ERROR_SIZE];
} vae_model;

/* Bytes a model needs; 0 if the description is invalid (vae_model_init_preallocated says why). */
VAEDEF size_t     vae_model_memory_size(const char *arch, const vae_config *cfg, unsigned flags);
VAEDEF vae_result vae_model_init_preallocated(vae_model *m, const char *arch, const vae_config *cfg,
                                              unsigned flags, void *memory, size_t size);
VAEDEF vae_result vae_model_init(vae_model *m, const char *arch, const vae_config *cfg, unsigned flags);
VAEDEF void       vae_model_free(vae_model *m);

/* x: (n, c, h, w) in [0,1] for BCE. n <= cfg.batch. */
VAEDEF vae_result vae_model_train_step(vae_model *m, const float *x, int n, vae_stats *out);
/* The loss on x without training: z = mu + sigma*eps with eps from rng, or z = mu if rng is NULL. */
VAEDEF vae_result vae_model_evaluate(vae_model *m, const float *x, int n, vae_rng *rng, vae_stats *out);
VAEDEF vae_result vae_model_encode(vae_model *m, const float *x, int n, float *mu, float *logvar);
VAEDEF vae_result vae_model_decode(vae_model *m, const float *z, int n, float *out);
VAEDEF vae_result vae_model_reconstruct(vae_model *m, const float *x, int n, float *out);
VAEDEF vae_result vae_model_sample(vae_model *m, vae_rng *rng, int n, float *out);

/* Tensors by name, in state_dict order. */
typedef struct vae_tensor_info {
    char   name[2 * VAE_NAME_MAX];
    int    ndim;
    int    shape[4];
    float *data;          /* parameters */
    float *grad;          /* NULL under VAE_INFERENCE */
    int    layer;
} vae_tensor_info;
VAEDEF int  vae_model_tensor_count(const vae_model *m);
VAEDEF int  vae_model_tensor(const vae_model *m, int i, vae_tensor_info *out);
/* One row of the layer table: index, op, name, output shape, parameters. */
VAEDEF void vae_model_layer_row(const vae_model *m, int i, char *buf, size_t cap);

/* ---- data ---- */
typedef enum vae_split { VAE_SPLIT_TRAIN = 0, VAE_SPLIT_TEST, VAE_SPLIT_COUNT } vae_split;

typedef struct vae_data {
    int            n, c, h, w;
    unsigned char *pixels;        /* (n, c, h, w), 0..255 */
    unsigned char *labels;        /* n, or NULL            */
    char           error[VAE_ERROR_SIZE];
} vae_data;

/* Built-in procedural shapes: n images of size x size, deterministic from seed. */
VAEDEF vae_result vae_data_shapes(vae_data *d, int n, int size, uint64_t seed, vae_split split);
/* float images (count, c, h, w) in [0,1] of the images idx[0..count-1] */
VAEDEF void       vae_data_batch(const vae_data *d, const uint32_t *idx, int count, float *out);
VAEDEF void       vae_data_free(vae_data *d);

/* Position i of epoch e's shuffled order over n items: a keyed bijection, so no memory is
   needed and training can resume anywhere from (seed, epoch, position). */
VAEDEF uint32_t   vae_shuffle_index(uint64_t seed, int epoch, uint32_t i, uint32_t n);

typedef struct vae_progress {
    int       step, steps;        /* within this epoch */
    int       epoch;
    vae_stats running;            /* averaged over the epoch so far */
} vae_progress;
/* Return nonzero to stop the epoch early. */
typedef int (*vae_progress_fn)(void *user, const vae_progress *p);

/* One pass over d in shuffled order, in full batches of cfg.batch (a last partial batch is
   dropped, as PyTorch's drop_last does). Increments m->epoch when the pass completes. */
VAEDEF vae_result vae_model_train_epoch(vae_model *m, const vae_data *d, vae_progress_fn fn, void *user, vae_stats *out);
/* The loss over a whole data set, in batches of cfg.batch; eps from a generator seeded by seed. */
VAEDEF vae_result vae_model_evaluate_data(vae_model *m, const vae_data *d, uint64_t seed, vae_stats *out);

/* GEMM: C(M,N) = alpha * op(A)(M,K) * op(B)(K,N) + beta * C, row-major, single thread. */
VAEDEF void        vae_gemm(int transa, int transb, int M, int N, int K, float alpha,
                            const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);
VAEDEF const char *vae_gemm_kernel_name_active(void);

#ifndef VAE_NO_STDIO
#define VAE_SAVE_TRAINING_STATE VAE_TRAINING_STATE
#define VAE_LOAD_TRAINING_STATE VAE_TRAINING_STATE   /* the file must then hold that state */
VAEDEF vae_result vae_model_save(vae_model *m, const char *path, unsigned flags);
/* Builds the model the file describes. batch and threads > 0 override the saved values
   (they change speed and memory, never results). */
VAEDEF vae_result vae_model_load(vae_model *m, const char *path, int batch, int threads, unsigned flags);

/* MNIST / Fashion-MNIST IDX files, gzipped or not. */
VAEDEF vae_result vae_data_load_idx(vae_data *d, const char *images_path, const char *labels_path);
/* A directory holding {train,t10k}-images-idx3-ubyte[.gz] (and the labels). */
VAEDEF vae_result vae_data_load(vae_data *d, const char *dir, vae_split split);

/* Writes an 8-bit PNG (1 gray, 3 RGB, 4 RGBA channels) atomically. */
VAEDEF vae_result vae_png_write(const char *path, const unsigned char *pixels, int w, int h, int channels, char *err);
#endif

#ifdef __cplusplus
}
#endif
#endif /* VAE_H_INCLUDED */

/* ======================================================================================== */
/*                                     IMPLEMENTATION                                       */
/* ======================================================================================== */
#ifdef VAE_IMPLEMENTATION
#ifndef VAE_IMPLEMENTATION_INCLUDED
#define VAE_IMPLEMENTATION_INCLUDED

/* >>platform */

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <stdlib.h>
#include <stdarg.h>
#include <limits.h>
#include <math.h>
#include <float.h>
#ifndef VAE_NO_STDIO
#include <stdio.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(VAE_MALLOC) && defined(VAE_FREE)
#elif !defined(VAE_MALLOC) && !defined(VAE_FREE)
#define VAE_MALLOC(sz) malloc(sz)
#define VAE_FREE(p)    free(p)
#else
#error "define both VAE_MALLOC and VAE_FREE, or neither"
#endif

#ifndef VAE_ASSERT
#include <assert.h>
#define VAE_ASSERT(x) assert(x)
#endif

#if defined(__cplusplus)
#define VAE__RESTRICT __restrict
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 199901L
#define VAE__RESTRICT restrict
#else
#define VAE__RESTRICT
#endif

#define VAE__ERR_SIZE VAE_ERROR_SIZE
#define VAE__MIN(a, b) ((a) < (b) ? (a) : (b))
#define VAE__MAX(a, b) ((a) > (b) ? (a) : (b))
/* A compile-time check that a name table matches its enum (C99 has no static_assert). */
#define VAE__STATIC_ASSERT(name, cond) typedef char vae__static_assert_##name[(cond) ? 1 : -1]
#define VAE__COUNTOF(a) (sizeof(a) / sizeof((a)[0]))

/* Every error message goes through here; err may be NULL. */
static void vae__errf(char *err, const char *fmt, ...)
{
    va_list ap;
    if (!err) return;
    va_start(ap, fmt);
    vsnprintf(err, VAE__ERR_SIZE, fmt, ap);
    va_end(ap);
}

/* Formats the message into err (the model's or data set's error field) and returns r. */
static vae_result vae__fail(char *err, vae_result r, const char *fmt, ...)
{
    va_list ap;
    if (err) {
        va_start(ap, fmt);
        vsnprintf(err, VAE__ERR_SIZE, fmt, ap);
        va_end(ap);
    }
    return r;
}

static const char *vae__result_names[] = {
    "ok", "invalid argument", "invalid architecture", "out of memory", "i/o error",
    "corrupt or unrecognised file", "file does not match the model", "non-finite number"
};
VAE__STATIC_ASSERT(result_names, VAE__COUNTOF(vae__result_names) == VAE_RESULT_COUNT);

VAEDEF const char *vae_result_string(vae_result r)
{
    if ((int)r < 0 || r >= VAE_RESULT_COUNT) return "unknown result";
    return vae__result_names[r];
}

/* Overflow-checked size arithmetic: a flag that sticks once anything overflows. */
static size_t vae__mul(size_t a, size_t b, int *ovf)
{
    if (a && b > SIZE_MAX / a) { *ovf = 1; return 0; }
    return a * b;
}
static size_t vae__add(size_t a, size_t b, int *ovf)
{
    if (b > SIZE_MAX - a) { *ovf = 1; return 0; }
    return a + b;
}
/* Rounds a float count up to 16 (64 bytes) so every block starts on a cache line. */
static size_t vae__align16(size_t n, int *ovf) { return vae__add(n, 15, ovf) & ~(size_t)15; }

/* >>gemm */

/* GEMM-PLACEHOLDER-BEGIN: replaced by the SIMD fragment */
typedef struct vae__gemm_ctx { int threads; float *scratch; size_t scratch_floats; int kernel; } vae__gemm_ctx;
static size_t vae__gemm_scratch_floats(int threads) { (void)threads; return 0; }
static void vae__gemm(const vae__gemm_ctx *ctx, int ta, int tb, int M, int N, int K, float alpha,
                      const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    int i, j, k;
    (void)ctx;
    for (i = 0; i < M; i++)
        for (j = 0; j < N; j++) {
            float s = 0;
            for (k = 0; k < K; k++) s += (ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]) * (tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j]);
            C[(size_t)i * ldc + j] = alpha * s + (beta == 0 ? 0 : beta * C[(size_t)i * ldc + j]);
        }
}
VAEDEF void vae_gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                     const float *B, int ldb, float beta, float *C, int ldc)
{
    vae__gemm_ctx c = {1, NULL, 0, -1};
    vae__gemm(&c, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
VAEDEF const char *vae_gemm_kernel_name_active(void) { return "scalar"; }
/* GEMM-PLACEHOLDER-END */

/* >>rng */

/* splitmix64 turns any 64-bit seed into well-mixed state; xoshiro128** then gives 32-bit
   outputs with only 32-bit integer operations, cheap on Cortex-M and WASM alike. */
static uint64_t vae__splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

VAEDEF void vae_rng_seed(vae_rng *rng, uint64_t seed)
{
    uint64_t x = seed, a = vae__splitmix64(&x), b = vae__splitmix64(&x);
    rng->s[0] = (uint32_t)a; rng->s[1] = (uint32_t)(a >> 32);
    rng->s[2] = (uint32_t)b; rng->s[3] = (uint32_t)(b >> 32);
    if (!(rng->s[0] | rng->s[1] | rng->s[2] | rng->s[3])) rng->s[0] = 1;  /* all-zero is a fixed point */
}

static uint32_t vae__rotl32(uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }

VAEDEF uint32_t vae_rng_u32(vae_rng *rng)
{
    uint32_t *s = rng->s, r = vae__rotl32(s[1] * 5u, 7) * 9u, t = s[1] << 9;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t;    s[3] = vae__rotl32(s[3], 11);
    return r;
}

VAEDEF float vae_rng_uniform(vae_rng *rng) { return (float)(vae_rng_u32(rng) >> 8) * (1.0f / 16777216.0f); }

/* Natural log in double with only +,*,/ and exact scaling, so the normal stream does not
   depend on the platform's libm. Reduce s = m * 2^e with m in [sqrt(1/2), sqrt(2)), then
   log m = 2 atanh(t), t = (m-1)/(m+1), |t| < 0.172: the series to t^21 is below 1e-17. */
static double vae__log(double s)
{
    int e = 0, i;
    double t, t2, sum, term;
    while (s >= 1.4142135623730951) { s *= 0.5; e++; }
    while (s < 0.7071067811865476) { s *= 2.0; e--; }
    t = (s - 1.0) / (s + 1.0);
    t2 = t * t; term = t; sum = 0;
    for (i = 1; i <= 21; i += 2) { sum += term / i; term *= t2; }
    return 2.0 * sum + e * 0.69314718055994530942;
}

/* Marsaglia's polar method: exact rejection with only a log and an IEEE sqrt. The second
   variate of each pair is dropped so that the state is the only thing to save. */
VAEDEF float vae_rng_normal(vae_rng *rng)
{
    for (;;) {
        double u = (vae_rng_u32(rng) >> 8) * (2.0 / 16777216.0) - 1.0;
        double v = (vae_rng_u32(rng) >> 8) * (2.0 / 16777216.0) - 1.0;
        double s = u * u + v * v;
        if (s > 0 && s < 1) return (float)(u * sqrt(-2.0 * vae__log(s) / s));
    }
}

/* Position i of a keyed permutation of [0,n): invertible steps on [0,2^k) (odd multiply,
   add, xor-shift), then cycle-walking until the value lands below n. */
VAEDEF uint32_t vae_shuffle_index(uint64_t seed, int epoch, uint32_t i, uint32_t n)
{
    uint64_t st = seed ^ (0xD1B54A32D192ED03ull * (uint64_t)(epoch + 1));
    uint32_t key[6], mask = n - 1, x = i, t;
    int bits = 0, r, half;
    if (n <= 1) return 0;
    mask |= mask >> 1; mask |= mask >> 2; mask |= mask >> 4; mask |= mask >> 8; mask |= mask >> 16;
    for (t = mask; t; t >>= 1) bits++;
    for (r = 0; r < 6; r++) key[r] = (uint32_t)vae__splitmix64(&st);
    half = bits / 2 + 1;
    do {
        for (r = 0; r < 3; r++) {
            x = (x * (key[2 * r] | 1u)) & mask;
            x = (x + key[2 * r + 1]) & mask;
            x ^= x >> half;
        }
    } while (x >= n);
    return x;
}

/* >>arch: the architecture text */

static const char *vae__op_names[] = {
    "input", "flatten", "reshape", "linear", "mulv", "sample",
    "relu", "leakyrelu", "sigmoid", "tanh", "silu"
};
VAE__STATIC_ASSERT(op_names, VAE__COUNTOF(vae__op_names) == VAE_OP_COUNT);

#define VAE__MAX_DIM   65536          /* any one dimension            */
#define VAE__MAX_ELEMS (1 << 28)      /* elements of one activation   */
#define VAE__MAX_ARGS  8

/* What parsing learns before anything is allocated. */
typedef struct vae__plan {
    int    nlayers, sample_layer;
    int    in_c, in_h, in_w, latent;
    size_t nparams;      /* floats                                        */
    size_t act;          /* activation floats per image, over all layers  */
    size_t aux;          /* saved-for-backward floats per image           */
    size_t arch_len;
} vae__plan;

/* One parsed token: op(args):name1,name2 */
typedef struct vae__token {
    char   op[16];
    int    nargs;
    char   key[VAE__MAX_ARGS][16];    /* "" for a positional argument */
    double val[VAE__MAX_ARGS];
    char   name[2][VAE_NAME_MAX];
} vae__token;

static int vae__isspace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
static int vae__isident(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'; }

/* Reads one token at *p, advancing it. Returns 1 for a token, 0 at the end, -1 on error. */
static int vae__token_next(const char **p, vae__token *t, char *err)
{
    const char *s = *p;
    size_t n;
    memset(t, 0, sizeof *t);
    while (vae__isspace(*s)) s++;
    if (!*s) { *p = s; return 0; }
    for (n = 0; vae__isident(s[n]); n++) {}
    if (n == 0 || n >= sizeof t->op) { vae__errf(err, "arch: expected a layer name at '%.20s'", s); return -1; }
    memcpy(t->op, s, n); s += n;
    if (*s == '(') {
        s++;
        for (;;) {
            char *end;
            while (vae__isspace(*s)) s++;
            if (*s == ')' && t->nargs == 0) { s++; break; }
            if (t->nargs == VAE__MAX_ARGS) { vae__errf(err, "arch: %s: too many arguments", t->op); return -1; }
            for (n = 0; vae__isident(s[n]); n++) {}
            if (n && s[n] == '=' && !(s[0] >= '0' && s[0] <= '9')) {
                if (n >= sizeof t->key[0]) { vae__errf(err, "arch: %s: argument name too long", t->op); return -1; }
                memcpy(t->key[t->nargs], s, n); s += n + 1;
            }
            t->val[t->nargs] = strtod(s, &end);
            if (end == s || !isfinite(t->val[t->nargs])) { vae__errf(err, "arch: %s: expected a number at '%.20s'", t->op, s); return -1; }
            s = end; t->nargs++;
            while (vae__isspace(*s)) s++;
            if (*s == ',') { s++; continue; }
            if (*s == ')') { s++; break; }
            vae__errf(err, "arch: %s: expected ',' or ')' at '%.20s'", t->op, s); return -1;
        }
    }
    if (*s == ':') {
        int k = 0;
        s++;
        for (;;) {
            for (n = 0; vae__isident(s[n]) || s[n] == '.' || s[n] == '-'; n++) {}
            if (n == 0 || n >= VAE_NAME_MAX - 20) { vae__errf(err, "arch: %s: bad tensor name at '%.20s'", t->op, s); return -1; }
            memcpy(t->name[k], s, n); s += n;
            if (*s != ',') break;
            if (++k == 2) { vae__errf(err, "arch: %s: at most two names", t->op); return -1; }
            s++;
        }
    }
    if (*s && !vae__isspace(*s)) { vae__errf(err, "arch: unexpected '%c' after %s", *s, t->op); return -1; }
    *p = s;
    return 1;
}

/* Argument number i (or keyword key) as an integer in [lo,hi]; def when absent, or an error
   when def is LONG_MIN (required). */
static int vae__arg_int(const vae__token *t, int i, const char *key, long def, long lo, long hi, long *out, char *err)
{
    int k, pos = 0;
    for (k = 0; k < t->nargs; k++) {
        int hit = t->key[k][0] ? (key && strcmp(t->key[k], key) == 0) : (pos++ == i);
        if (!hit) continue;
        if (t->val[k] != floor(t->val[k]) || t->val[k] < lo || t->val[k] > hi) {
            vae__errf(err, "arch: %s: argument %s must be an integer in [%ld, %ld]", t->op, key ? key : "", lo, hi);
            return -1;
        }
        *out = (long)t->val[k];
        return 0;
    }
    if (def == LONG_MIN) { vae__errf(err, "arch: %s: missing argument %d", t->op, i + 1); return -1; }
    *out = def;
    return 0;
}

static int vae__arg_float(const vae__token *t, int i, const char *key, double def, double lo, double hi, float *out, char *err)
{
    int k, pos = 0;
    for (k = 0; k < t->nargs; k++) {
        int hit = t->key[k][0] ? (key && strcmp(t->key[k], key) == 0) : (pos++ == i);
        if (!hit) continue;
        if (t->val[k] < lo || t->val[k] > hi) { vae__errf(err, "arch: %s: argument out of range [%g, %g]", t->op, lo, hi); return -1; }
        *out = (float)t->val[k];
        return 0;
    }
    *out = (float)def;
    return 0;
}

/* Rejects keyword arguments an op does not know and positional ones beyond maxpos. */
static int vae__args_check(const vae__token *t, int maxpos, const char *const *keys, char *err)
{
    int k, pos = 0;
    for (k = 0; k < t->nargs; k++) {
        if (!t->key[k][0]) {
            if (++pos > maxpos) { vae__errf(err, "arch: %s takes at most %d positional arguments", t->op, maxpos); return -1; }
        } else {
            const char *const *q = keys;
            while (*q && strcmp(*q, t->key[k]) != 0) q++;
            if (!*q) { vae__errf(err, "arch: %s: unknown argument '%s'", t->op, t->key[k]); return -1; }
        }
    }
    return 0;
}

/* Parses arch, infers every shape and sums every size. With layers == NULL it only counts;
   the model calls it twice, before and after carving memory, so that parsing never allocates. */
static vae_result vae__arch_parse(const char *arch, vae_layer *layers, vae__plan *pl, char *err)
{
    static const char *const no_keys[] = { NULL };
    static const char *const bias_keys[] = { "bias", NULL };
    static const char *const sample_keys[] = { "clamp", NULL };
    const char *p = arch;
    vae_layer tmp;
    vae__token t;
    int i, r, c = 0, h = 0, w = 0, ovf = 0;
    memset(pl, 0, sizeof *pl);
    pl->sample_layer = -1;
    if (!arch) return vae__fail(err, VAE_ERROR_ARCH, "arch: no architecture given");
    for (i = 0; (r = vae__token_next(&p, &t, err)) == 1; i++) {
        vae_layer *l = layers ? &layers[i] : &tmp;
        long a = 0, b = 0, d = 0;
        size_t in_size = (size_t)c * h * w, size;
        int op;
        for (op = 0; op < VAE_OP_COUNT; op++) if (strcmp(t.op, vae__op_names[op]) == 0) break;
        if (op == VAE_OP_COUNT) return vae__fail(err, VAE_ERROR_ARCH, "arch: unknown layer '%s' (token %d)", t.op, i + 1);
        if ((op == VAE_OP_INPUT) != (i == 0))
            return vae__fail(err, VAE_ERROR_ARCH, "arch: the first layer, and only the first, must be input(C,H,W)");
        memset(l, 0, sizeof *l);
        l->op = (vae_op)op;
        l->in_c = c; l->in_h = h; l->in_w = w;
        if (t.name[0][0]) memcpy(l->name, t.name[0], sizeof l->name);
        else snprintf(l->name, sizeof l->name, "layers.%d", i);
        if (t.name[1][0]) memcpy(l->name2, t.name[1], sizeof l->name2);
        else if (op == VAE_OP_MULV) snprintf(l->name2, sizeof l->name2, "%.50s_logvar", l->name);
        if (t.name[1][0] && op != VAE_OP_MULV)
            return vae__fail(err, VAE_ERROR_ARCH, "arch: %s takes one name", t.op);
        switch (op) {
        case VAE_OP_INPUT:
        case VAE_OP_RESHAPE:
            if (vae__args_check(&t, 3, no_keys, err) || vae__arg_int(&t, 0, NULL, LONG_MIN, 1, VAE__MAX_DIM, &a, err) ||
                vae__arg_int(&t, 1, NULL, 1, 1, VAE__MAX_DIM, &b, err) || vae__arg_int(&t, 2, NULL, 1, 1, VAE__MAX_DIM, &d, err))
                return VAE_ERROR_ARCH;
            if ((double)a * b * d > VAE__MAX_ELEMS)
                return vae__fail(err, VAE_ERROR_ARCH, "arch: %s(%ld,%ld,%ld) is too large", t.op, a, b, d);
            if (op == VAE_OP_RESHAPE && (size_t)(a * b * d) != in_size)
                return vae__fail(err, VAE_ERROR_ARCH, "arch: reshape(%ld,%ld,%ld) of %lu elements", a, b, d, (unsigned long)in_size);
            l->c = (int)a; l->h = (int)b; l->w = (int)d;
            break;
        case VAE_OP_FLATTEN:
            if (vae__args_check(&t, 0, no_keys, err)) return VAE_ERROR_ARCH;
            l->c = (int)in_size; l->h = l->w = 1;
            break;
        case VAE_OP_LINEAR:
        case VAE_OP_MULV:
            if (vae__args_check(&t, 1, bias_keys, err) || vae__arg_int(&t, 0, NULL, LONG_MIN, 1, VAE__MAX_DIM, &a, err) ||
                vae__arg_int(&t, 1, "bias", 1, 0, 1, &b, err))
                return VAE_ERROR_ARCH;
            if (h != 1 || w != 1)
                return vae__fail(err, VAE_ERROR_ARCH, "arch: %s needs a flat input; add flatten before it", t.op);
            l->units = (int)a; l->bias = (int)b;
            l->c = op == VAE_OP_MULV ? 2 * l->units : l->units; l->h = l->w = 1;
            l->nparams = vae__add(vae__mul((size_t)l->c, in_size, &ovf), l->bias ? (size_t)l->c : 0, &ovf);
            break;
        case VAE_OP_SAMPLE:
            if (vae__args_check(&t, 0, sample_keys, err) || vae__arg_float(&t, 0, "clamp", 0, 0, 1e4, &l->alpha, err))
                return VAE_ERROR_ARCH;
            if (pl->sample_layer >= 0) return vae__fail(err, VAE_ERROR_ARCH, "arch: more than one sample layer");
            if (c % 2) return vae__fail(err, VAE_ERROR_ARCH, "arch: sample needs an even channel count (mu | logvar), got %d", c);
            pl->sample_layer = i;
            l->c = c / 2; l->h = h; l->w = w;
            pl->latent = l->c * h * w;
            pl->aux = vae__add(pl->aux, (size_t)pl->latent, &ovf);   /* eps */
            break;
        case VAE_OP_LEAKY_RELU:
            if (vae__args_check(&t, 1, no_keys, err) || vae__arg_float(&t, 0, NULL, 0.01, -1e3, 1e3, &l->alpha, err))
                return VAE_ERROR_ARCH;
            l->c = c; l->h = h; l->w = w;
            break;
        default: /* elementwise activations */
            if (vae__args_check(&t, 0, no_keys, err)) return VAE_ERROR_ARCH;
            l->c = c; l->h = h; l->w = w;
            break;
        }
        size = (size_t)l->c * l->h * l->w;
        if (size > VAE__MAX_ELEMS) return vae__fail(err, VAE_ERROR_ARCH, "arch: %s output of %lu elements is too large", l->name, (unsigned long)size);
        if (op != VAE_OP_FLATTEN && op != VAE_OP_RESHAPE) pl->act = vae__add(pl->act, size, &ovf);
        pl->nparams = vae__add(pl->nparams, l->nparams, &ovf);
        c = l->c; h = l->h; w = l->w;
        if (i == 0) { pl->in_c = c; pl->in_h = h; pl->in_w = w; }
    }
    if (r < 0) return VAE_ERROR_ARCH;
    if (ovf) return vae__fail(err, VAE_ERROR_ARCH, "arch: sizes overflow");
    pl->nlayers = i;
    pl->arch_len = strlen(arch);
    if (pl->arch_len >= VAE_ARCH_MAX) return vae__fail(err, VAE_ERROR_ARCH, "arch: text longer than %d bytes", VAE_ARCH_MAX - 1);
    if (i == 0) return vae__fail(err, VAE_ERROR_ARCH, "arch: empty");
    if (pl->sample_layer < 1) return vae__fail(err, VAE_ERROR_ARCH, "arch: no sample layer between encoder and decoder");
    if (c != pl->in_c || h != pl->in_h || w != pl->in_w)
        return vae__fail(err, VAE_ERROR_ARCH, "arch: the decoder gives %dx%dx%d but the input is %dx%dx%d",
                         c, h, w, pl->in_c, pl->in_h, pl->in_w);
    return VAE_OK;
}

VAEDEF vae_result vae_arch_preset(char *buf, size_t cap, const char *name, int c, int h, int w, int hidden, int latent)
{
    int n;
    if (!buf || !name || c < 1 || h < 1 || w < 1 || hidden < 0 || latent < 0) return VAE_ERROR_INVALID_ARGUMENT;
    if (strcmp(name, "mlp") == 0) {
        /* seed 003: the PyTorch example VAE, 784-400-20, attribute names as in the seed */
        if (!hidden) hidden = 400;
        if (!latent) latent = 20;
        n = snprintf(buf, cap,
                     "input(%d,%d,%d) flatten linear(%d):img_to_hidden relu\n"
                     "mulv(%d):hidden_to_mean,hidden_to_logvar sample\n"
                     "linear(%d):latent_to_hidden relu linear(%d):hidden_to_img reshape(%d,%d,%d) sigmoid",
                     c, h, w, hidden, latent, hidden, c * h * w, c, h, w);
        return n > 0 && (size_t)n < cap ? VAE_OK : VAE_ERROR_INVALID_ARGUMENT;
    }
    return VAE_ERROR_INVALID_ARGUMENT;
}

/* >>memory: plan, then carve one block */

VAEDEF vae_config vae_config_default(void)
{
    vae_config c;
    memset(&c, 0, sizeof c);
    c.loss = VAE_LOSS_BCE;
    c.reduce = VAE_REDUCE_SUM;
    c.beta = 1.0f;
    c.optim = VAE_OPTIM_ADAM;
    c.lr = 1e-3f;
    c.beta1 = 0.9f; c.beta2 = 0.999f; c.eps = 1e-8f;   /* PyTorch's Adam defaults */
    c.batch = 128;
    c.seed = 1;
    c.threads = 1;
    return c;
}

static vae_result vae__config_check(vae_config *c, char *err)
{
    if (c->loss == VAE_LOSS_DEFAULT) c->loss = VAE_LOSS_BCE;
    if (c->reduce == VAE_REDUCE_DEFAULT) c->reduce = VAE_REDUCE_SUM;
    if (c->optim == VAE_OPTIM_DEFAULT) c->optim = VAE_OPTIM_ADAM;
    if ((int)c->loss < 0 || c->loss >= VAE_LOSS_COUNT) return vae__fail(err, VAE_ERROR_INVALID_ARGUMENT, "config: unknown loss %d", (int)c->loss);
    if ((int)c->reduce < 0 || c->reduce >= VAE_REDUCE_COUNT) return vae__fail(err, VAE_ERROR_INVALID_ARGUMENT, "config: unknown reduction %d", (int)c->reduce);
    if ((int)c->optim < 0 || c->optim >= VAE_OPTIM_COUNT) return vae__fail(err, VAE_ERROR_INVALID_ARGUMENT, "config: unknown optimizer %d", (int)c->optim);
    if (c->batch < 1 || c->batch > 1 << 20) return vae__fail(err, VAE_ERROR_INVALID_ARGUMENT, "config: batch %d out of range [1, 1048576]", c->batch);
    if (!(c->lr >= 0 && c->lr < 1e6f)) return vae__fail(err, VAE_ERROR_INVALID_ARGUMENT, "config: learning rate %g out of range", (double)c->lr);
    if (!(c->beta >= 0 && c->beta < 1e6f)) return vae__fail(err, VAE_ERROR_INVALID_ARGUMENT, "config: beta %g out of range", (double)c->beta);
    if (c->beta_warmup < 0) return vae__fail(err, VAE_ERROR_INVALID_ARGUMENT, "config: negative beta warm-up");
    if (!(c->beta1 >= 0 && c->beta1 < 1 && c->beta2 >= 0 && c->beta2 < 1 && c->eps >= 0))
        return vae__fail(err, VAE_ERROR_INVALID_ARGUMENT, "config: Adam betas must lie in [0,1) and eps >= 0");
    if (!(c->momentum >= 0 && c->momentum < 1)) return vae__fail(err, VAE_ERROR_INVALID_ARGUMENT, "config: momentum must lie in [0,1)");
    if (!(c->weight_decay >= 0 && c->weight_decay < 1e3f)) return vae__fail(err, VAE_ERROR_INVALID_ARGUMENT, "config: weight decay out of range");
    if (!(c->clip >= 0 && c->clip < 1e30f) || !(c->logvar_clamp >= 0 && c->logvar_clamp < 1e4f))
        return vae__fail(err, VAE_ERROR_INVALID_ARGUMENT, "config: clip and logvar clamp must be >= 0");
    if (c->threads < 1) c->threads = 1;
    if (c->threads > 256) c->threads = 256;
    return VAE_OK;
}

/* The carving of one block, as offsets in floats (the block is aligned to 64 bytes). */
typedef struct vae__layout {
    size_t layers, arch, params, grads, opt_m, opt_v, acts, dacts, aux, scratch, total;
} vae__layout;

static int vae__uses_m(const vae_config *c) { return c->optim != VAE_OPTIM_SGD || c->momentum > 0; }
static int vae__uses_v(const vae_config *c) { return c->optim != VAE_OPTIM_SGD; }

static vae_result vae__layout_make(const vae__plan *pl, const vae_config *cfg, unsigned flags, vae__layout *L, char *err)
{
    int ovf = 0, train = !(flags & VAE_INFERENCE);
    size_t B = (size_t)cfg->batch, at = 0, n;
#define VAE__CARVE(field, floats) (L->field = at, n = vae__align16((floats), &ovf), at = vae__add(at, n, &ovf))
    VAE__CARVE(layers, vae__mul((size_t)pl->nlayers, sizeof(vae_layer), &ovf) / sizeof(float) + 1);
    VAE__CARVE(arch, pl->arch_len / sizeof(float) + 1);
    VAE__CARVE(params, pl->nparams);
    VAE__CARVE(grads, train ? pl->nparams : 0);
    VAE__CARVE(opt_m, train && vae__uses_m(cfg) ? pl->nparams : 0);
    VAE__CARVE(opt_v, train && vae__uses_v(cfg) ? pl->nparams : 0);
    VAE__CARVE(acts, vae__mul(B, pl->act, &ovf));
    VAE__CARVE(dacts, train ? vae__mul(B, pl->act, &ovf) : 0);
    VAE__CARVE(aux, vae__mul(B, pl->aux, &ovf));
    VAE__CARVE(scratch, vae__gemm_scratch_floats(cfg->threads));
#undef VAE__CARVE
    L->total = vae__add(vae__mul(at, sizeof(float), &ovf), 64, &ovf);   /* + slack to align */
    if (ovf) return vae__fail(err, VAE_ERROR_OUT_OF_MEMORY, "model: memory size overflows");
    return VAE_OK;
}

VAEDEF size_t vae_model_memory_size(const char *arch, const vae_config *cfg, unsigned flags)
{
    vae__plan pl;
    vae__layout L;
    vae_config c = cfg ? *cfg : vae_config_default();
    if (vae__config_check(&c, NULL) || vae__arch_parse(arch, NULL, &pl, NULL) ||
        vae__layout_make(&pl, &c, flags, &L, NULL))
        return 0;
    return L.total;
}

/* PyTorch's default initialisation for nn.Linear (kaiming_uniform with a = sqrt(5)):
   weights and biases both U(-1/sqrt(fan_in), 1/sqrt(fan_in)). */
static void vae__init_uniform(float *p, size_t n, float bound, vae_rng *rng)
{
    size_t i;
    for (i = 0; i < n; i++) p[i] = (2.0f * vae_rng_uniform(rng) - 1.0f) * bound;
}

static void vae__params_init(vae_model *m)
{
    vae_rng rng;
    int i;
    vae_rng_seed(&rng, m->cfg.seed ^ 0x5EEDull);
    for (i = 0; i < m->nlayers; i++) {
        vae_layer *l = &m->layers[i];
        if (l->op == VAE_OP_LINEAR || l->op == VAE_OP_MULV) {
            int fan_in = l->in_c * l->in_h * l->in_w;
            float bound = 1.0f / (float)sqrt((double)fan_in);
            vae__init_uniform(l->w_, (size_t)l->c * fan_in, bound, &rng);
            if (l->b_) vae__init_uniform(l->b_, (size_t)l->c, bound, &rng);
        }
    }
}

VAEDEF vae_result vae_model_init_preallocated(vae_model *m, const char *arch, const vae_config *cfg,
                                              unsigned flags, void *memory, size_t size)
{
    vae__plan pl;
    vae__layout L;
    vae_result r;
    float *base, *param, *grad, *act, *dact, *aux;
    int i, train = !(flags & VAE_INFERENCE);
    size_t B;
    if (!m) return VAE_ERROR_INVALID_ARGUMENT;
    memset(m, 0, sizeof *m);
    m->cfg = cfg ? *cfg : vae_config_default();
    if ((r = vae__config_check(&m->cfg, m->error)) != VAE_OK) return r;
    if ((r = vae__arch_parse(arch, NULL, &pl, m->error)) != VAE_OK) return r;
    if ((r = vae__layout_make(&pl, &m->cfg, flags, &L, m->error)) != VAE_OK) return r;
    if (!memory || size < L.total)
        return vae__fail(m->error, VAE_ERROR_INVALID_ARGUMENT, "model: needs %lu bytes of memory, got %lu",
                         (unsigned long)L.total, (unsigned long)size);
    base = (float *)(((uintptr_t)memory + 63) & ~(uintptr_t)63);
    memset(base, 0, L.total - 64);
    m->memory = memory; m->memory_size = L.total; m->flags = flags;
    m->layers = (vae_layer *)(void *)(base + L.layers);
    m->arch = (char *)(base + L.arch);
    memcpy(m->arch, arch, pl.arch_len + 1);
    if ((r = vae__arch_parse(m->arch, m->layers, &pl, m->error)) != VAE_OK) return r;
    if (m->cfg.loss == VAE_LOSS_BCE && m->layers[pl.nlayers - 1].op != VAE_OP_SIGMOID)
        return vae__fail(m->error, VAE_ERROR_ARCH, "arch: the BCE loss needs the decoder to end in sigmoid (use the MSE loss otherwise)");
    m->nlayers = pl.nlayers; m->sample_layer = pl.sample_layer;
    m->in_c = pl.in_c; m->in_h = pl.in_h; m->in_w = pl.in_w; m->in_size = pl.in_c * pl.in_h * pl.in_w;
    m->latent = pl.latent; m->nparams = pl.nparams;
    m->params = base + L.params;
    m->grads = train ? base + L.grads : NULL;
    m->opt_m = train && vae__uses_m(&m->cfg) ? base + L.opt_m : NULL;
    m->opt_v = train && vae__uses_v(&m->cfg) ? base + L.opt_v : NULL;
    m->scratch = base + L.scratch;
    m->scratch_floats = vae__gemm_scratch_floats(m->cfg.threads);
    B = (size_t)m->cfg.batch;
    param = m->params; grad = m->grads; act = base + L.acts; dact = train ? base + L.dacts : NULL; aux = base + L.aux;
    for (i = 0; i < m->nlayers; i++) {
        vae_layer *l = &m->layers[i];
        size_t size = (size_t)l->c * l->h * l->w;
        if (l->op == VAE_OP_FLATTEN || l->op == VAE_OP_RESHAPE) {   /* views: no copy */
            l->y = m->layers[i - 1].y; l->dy = m->layers[i - 1].dy;
        } else {
            l->y = act; act += B * size;
            if (dact && i > 0) { l->dy = dact; dact += B * size; }
        }
        if (l->nparams) {
            size_t nw = l->nparams - (l->bias ? (size_t)l->c : 0);
            l->w_ = param; l->b_ = l->bias ? param + nw : NULL; param += l->nparams;
            if (grad) { l->dw = grad; l->db = l->bias ? grad + nw : NULL; grad += l->nparams; }
        }
        if (l->op == VAE_OP_SAMPLE) { l->aux = aux; aux += B * size; }
    }
    vae_rng_seed(&m->rng, m->cfg.seed);
    vae__params_init(m);
    return VAE_OK;
}

VAEDEF vae_result vae_model_init(vae_model *m, const char *arch, const vae_config *cfg, unsigned flags)
{
    vae_config c = cfg ? *cfg : vae_config_default();
    size_t size;
    void *mem;
    vae_result r;
    if (!m) return VAE_ERROR_INVALID_ARGUMENT;
    size = vae_model_memory_size(arch, &c, flags);
    if (!size) return vae_model_init_preallocated(m, arch, &c, flags, NULL, 0);  /* reports why */
    mem = VAE_MALLOC(size);
    if (!mem) {
        memset(m, 0, sizeof *m);
        return vae__fail(m->error, VAE_ERROR_OUT_OF_MEMORY, "model: cannot allocate %lu bytes", (unsigned long)size);
    }
    r = vae_model_init_preallocated(m, arch, &c, flags, mem, size);
    if (r != VAE_OK) { VAE_FREE(mem); m->memory = NULL; return r; }
    m->owns_memory = 1;
    return VAE_OK;
}

VAEDEF void vae_model_free(vae_model *m)
{
    if (!m) return;
    if (m->owns_memory && m->memory) VAE_FREE(m->memory);
    memset(m, 0, sizeof *m);
}

/* >>layers: forward and backward kernels. Shapes are (n, ...) with n images in the batch. */

/* y (n,out) = x (n,in) * w^T + b, w (out,in) as PyTorch stores it, b (out) or NULL.
   The bias is written first and the GEMM accumulates onto it (beta = 1). */
static void vae__linear_forward(const vae__gemm_ctx *g, float *y, const float *x, const float *w, const float *b,
                                int n, int in, int out)
{
    int i;
    if (b) for (i = 0; i < n; i++) memcpy(y + (size_t)i * out, b, sizeof(float) * out);
    vae__gemm(g, 0, 1, n, out, in, 1.0f, x, in, w, in, b ? 1.0f : 0.0f, y, out);
}

/* dw (out,in) = dy^T x,  db (out) = sum over the batch of dy,  dx (n,in) = dy w (dx may be NULL) */
static void vae__linear_backward(const vae__gemm_ctx *g, float *dx, float *dw, float *db, const float *dy,
                                 const float *x, const float *w, int n, int in, int out)
{
    int i, o;
    vae__gemm(g, 1, 0, out, in, n, 1.0f, dy, out, x, in, 0.0f, dw, in);
    if (db) {
        for (o = 0; o < out; o++) db[o] = 0;
        for (i = 0; i < n; i++)
            for (o = 0; o < out; o++) db[o] += dy[(size_t)i * out + o];
    }
    if (dx) vae__gemm(g, 0, 0, n, in, out, 1.0f, dy, out, w, in, 0.0f, dx, in);
}

static float vae__sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

/* Elementwise activations over `count` values. backward gets x (the input) and y (the output)
   and uses whichever gives the derivative most cheaply. */
static void vae__act_forward(vae_op op, float alpha, float *VAE__RESTRICT y, const float *VAE__RESTRICT x, size_t count)
{
    size_t i;
    switch (op) {
    case VAE_OP_RELU:       for (i = 0; i < count; i++) y[i] = x[i] > 0 ? x[i] : 0.0f; break;
    case VAE_OP_LEAKY_RELU: for (i = 0; i < count; i++) y[i] = x[i] > 0 ? x[i] : alpha * x[i]; break;
    case VAE_OP_SIGMOID:    for (i = 0; i < count; i++) y[i] = vae__sigmoid(x[i]); break;
    case VAE_OP_TANH:       for (i = 0; i < count; i++) y[i] = tanhf(x[i]); break;
    case VAE_OP_SILU:       for (i = 0; i < count; i++) y[i] = x[i] * vae__sigmoid(x[i]); break;
    default: VAE_ASSERT(0);
    }
}

static void vae__act_backward(vae_op op, float alpha, float *VAE__RESTRICT dx, const float *VAE__RESTRICT dy,
                              const float *VAE__RESTRICT x, const float *VAE__RESTRICT y, size_t count)
{
    size_t i;
    switch (op) {
    case VAE_OP_RELU:       for (i = 0; i < count; i++) dx[i] = x[i] > 0 ? dy[i] : 0.0f; break;
    case VAE_OP_LEAKY_RELU: for (i = 0; i < count; i++) dx[i] = x[i] > 0 ? dy[i] : alpha * dy[i]; break;
    case VAE_OP_SIGMOID:    for (i = 0; i < count; i++) dx[i] = dy[i] * y[i] * (1.0f - y[i]); break;
    case VAE_OP_TANH:       for (i = 0; i < count; i++) dx[i] = dy[i] * (1.0f - y[i] * y[i]); break;
    case VAE_OP_SILU:
        for (i = 0; i < count; i++) {
            float s = vae__sigmoid(x[i]);
            dx[i] = dy[i] * s * (1.0f + x[i] * (1.0f - s));
        }
        break;
    default: VAE_ASSERT(0);
    }
}

/* The reparameterisation z = mu + exp(lv/2) * eps.
   x (n, 2, L): each image holds mu then log-variance; z (n, L); eps (n, L).
   clamp > 0 clamps log-variance first (seed 000). eps comes from rng, or is 0 if rng is NULL. */
static void vae__sample_forward(float *z, float *eps, const float *x, int n, int L, float clamp, vae_rng *rng)
{
    int i, j;
    for (i = 0; i < n; i++) {
        const float *mu = x + (size_t)i * 2 * L, *lv = mu + L;
        for (j = 0; j < L; j++) {
            float v = clamp > 0 ? VAE__MIN(VAE__MAX(lv[j], -clamp), clamp) : lv[j];
            float e = rng ? vae_rng_normal(rng) : 0.0f;
            eps[(size_t)i * L + j] = e;
            z[(size_t)i * L + j] = mu[j] + expf(0.5f * v) * e;
        }
    }
}

/* dx (n, 2, L) from dz (n, L), plus the KL term's gradient scaled by kl_w:
   KL = -1/2 sum(1 + lv - mu^2 - exp(lv)),  dKL/dmu = mu,  dKL/dlv = (exp(lv) - 1) / 2.
   A clamp passes gradient only inside its range (inclusive, as torch.clamp does):
   `clamp` acts on the whole path, `kl_clamp` only on the KL term (seed 002). */
static void vae__sample_backward(float *dx, const float *dz, const float *x, const float *eps, int n, int L,
                                 float clamp, float kl_clamp, float kl_w)
{
    int i, j;
    for (i = 0; i < n; i++) {
        const float *mu = x + (size_t)i * 2 * L, *lv = mu + L;
        float *dmu = dx + (size_t)i * 2 * L, *dlv = dmu + L;
        for (j = 0; j < L; j++) {
            float v = lv[j], in = 1.0f, kin = 1.0f, s, g;
            size_t k = (size_t)i * L + j;
            if (clamp > 0 && (v < -clamp || v > clamp)) { v = VAE__MIN(VAE__MAX(v, -clamp), clamp); in = 0.0f; }
            s = expf(0.5f * v);
            g = dz[k] * eps[k] * 0.5f * s;
            if (kl_clamp > 0 && (v < -kl_clamp || v > kl_clamp)) { v = VAE__MIN(VAE__MAX(v, -kl_clamp), kl_clamp); kin = 0.0f; }
            dmu[j] = dz[k] + kl_w * mu[j];
            dlv[j] = in * (g + kin * kl_w * 0.5f * (expf(v) - 1.0f));
        }
    }
}

/* >>model: the forward and backward passes over the layer list */

static vae__gemm_ctx vae__gemm_ctx_of(const vae_model *m)
{
    vae__gemm_ctx g;
    g.threads = m->cfg.threads; g.scratch = m->scratch; g.scratch_floats = m->scratch_floats; g.kernel = -1;
    return g;
}

static size_t vae__layer_size(const vae_layer *l) { return (size_t)l->c * l->h * l->w; }

/* Runs layers [from, to) on n images. rng gives the sampling noise (NULL: z = mu). */
static void vae__forward(vae_model *m, int from, int to, int n, vae_rng *rng)
{
    vae__gemm_ctx g = vae__gemm_ctx_of(m);
    int i;
    for (i = VAE__MAX(from, 1); i < to; i++) {
        vae_layer *l = &m->layers[i];
        const vae_layer *p = &m->layers[i - 1];
        switch (l->op) {
        case VAE_OP_INPUT: case VAE_OP_FLATTEN: case VAE_OP_RESHAPE: break;
        case VAE_OP_LINEAR: case VAE_OP_MULV:
            vae__linear_forward(&g, l->y, p->y, l->w_, l->b_, n, (int)vae__layer_size(p), l->c);
            break;
        case VAE_OP_SAMPLE:
            vae__sample_forward(l->y, l->aux, p->y, n, (int)vae__layer_size(l), l->alpha, rng);
            break;
        default:
            vae__act_forward(l->op, l->alpha, l->y, p->y, (size_t)n * vae__layer_size(l));
            break;
        }
    }
}

/* Backpropagates from the gradient already in layers[start].dy down to the first layer. */
static void vae__backward(vae_model *m, int start, int n, float kl_w)
{
    vae__gemm_ctx g = vae__gemm_ctx_of(m);
    int i;
    for (i = start; i >= 1; i--) {
        vae_layer *l = &m->layers[i];
        const vae_layer *p = &m->layers[i - 1];
        float *dx = p->dy;     /* NULL when p is the input (or a view of it) */
        switch (l->op) {
        case VAE_OP_INPUT: case VAE_OP_FLATTEN: case VAE_OP_RESHAPE: break;
        case VAE_OP_LINEAR: case VAE_OP_MULV:
            vae__linear_backward(&g, dx, l->dw, l->db, l->dy, p->y, l->w_, n, (int)vae__layer_size(p), l->c);
            break;
        case VAE_OP_SAMPLE:
            if (dx) vae__sample_backward(dx, l->dy, p->y, l->aux, n, (int)vae__layer_size(l), l->alpha, m->cfg.logvar_clamp, kl_w);
            break;
        default:
            if (dx) vae__act_backward(l->op, l->alpha, dx, l->dy, p->y, l->y, (size_t)n * vae__layer_size(l));
            break;
        }
    }
}

/* >>loss: negative ELBO = reconstruction + beta * KL */

/* Per image: recon = sum over pixels of BCE(logits, x) or (y - x)^2; KL = the closed form for
   N(mu, sigma^2) against N(0, I). REDUCE_SUM reports both per image (nats per image for BCE);
   REDUCE_MEAN divides recon by the pixel count and KL by the latent count (seed 002).
   With grad, writes d(recon)/d(output) where backward starts, and returns that layer's index.
   Sums are per image in double, then over images in order: the same for any thread count. */
static int vae__loss(vae_model *m, const float *x, int n, float beta, vae_stats *st, int grad)
{
    const vae_layer *last = &m->layers[m->nlayers - 1], *smp = &m->layers[m->sample_layer];
    const vae_layer *enc = &m->layers[m->sample_layer - 1];
    int D = m->in_size, L = m->latent, i, j, start = m->nlayers - 1, mean = m->cfg.reduce == VAE_REDUCE_MEAN;
    float rscale = mean ? 1.0f / ((float)n * D) : 1.0f / n;
    float clamp = smp->alpha, kclamp = m->cfg.logvar_clamp;
    double recon = 0, kl = 0;
    for (i = 0; i < n; i++) {
        const float *t = x + (size_t)i * D, *mu = enc->y + (size_t)i * 2 * L, *lv = mu + L;
        double r = 0, k = 0;
        if (m->cfg.loss == VAE_LOSS_BCE) {
            /* max(l,0) - l*t + log(1 + exp(-|l|)): no log(0) and no overflow for any logit */
            const vae_layer *lg = &m->layers[m->nlayers - 2];
            const float *l = lg->y + (size_t)i * D, *p = last->y + (size_t)i * D;
            float *dl = grad ? lg->dy + (size_t)i * D : NULL;
            for (j = 0; j < D; j++) {
                r += (double)((l[j] > 0 ? l[j] : 0.0f) - l[j] * t[j] + log1pf(expf(-fabsf(l[j]))));
                if (dl) dl[j] = (p[j] - t[j]) * rscale;
            }
            start = m->nlayers - 2;
        } else {
            const float *y = last->y + (size_t)i * D;
            float *dy = grad ? last->dy + (size_t)i * D : NULL;
            for (j = 0; j < D; j++) {
                float d = y[j] - t[j];
                r += (double)(d * d);
                if (dy) dy[j] = 2.0f * d * rscale;
            }
        }
        for (j = 0; j < L; j++) {
            float v = lv[j];
            if (clamp > 0) v = VAE__MIN(VAE__MAX(v, -clamp), clamp);
            if (kclamp > 0) v = VAE__MIN(VAE__MAX(v, -kclamp), kclamp);
            k += -0.5 * (double)(1.0f + v - mu[j] * mu[j] - expf(v));
        }
        recon += mean ? r / D : r;
        kl += mean ? k / L : k;
    }
    st->recon = recon / n;
    st->kl = kl / n;
    st->loss = st->recon + beta * st->kl;
    st->images = n;
    return start;
}

/* >>optim: SGD with momentum, Adam, AdamW, and global gradient-norm clipping.
   The arithmetic follows PyTorch 1.13's single-tensor CPU path step for step, so the two
   libraries agree to float rounding: scalars in double, tensor math in float. */

static void vae__optim_step(vae_model *m)
{
    const vae_config *c = &m->cfg;
    float *p = m->params, *g = m->grads, *mm = m->opt_m, *vv = m->opt_v;
    size_t i, n = m->nparams;
    double t;
    m->step++;
    t = (double)m->step;
    if (c->optim == VAE_OPTIM_SGD) {
        float lr = c->lr, wd = c->weight_decay, mom = c->momentum;
        for (i = 0; i < n; i++) {
            float d = g[i] + wd * p[i];
            if (mm) d = mm[i] = mom * mm[i] + d;   /* first step: 0 * mom + d == d, as PyTorch */
            p[i] -= lr * d;
        }
    } else {
        float b1 = c->beta1, b2 = c->beta2, eps = c->eps, wd = c->weight_decay;
        double bc1 = 1.0 - pow((double)c->beta1, t), bc2 = 1.0 - pow((double)c->beta2, t);
        float step_size = (float)((double)c->lr / bc1), bc2_sqrt = (float)sqrt(bc2);
        float decay = (float)(1.0 - (double)c->lr * c->weight_decay);
        int adamw = c->optim == VAE_OPTIM_ADAMW;
        for (i = 0; i < n; i++) {
            float d = adamw ? g[i] : g[i] + wd * p[i], denom;
            if (adamw) p[i] *= decay;
            mm[i] = mm[i] * b1 + d * (1.0f - b1);
            vv[i] = vv[i] * b2 + d * d * (1.0f - b2);
            denom = sqrtf(vv[i]) / bc2_sqrt + eps;
            p[i] -= step_size * mm[i] / denom;
        }
    }
}

static double vae__sumsq(const float *x, size_t n)
{
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += (double)x[i] * x[i]; s1 += (double)x[i + 1] * x[i + 1];
        s2 += (double)x[i + 2] * x[i + 2]; s3 += (double)x[i + 3] * x[i + 3];
    }
    for (; i < n; i++) s0 += (double)x[i] * x[i];
    return (s0 + s1) + (s2 + s3);
}

/* Names the first tensor holding a non-finite value, for the error message. */
static const char *vae__first_nonfinite(const vae_model *m, const float *block, char *buf, size_t cap)
{
    int i, nt = vae_model_tensor_count(m);
    for (i = 0; i < nt; i++) {
        vae_tensor_info t;
        size_t k, cnt = 1, off;
        int d;
        vae_model_tensor(m, i, &t);
        for (d = 0; d < t.ndim; d++) cnt *= (size_t)t.shape[d];
        off = (size_t)(t.data - m->params);
        for (k = 0; k < cnt; k++)
            if (!isfinite(block[off + k])) { snprintf(buf, cap, "%s", t.name); return buf; }
    }
    snprintf(buf, cap, "?");
    return buf;
}

static float vae__beta_at(const vae_config *c, int64_t step)
{
    if (c->beta_warmup <= 0 || step + 1 >= c->beta_warmup) return c->beta;
    return c->beta * (float)((double)(step + 1) / c->beta_warmup);
}

static vae_result vae__check_batch(vae_model *m, const void *p, int n, const char *what)
{
    if (!m->layers) return vae__fail(m->error, VAE_ERROR_INVALID_ARGUMENT, "%s: model not initialised", what);
    if (!p) return vae__fail(m->error, VAE_ERROR_INVALID_ARGUMENT, "%s: NULL buffer", what);
    if (n < 1) return vae__fail(m->error, VAE_ERROR_INVALID_ARGUMENT, "%s: batch size %d", what, n);
    return VAE_OK;
}

/* Forward, loss and backward on n images: the gradient of the loss ends up in m->grads.
   The sampling noise comes from m->rng. */
static vae_result vae__gradients(vae_model *m, const float *x, int n, vae_stats *st)
{
    float beta = vae__beta_at(&m->cfg, m->step), kl_w;
    int start;
    if (x != m->layers[0].y) memcpy(m->layers[0].y, x, sizeof(float) * (size_t)n * m->in_size);
    vae__forward(m, 1, m->nlayers, n, &m->rng);
    start = vae__loss(m, x, n, beta, st, 1);
    if (!isfinite(st->loss))
        return vae__fail(m->error, VAE_ERROR_NUMERIC, "step %lld: loss is %g (recon %g, kl %g); update skipped",
                         (long long)m->step + 1, st->loss, st->recon, st->kl);
    kl_w = m->cfg.reduce == VAE_REDUCE_MEAN ? beta / ((float)n * m->latent) : beta / n;
    vae__backward(m, start, n, kl_w);
    return VAE_OK;
}

VAEDEF vae_result vae_model_train_step(vae_model *m, const float *x, int n, vae_stats *out)
{
    vae_stats st;
    double norm2;
    vae_result r;
    if ((r = vae__check_batch(m, x, n, "train_step")) != VAE_OK) return r;
    if (!m->grads) return vae__fail(m->error, VAE_ERROR_INVALID_ARGUMENT, "train_step: model was created with VAE_INFERENCE");
    if (n > m->cfg.batch) return vae__fail(m->error, VAE_ERROR_INVALID_ARGUMENT, "train_step: batch %d > planned %d", n, m->cfg.batch);
    r = vae__gradients(m, x, n, &st);
    if (out) *out = st;
    if (r != VAE_OK) return r;
    norm2 = vae__sumsq(m->grads, m->nparams);
    m->last_grad_norm = (float)sqrt(norm2);
    if (!isfinite(norm2)) {
        char name[2 * VAE_NAME_MAX];
        return vae__fail(m->error, VAE_ERROR_NUMERIC, "step %lld: non-finite gradient in %s; update skipped",
                         (long long)m->step + 1, vae__first_nonfinite(m, m->grads, name, sizeof name));
    }
    if (m->cfg.clip > 0) {
        /* torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e-6) when that is < 1 */
        float coef = (float)(m->cfg.clip / (sqrt(norm2) + 1e-6));
        if (coef < 1.0f) { size_t i; for (i = 0; i < m->nparams; i++) m->grads[i] *= coef; }
    }
    vae__optim_step(m);
    return VAE_OK;
}

/* Helpers for the inference entry points, which take any n and run it in chunks of cfg.batch. */
static void vae__stats_merge(vae_stats *acc, const vae_stats *s)
{
    int n = acc->images + s->images;
    acc->recon = (acc->recon * acc->images + s->recon * s->images) / n;
    acc->kl = (acc->kl * acc->images + s->kl * s->images) / n;
    acc->loss = (acc->loss * acc->images + s->loss * s->images) / n;
    acc->images = n;
}

VAEDEF vae_result vae_model_evaluate(vae_model *m, const float *x, int n, vae_rng *rng, vae_stats *out)
{
    vae_stats acc, st;
    int done, k;
    vae_result r;
    if ((r = vae__check_batch(m, x, n, "evaluate")) != VAE_OK) return r;
    memset(&acc, 0, sizeof acc);
    for (done = 0; done < n; done += k) {
        k = VAE__MIN(n - done, m->cfg.batch);
        memcpy(m->layers[0].y, x + (size_t)done * m->in_size, sizeof(float) * (size_t)k * m->in_size);
        vae__forward(m, 1, m->nlayers, k, rng);
        vae__loss(m, x + (size_t)done * m->in_size, k, m->cfg.beta, &st, 0);
        vae__stats_merge(&acc, &st);
    }
    if (out) *out = acc;
    return VAE_OK;
}

VAEDEF vae_result vae_model_encode(vae_model *m, const float *x, int n, float *mu, float *logvar)
{
    const vae_layer *smp, *enc;
    int done, k, i, j, L;
    vae_result r;
    if ((r = vae__check_batch(m, x, n, "encode")) != VAE_OK) return r;
    smp = &m->layers[m->sample_layer]; enc = &m->layers[m->sample_layer - 1]; L = m->latent;
    for (done = 0; done < n; done += k) {
        k = VAE__MIN(n - done, m->cfg.batch);
        memcpy(m->layers[0].y, x + (size_t)done * m->in_size, sizeof(float) * (size_t)k * m->in_size);
        vae__forward(m, 1, m->sample_layer, k, NULL);
        for (i = 0; i < k; i++) {
            const float *h = enc->y + (size_t)i * 2 * L;
            size_t o = (size_t)(done + i) * L;
            if (mu) memcpy(mu + o, h, sizeof(float) * L);
            if (logvar)
                for (j = 0; j < L; j++)
                    logvar[o + j] = smp->alpha > 0 ? VAE__MIN(VAE__MAX(h[L + j], -smp->alpha), smp->alpha) : h[L + j];
        }
    }
    return VAE_OK;
}

VAEDEF vae_result vae_model_decode(vae_model *m, const float *z, int n, float *out)
{
    int done, k;
    vae_result r;
    if ((r = vae__check_batch(m, z, n, "decode")) != VAE_OK) return r;
    if (!out) return vae__fail(m->error, VAE_ERROR_INVALID_ARGUMENT, "decode: NULL output");
    for (done = 0; done < n; done += k) {
        k = VAE__MIN(n - done, m->cfg.batch);
        memcpy(m->layers[m->sample_layer].y, z + (size_t)done * m->latent, sizeof(float) * (size_t)k * m->latent);
        vae__forward(m, m->sample_layer + 1, m->nlayers, k, NULL);
        memcpy(out + (size_t)done * m->in_size, m->layers[m->nlayers - 1].y, sizeof(float) * (size_t)k * m->in_size);
    }
    return VAE_OK;
}

VAEDEF vae_result vae_model_reconstruct(vae_model *m, const float *x, int n, float *out)
{
    int done, k;
    vae_result r;
    if ((r = vae__check_batch(m, x, n, "reconstruct")) != VAE_OK) return r;
    if (!out) return vae__fail(m->error, VAE_ERROR_INVALID_ARGUMENT, "reconstruct: NULL output");
    for (done = 0; done < n; done += k) {
        k = VAE__MIN(n - done, m->cfg.batch);
        memcpy(m->layers[0].y, x + (size_t)done * m->in_size, sizeof(float) * (size_t)k * m->in_size);
        vae__forward(m, 1, m->nlayers, k, NULL);
        memcpy(out + (size_t)done * m->in_size, m->layers[m->nlayers - 1].y, sizeof(float) * (size_t)k * m->in_size);
    }
    return VAE_OK;
}

VAEDEF vae_result vae_model_sample(vae_model *m, vae_rng *rng, int n, float *out)
{
    int done, k, i;
    vae_result r;
    if ((r = vae__check_batch(m, rng, n, "sample")) != VAE_OK) return r;
    if (!out) return vae__fail(m->error, VAE_ERROR_INVALID_ARGUMENT, "sample: NULL output");
    for (done = 0; done < n; done += k) {
        float *z = m->layers[m->sample_layer].y;
        k = VAE__MIN(n - done, m->cfg.batch);
        for (i = 0; i < k * m->latent; i++) z[i] = vae_rng_normal(rng);
        vae__forward(m, m->sample_layer + 1, m->nlayers, k, NULL);
        memcpy(out + (size_t)done * m->in_size, m->layers[m->nlayers - 1].y, sizeof(float) * (size_t)k * m->in_size);
    }
    return VAE_OK;
}

/* Tensors in state_dict order: for each layer with parameters, weight then bias; a mulv
   layer is stored as one (2Z, in) block but named as its two heads. */
static int vae__layer_tensors(const vae_layer *l) { return l->nparams ? (l->op == VAE_OP_MULV ? 2 : 1) * (l->bias ? 2 : 1) : 0; }

VAEDEF int vae_model_tensor_count(const vae_model *m)
{
    int i, n = 0;
    for (i = 0; i < m->nlayers; i++) n += vae__layer_tensors(&m->layers[i]);
    return n;
}

VAEDEF int vae_model_tensor(const vae_model *m, int idx, vae_tensor_info *t)
{
    int i, k;
    memset(t, 0, sizeof *t);
    for (i = 0; i < m->nlayers; i++) {
        const vae_layer *l = &m->layers[i];
        int nt = vae__layer_tensors(l), per = l->bias ? 2 : 1, head, isb, rows, in;
        size_t off;
        if (idx >= nt) { idx -= nt; continue; }
        head = idx / per; isb = idx % per;
        rows = l->op == VAE_OP_MULV ? l->units : l->c;
        in = l->in_c * l->in_h * l->in_w;
        snprintf(t->name, sizeof t->name, "%s.%s", head ? l->name2 : l->name, isb ? "bias" : "weight");
        t->layer = i;
        if (isb) { t->ndim = 1; t->shape[0] = rows; off = (size_t)(l->b_ - m->params) + (size_t)head * rows; }
        else { t->ndim = 2; t->shape[0] = rows; t->shape[1] = in; off = (size_t)(l->w_ - m->params) + (size_t)head * rows * in; }
        t->data = m->params + off;
        t->grad = m->grads ? m->grads + off : NULL;
        for (k = t->ndim; k < 4; k++) t->shape[k] = 1;
        return 1;
    }
    return 0;
}

VAEDEF void vae_model_layer_row(const vae_model *m, int i, char *buf, size_t cap)
{
    const vae_layer *l;
    char shape[48];
    if (i < 0 || i >= m->nlayers) { if (cap) buf[0] = 0; return; }
    l = &m->layers[i];
    if (l->h == 1 && l->w == 1) snprintf(shape, sizeof shape, "%d", l->c);
    else snprintf(shape, sizeof shape, "%dx%dx%d", l->c, l->h, l->w);
    snprintf(buf, cap, "%3d  %-10s %-34s %-14s %10lu", i, vae__op_names[l->op],
             l->nparams ? (l->op == VAE_OP_MULV ? l->name : l->name) : "", shape, (unsigned long)l->nparams);
}

/* >>train: epochs over a data set */

VAEDEF void vae_data_batch(const vae_data *d, const uint32_t *idx, int count, float *out)
{
    size_t size = (size_t)d->c * d->h * d->w, j;
    int i;
    for (i = 0; i < count; i++) {
        const unsigned char *p = d->pixels + (size_t)idx[i] * size;
        float *o = out + (size_t)i * size;
        for (j = 0; j < size; j++) o[j] = p[j] * (1.0f / 255.0f);
    }
}

static vae_result vae__data_fits(vae_model *m, const vae_data *d)
{
    if (!d || !d->pixels || d->n < 1) return vae__fail(m->error, VAE_ERROR_INVALID_ARGUMENT, "data set is empty");
    if (d->c != m->in_c || d->h != m->in_h || d->w != m->in_w)
        return vae__fail(m->error, VAE_ERROR_MISMATCH, "data is %dx%dx%d but the model takes %dx%dx%d",
                         d->c, d->h, d->w, m->in_c, m->in_h, m->in_w);
    return VAE_OK;
}

/* Each batch is gathered straight into the input layer's activation, so an epoch needs no
   memory beyond the model's block and a small index array on the stack. */
VAEDEF vae_result vae_model_train_epoch(vae_model *m, const vae_data *d, vae_progress_fn fn, void *user, vae_stats *out)
{
    vae_progress pr;
    vae_result r;
    int B = m->cfg.batch, s, i;
    uint32_t idx[256];
    if ((r = vae__data_fits(m, d)) != VAE_OK) return r;
    if (d->n < B) return vae__fail(m->error, VAE_ERROR_INVALID_ARGUMENT, "data set of %d images is smaller than a batch of %d", d->n, B);
    memset(&pr, 0, sizeof pr);
    pr.steps = d->n / B;
    pr.epoch = m->epoch;
    for (s = 0; s < pr.steps; s++) {
        vae_stats st;
        float *x = m->layers[0].y;
        int done, k;
        /* gather in chunks so the index list stays small and on the stack */
        for (done = 0; done < B; done += k) {
            k = VAE__MIN(B - done, 256);
            for (i = 0; i < k; i++) idx[i] = vae_shuffle_index(m->cfg.seed, m->epoch, (uint32_t)(s * B + done + i), (uint32_t)d->n);
            vae_data_batch(d, idx, k, x + (size_t)done * m->in_size);
        }
        if ((r = vae_model_train_step(m, x, B, &st)) != VAE_OK) return r;
        vae__stats_merge(&pr.running, &st);
        pr.step = s + 1;
        if (fn && fn(user, &pr)) break;
    }
    if (pr.step == pr.steps) m->epoch++;
    if (out) *out = pr.running;
    return VAE_OK;
}

VAEDEF vae_result vae_model_evaluate_data(vae_model *m, const vae_data *d, uint64_t seed, vae_stats *out)
{
    vae_rng rng;
    vae_stats acc;
    vae_result r;
    int done, k, i;
    uint32_t idx[256];
    if ((r = vae__data_fits(m, d)) != VAE_OK) return r;
    vae_rng_seed(&rng, seed);
    memset(&acc, 0, sizeof acc);
    for (done = 0; done < d->n; done += k) {
        vae_stats st;
        float *x = m->layers[0].y;
        k = VAE__MIN(VAE__MIN(d->n - done, m->cfg.batch), 256);
        for (i = 0; i < k; i++) idx[i] = (uint32_t)(done + i);
        vae_data_batch(d, idx, k, x);
        vae__forward(m, 1, m->nlayers, k, &rng);
        vae__loss(m, x, k, m->cfg.beta, &st, 0);
        vae__stats_merge(&acc, &st);
    }
    if (out) *out = acc;
    return VAE_OK;
}

/* >>data */

VAEDEF void vae_data_free(vae_data *d)
{
    if (!d) return;
    if (d->pixels) VAE_FREE(d->pixels);
    if (d->labels) VAE_FREE(d->labels);
    memset(d, 0, sizeof *d);
}

/* DATA-PLACEHOLDER-BEGIN */
VAEDEF vae_result vae_data_shapes(vae_data *d, int n, int size, uint64_t seed, vae_split split)
{
    int i, x, y;
    vae_rng rng;
    memset(d, 0, sizeof *d);
    d->pixels = (unsigned char *)VAE_MALLOC((size_t)n * size * size);
    d->n = n; d->c = 1; d->h = d->w = size;
    vae_rng_seed(&rng, seed + split);
    for (i = 0; i < n; i++) {
        float cx = 6 + 16 * vae_rng_uniform(&rng), cy = 6 + 16 * vae_rng_uniform(&rng), r = 3 + 5 * vae_rng_uniform(&rng);
        for (y = 0; y < size; y++) for (x = 0; x < size; x++)
            d->pixels[(size_t)i * size * size + y * size + x] = ((x - cx) * (x - cx) + (y - cy) * (y - cy) < r * r) ? 255 : 0;
    }
    return VAE_OK;
}
/* DATA-PLACEHOLDER-END */

#endif /* VAE_IMPLEMENTATION_INCLUDED */
#endif /* VAE_IMPLEMENTATION */

/*
------------------------------------------------------------------------------
This software is available under 2 licenses -- choose whichever you prefer.
------------------------------------------------------------------------------
ALTERNATIVE A - MIT License
Copyright (c) 2026 the vae.h authors
Permission is hereby granted, free of charge, to any person obtaining a copy of
this software and associated documentation files (the "Software"), to deal in
the Software without restriction, including without limitation the rights to
use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies
of the Software, and to permit persons to whom the Software is furnished to do
so, subject to the following conditions:
The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.
THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
------------------------------------------------------------------------------
ALTERNATIVE B - Public Domain (www.unlicense.org)
This is free and unencumbered software released into the public domain.
Anyone is free to copy, modify, publish, use, compile, sell, or distribute this
software, either in source code form or as a compiled binary, for any purpose,
commercial or non-commercial, and by any means.
In jurisdictions that recognize copyright laws, the author or authors of this
software dedicate any and all copyright interest in the software to the public
domain. We make this dedication for the benefit of the public at large and to
the detriment of our heirs and successors. We intend this dedication to be an
overt act of relinquishment in perpetuity of all present and future rights to
this software under copyright law.
THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN
ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION
WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
------------------------------------------------------------------------------
*/
