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
     BatchNorm layers also get "<name>.num_batches_tracked" (I64, the optimizer step count), so
     PyTorch's strict load_state_dict takes the file once "optim.*" is left out; the other way,
     vae_model_load_weights loads a bare PyTorch state_dict into a preset by tensor name.

   ARCHITECTURE TEXT
     One layer per token, separated by white space; `op(args):name`. For example the seed-003
     MLP VAE (what vae_arch_preset(.., "mlp", 1,28,28, 400,20) writes):
       input(1,28,28) flatten linear(400):img_to_hidden relu
       mulv(20):hidden_to_mean,hidden_to_logvar sample
       linear(400):latent_to_hidden relu linear(784):hidden_to_img reshape(1,28,28) sigmoid
     Ops: input(C,H,W) flatten reshape(C,H,W) linear(N[,bias=0]) mulv(Z) sample[(clamp=X)]
          conv(OC[,k,s,p][,bias=0]) convt(OC[,k,s,p][,op=N][,bias=0]) batchnorm[(eps=,momentum=)]
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
#define VAE_ARCH_MAX   32768   /* longest architecture text */

/* ---- random numbers: xoshiro128** seeded by splitmix64; same stream on every platform ---- */
typedef struct vae_rng { uint32_t s[4]; } vae_rng;
VAEDEF void     vae_rng_seed(vae_rng *rng, uint64_t seed);
VAEDEF uint32_t vae_rng_u32(vae_rng *rng);
VAEDEF float    vae_rng_uniform(vae_rng *rng);            /* [0,1), 24 random bits            */
VAEDEF float    vae_rng_normal(vae_rng *rng);             /* N(0,1), polar method              */
VAEDEF void     vae_rng_normals(vae_rng *rng, float *out, size_t n); /* n of them, both of each pair */

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
    int        frozen_stats;  /* 1: train with batchnorm in eval mode (PyTorch's model.eval()
                                 then backward/step): the running statistics normalise and stay
                                 unchanged, and the gradient is the eval-mode one               */
} vae_config;

VAEDEF vae_config vae_config_default(void);

/* The presets mirror the seed models layer for layer, with their state_dict names:
     "mlp"      seed 003  MLP VAE 784-400-20                     any size (1x28x28)
     "conv"     seed 002  ConvolutionalVAE, BatchNorm             square, side % 8 == 0 (3x32x32)
     "vanilla"  seed 004  VanillaVAE, one-channel Tanh output      256x256 (3x256x256)
     "resnet"   seed 000  ResNet VAE, GroupNorm, spatial latent    sides % 8 == 0 (3x32x32)
     "conv250"  seed 001  ConvVAE for 250x250 images               250x250 (3x250x250)
   The channel count is free; the shape in brackets is the seed's, which vae_preset_input gives.
   vae_arch_preset writes the architecture text into buf (hidden and latent of 0 take the
   preset's defaults; hidden is only used by "mlp"). vae_config_preset gives the seed's
   training setup. */
VAEDEF vae_result vae_arch_preset(char *buf, size_t cap, const char *name, int c, int h, int w, int hidden, int latent);
VAEDEF vae_result vae_config_preset(vae_config *cfg, const char *name);
VAEDEF vae_result vae_preset_input(const char *name, int *c, int *h, int *w);

/* ---- the model ---- */
typedef enum vae_op {
    VAE_OP_INPUT = 0, VAE_OP_FLATTEN, VAE_OP_RESHAPE, VAE_OP_LINEAR, VAE_OP_MULV, VAE_OP_SAMPLE,
    VAE_OP_CONV, VAE_OP_CONVT, VAE_OP_BATCHNORM, VAE_OP_GROUPNORM, VAE_OP_MAXPOOL, VAE_OP_UPSAMPLE,
    VAE_OP_SKIP, VAE_OP_ADD,
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
    int    k, stride, pad, opad;  /* conv, convt: square kernel, stride, padding, output_padding;
                                     maxpool: k, stride; upsample: k is the scale          */
    int    groups;                /* groupnorm                                              */
    int    link;                  /* skip: its add layer; add: its skip layer               */
    int    has_bias;              /* linear, mulv, conv, convt, add; batch/groupnorm affine */
    float  alpha;                 /* leakyrelu: slope; sample: log-variance clamp (0 = off) */
    size_t nparams;
    float *y, *dy;                /* output and its gradient, (batch, c, h, w)              */
    float *weight, *bias;         /* parameters (NULL where the layer has none)             */
    float *dweight, *dbias;       /* their gradients (NULL under VAE_INFERENCE)             */
    float *aux;                   /* per-image state kept for backward: sample: eps;
                                     groupnorm: mean and 1/std of each group; add with a
                                     projection: the gradient of the skipped tensor;
                                     skip: points at what its add leaves for it           */
    size_t aux_size;              /* floats of aux per image                                */
    float *state;                 /* batchnorm: running mean, running var (C each), then the
                                     batch mean and 1/std kept for backward                 */
    float  eps, momentum;         /* batchnorm                                              */
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
    int        out_c, out_size;   /* decoder output: out_c is in_c, or 1 when one channel is
                                     compared with every input channel (seed 004)          */
    int        latent;            /* elements of z per image                                */
    size_t     nparams;
    float     *params, *grads, *opt_m, *opt_v;   /* flat blocks of nparams floats           */
    float     *scratch;           /* GEMM packing                                           */
    float     *cols;              /* conv work space: im2col matrices of a chunk of images  */
    size_t     cols_floats;
    float     *state;             /* non-trained layer state (batchnorm statistics)         */
    size_t     nstate;
    size_t     scratch_floats;
    int64_t    step;              /* optimizer steps taken                                   */
    int        epoch;             /* epochs completed (the data-order state)                */
    vae_rng    rng;               /* sampling noise during training                         */
    const float *noise;           /* NULL, or fixed eps for the sample layer: wherever the model
                                     would draw eps from a generator (training, evaluate with an
                                     rng), image i of every forward batch takes noise[i*latent ..
                                     i*latent+latent) instead. cfg.batch x latent floats, owned
                                     by the caller. For tests against PyTorch with the same eps. */
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
    float *grad;          /* NULL under VAE_INFERENCE, and for state */
    int    layer;
    int    is_state;      /* 1 for statistics that are saved but not trained (batchnorm running mean/var) */
} vae_tensor_info;
VAEDEF int  vae_model_tensor_count(const vae_model *m);
VAEDEF int  vae_model_tensor(const vae_model *m, int i, vae_tensor_info *out);
/* One row of the layer table: index, op, name, output shape, parameters. */
VAEDEF void vae_model_layer_row(const vae_model *m, int i, char *buf, size_t cap);

/* ---- data ---- */
typedef enum vae_split { VAE_SPLIT_TRAIN = 0, VAE_SPLIT_TEST, VAE_SPLIT_COUNT } vae_split;

typedef struct vae_data {
    int            n, c, h, w;    /* n images of c x h x w, as vae_data_batch makes them */
    unsigned char *pixels;        /* the images, 0..255, or NULL when values holds them */
    float         *values;        /* the images as floats taken as they are (F32 safetensors), or NULL */
    unsigned char *labels;        /* n, or NULL            */
    /* Padding (vae_data_pad) is applied as batches are made, so it costs no memory: pixels or
       values hold (n, c, src_h, src_w) images, placed at row top, column left of the h x w
       frame with zeros around. src_h = 0 means no padding: they hold (n, c, h, w). */
    int            src_h, src_w, top, left;
    char           error[VAE_ERROR_SIZE];
} vae_data;

/* Built-in procedural shapes: n images of size x size, deterministic from seed. */
VAEDEF vae_result vae_data_shapes(vae_data *d, int n, int size, uint64_t seed, vae_split split);
/* float images (count, c, h, w) in [0,1] of the images idx[0..count-1] */
VAEDEF void       vae_data_batch(const vae_data *d, const uint32_t *idx, int count, float *out);
VAEDEF void       vae_data_free(vae_data *d);
/* Zero-pads every image to h x w (each at least the current size), centred; an odd extra
   row or column goes to the bottom or right. Fashion-MNIST 28x28 -> 32x32 adds 2 on each side.
   Nothing is copied: vae_data_batch pads each image it makes. */
VAEDEF vae_result vae_data_pad(vae_data *d, int h, int w);

/* Netpbm images: PGM (P5 binary, P2 ASCII; c = 1) and PPM (P6, P3; c = 3), header comments
   allowed. Samples are scaled from 0..maxval to 0..255 (16-bit binary samples, maxval > 255,
   are big-endian as netpbm says). Writes the pixels to out as (h, w, c), interleaved, if out is
   not NULL; with out NULL only the header is read and the file's length checked. Never
   allocates, never reads past buf[size-1]. Sides are limited to 65536. */
VAEDEF vae_result vae_pnm_decode(const unsigned char *buf, size_t size, unsigned char *out, size_t cap,
                                 int *w, int *h, int *c, char *err);

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
/* Loads weights by tensor name into an existing model (vae_model_init from a preset or an
   architecture text): a bare PyTorch state_dict saved as safetensors, or a vae.h checkpoint.
   Every model tensor must be in the file, F32, with the model's shape; any other tensor is an
   error, except BatchNorm's "<name>.num_batches_tracked" (I64, shape [] or [1]; its value is
   not used) and, in a vae.h checkpoint, the optimizer moments "optim.*". Errors
   (VAE_ERROR_MISMATCH for a missing, extra, mis-shaped or mistyped tensor) name the tensor, and
   leave the model unchanged. Optimizer state, step and epoch are left as they are. */
VAEDEF vae_result vae_model_load_weights(vae_model *m, const char *path);

/* F32 tensors to a safetensors file, atomically: t[i].name, ndim (1..4), shape and data. */
VAEDEF vae_result vae_tensors_save(const char *path, const vae_tensor_info *t, int n, char *err);

/* A tensor of a safetensors file as a data set (numpy and PyTorch users: N x C x H x W).
   name NULL means "images", which must have 4 dims; another name may also have 2 (N x C,
   read as C x 1 x 1: latents). U8 values are divided by 255 (pixels), F32 values are taken as
   they are (values) and must be finite. Other tensors in the file are ignored. */
VAEDEF vae_result vae_data_load_safetensors(vae_data *d, const char *path, const char *name);

/* MNIST / Fashion-MNIST IDX files, gzipped or not. */
VAEDEF vae_result vae_data_load_idx(vae_data *d, const char *images_path, const char *labels_path);
/* CIFAR-10 binary batches in dir: data_batch_1.bin .. data_batch_5.bin (those that exist) for
   the train split, test_batch.bin for the test split. 3x32x32 images with labels 0..9. */
VAEDEF vae_result vae_data_load_cifar(vae_data *d, const char *dir, vae_split split);
/* A directory holding {train,t10k}-images-idx3-ubyte[.gz] (and the labels), or CIFAR-10
   batches (in dir or in dir/cifar-10-batches-bin). */
VAEDEF vae_result vae_data_load(vae_data *d, const char *dir, vae_split split);

/* vae_pnm_decode on a file (gzipped or not). */
VAEDEF vae_result vae_pnm_load(const char *path, unsigned char *out, size_t cap, int *w, int *h, int *c, char *err);
/* Reads one image file for vae_data_load_images, as vae_pnm_load does: (h, w, c) with c 1 or 3
   into out, or with out NULL only the size. */
typedef vae_result (*vae_image_read_fn)(void *user, const char *path, unsigned char *out, size_t cap,
                                        int *w, int *h, int *c, char *err);
/* A data set of n image files in the given order, without labels. All must have the same
   width and height; c is 1 if every image is gray, else 3 (gray images are repeated in R, G
   and B). read NULL reads netpbm files with vae_pnm_load; pass your own for other formats. */
VAEDEF vae_result vae_data_load_images(vae_data *d, const char *const *paths, int n, vae_image_read_fn read, void *user);

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
#include <stdio.h>     /* snprintf for messages; files only without VAE_NO_STDIO */
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
/* Functions that some configurations leave unused (VAE_NO_STDIO, VAE_STATIC, test hooks)
   carry this, so that no build warns under -Wall. */
#if defined(__GNUC__) || defined(__clang__)
#define VAE__MAYBE_UNUSED __attribute__((unused))
#else
#define VAE__MAYBE_UNUSED
#endif

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

/* GEMM-BEGIN */
/* ======================================================================== */
/* GEMM: C(M,N) = alpha * op(A)(M,K) * op(B)(K,N) + beta * C, row-major.    */
/* ======================================================================== */
/*
 * Design (Goto/BLIS style):
 *
 *   for jc over N in steps of NC           B panel  (kc x nc)  -> Bp, lives in L2/L3
 *     for pc over K in steps of KC         (K order is fixed: results never depend on threads)
 *       pack B panel
 *       for ic over M in steps of MC       A block  (mc x kc)  -> Ap, lives in L2
 *         pack A block
 *         for (jr, ir) micro-tiles         B sliver (kc x NR) stays in L1 across ir
 *           micro-kernel: MR x NR tile of C in registers, k = 0..kc-1 in order
 *
 * Packing turns every transpose case into one layout, so each micro-kernel is
 * written for a single layout.  Packed buffers (all in the caller's scratch):
 *
 *   Bp: slivers of NR columns, sliver s = Bp[s*kc*NR ..], element (k, j) at
 *       [k*NR + j]; columns past nc are zero.
 *   Ap: slivers of MR rows,    sliver s = Ap[s*kc*MR ..], element (i, k) at
 *       [k*MR + i]; rows past mc are zero.
 *
 * Micro-kernels take A through strides (element (i,k) at a[i*rsa + k*csa]),
 * so when B has only a few slivers (N small: A would be packed and then used
 * once or twice) A is read in place instead of packed; only a partial edge
 * sliver is still packed, because the kernel always reads MR full rows.
 *
 * Threads: C is cut into one slice per thread, along N (or along M when N
 * is narrow), at multiples of NR (MR), and every thread runs the serial
 * algorithm on its slice with its own scratch slot.  There is no barrier
 * until the join (on a busy 2-core machine each barrier can cost a whole
 * scheduler time slice); the price is that each thread packs the shared
 * operand itself, a few percent.  Slices are aligned to the register tile
 * and K blocking depends only on K, so every C element is computed by the
 * same micro-kernel calls in the same order: results are bit-identical for
 * any thread count.
 */

typedef struct vae__gemm_ctx {
    int threads;           /* OpenMP threads; <= 1 means serial */
    float *scratch;        /* packing memory, >= vae__gemm_scratch_floats(threads) floats */
    size_t scratch_floats; /* size of scratch in floats */
    int kernel;            /* index into the kernel table, -1 = best for this CPU */
} vae__gemm_ctx;

VAEDEF void vae_gemm(int transa, int transb, int M, int N, int K, float alpha,
                     const float *A, int lda, const float *B, int ldb, float beta,
                     float *C, int ldc);
VAEDEF const char *vae_gemm_kernel_name_active(void);

/* Micro-kernel: C tile (m <= MR rows, n <= NR columns, row stride ldc) =
 * alpha * sum_k a(i,k) b(k,j) + beta * C, with beta == 0 meaning "do not read
 * C".  a(i,k) = a[i*rsa + k*csa] for all MR rows (always readable), b is one
 * packed sliver. */
typedef void (*vae__gemm_ukr_fn)(int kc, const float *a, ptrdiff_t rsa, ptrdiff_t csa,
                                 const float *b, float *c, ptrdiff_t ldc,
                                 float alpha, float beta, int m, int n);

typedef struct vae__gemm_kinfo {
    const char *name;
    vae__gemm_ukr_fn ukr;
    int isa;                /* VAE__GEMM_ISA_* (for the runtime availability check) */
    int mr, nr;             /* register tile */
    int mc, kc, nc;         /* cache blocks; mc % mr == 0, nc % nr == 0 */
} vae__gemm_kinfo;

#define VAE__GEMM_ISA_NONE 0
#define VAE__GEMM_ISA_SSE2 1
#define VAE__GEMM_ISA_AVX2 2
#define VAE__GEMM_ISA_NEON 3
#define VAE__GEMM_ISA_WASM 4

/* ---- which SIMD kernels can be compiled here ---------------------------- */

#if defined(__SSE2__) || defined(_M_X64) || defined(_M_AMD64) || \
    (defined(_M_IX86_FP) && _M_IX86_FP >= 2)
#define VAE__GEMM_HAVE_SSE2 1
#include <emmintrin.h>
#endif

/* AVX2+FMA: either enabled by the compile flags (then always used), or, on
 * gcc/clang x86, compiled with a target attribute and picked at run time.
 * MinGW gcc is left out of runtime dispatch: it does not realign the stack
 * to 32 bytes for spilled ymm registers (GCC bug 54412). */
#if defined(__AVX2__) && (defined(__FMA__) || defined(_MSC_VER)) /* MSVC /arch:AVX2 implies FMA */
#define VAE__GEMM_HAVE_AVX2 1
#define VAE__GEMM_AVX2_ATTR
#include <immintrin.h>
#elif !defined(VAE_NO_RUNTIME_DISPATCH) && (defined(__x86_64__) || defined(__i386__)) && \
    (defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 5)) && \
    !(defined(_WIN32) && !defined(__clang__))
#define VAE__GEMM_HAVE_AVX2 1
#define VAE__GEMM_AVX2_DISPATCH 1
#define VAE__GEMM_AVX2_ATTR __attribute__((target("avx2,fma")))
#include <immintrin.h>
#endif

#if defined(__ARM_NEON) || defined(__ARM_NEON__) || defined(_M_ARM64)
#define VAE__GEMM_HAVE_NEON 1
#include <arm_neon.h>
#endif

#if defined(__wasm_simd128__)
#define VAE__GEMM_HAVE_WASM 1
#include <wasm_simd128.h>
#endif

/* ---- shared micro-kernel template --------------------------------------- */
/*
 * Each SIMD ISA defines a small vocabulary, then instantiates the template:
 *   VAE__V            vector type, VAE__VW floats wide
 *   VAE__LD/VAE__ST   unaligned load/store
 *   VAE__BC(p)        broadcast *p to all lanes
 *   VAE__SPLAT(x), VAE__ZERO()
 *   VAE__FMA(c,a,b)   c + a*b (fused where the ISA has it)
 *   VAE__MUL, VAE__ADD
 *   VAE__MR, VAE__ROWS rows of the tile (6 or 4) and the matching row list
 * Tile: MR rows x NR = 2 vectors.  With 6 rows, 12 accumulators + 2 B vectors
 * + 1 broadcast fit the 16 registers of AVX2/WASM (on 32-register NEON it
 * leaves room but keeps the code shared).  SSE2 has no FMA and two-operand
 * instructions, so each multiply needs a scratch register: at 6 rows gcc
 * spilled accumulators in the loop, hence 4 rows there.
 */
#define VAE__GEMM_MR 6
/* The C tile is touched only after the k loop; asking for its lines first
 * hides the misses (rows 4 KB apart, as in 1024-wide C, also collide in L1). */
#if defined(__GNUC__) || defined(__clang__)
#define VAE__GEMM_PREFETCH(p) __builtin_prefetch((p), 1, 3)
#else
#define VAE__GEMM_PREFETCH(p) ((void)0)
#endif
#define VAE__GEMM_R2(X) X(0) X(1)
#define VAE__GEMM_R4(X) X(0) X(1) X(2) X(3)
#define VAE__GEMM_R6(X) X(0) X(1) X(2) X(3) X(4) X(5)

#define VAE__GEMM_DECL(r) VAE__V c##r##0 = VAE__ZERO(), c##r##1 = VAE__ZERO();
#define VAE__GEMM_FMA2(r) { const VAE__V a_ = VAE__BC(ak_ + (r) * rs_); \
    c##r##0 = VAE__FMA(c##r##0, a_, b0_); c##r##1 = VAE__FMA(c##r##1, a_, b1_); }
#define VAE__GEMM_FMA1(r) { const VAE__V a_ = VAE__BC(ak_ + (r) * rs_); \
    c##r##0 = VAE__FMA(c##r##0, a_, b0_); }
#define VAE__GEMM_STEP2(ROWS) { const VAE__V b0_ = VAE__LD(bk_), b1_ = VAE__LD(bk_ + VAE__VW); \
    ROWS(VAE__GEMM_FMA2) }
#define VAE__GEMM_STEP1(ROWS) { const VAE__V b0_ = VAE__LD(bk_); ROWS(VAE__GEMM_FMA1) }
#define VAE__GEMM_KLOOP(RS, CS, STEP, ROWS) { \
    const ptrdiff_t rs_ = (RS), cs_ = (CS); \
    const float *ak_ = a, *bk_ = b; int k_; \
    for (k_ = 0; k_ < kc; k_++) { STEP(ROWS) ak_ += cs_; bk_ += 2 * VAE__VW; } }
#define VAE__GEMM_ST0(r) \
    VAE__ST(c + (r) * ldc, VAE__MUL(va_, c##r##0)); \
    VAE__ST(c + (r) * ldc + VAE__VW, VAE__MUL(va_, c##r##1));
#define VAE__GEMM_STB(r) \
    VAE__ST(c + (r) * ldc, VAE__ADD(VAE__MUL(va_, c##r##0), VAE__MUL(vb_, VAE__LD(c + (r) * ldc)))); \
    VAE__ST(c + (r) * ldc + VAE__VW, \
            VAE__ADD(VAE__MUL(va_, c##r##1), VAE__MUL(vb_, VAE__LD(c + (r) * ldc + VAE__VW))));
#define VAE__GEMM_STT(r) \
    VAE__ST(t_ + (r) * 2 * VAE__VW, c##r##0); VAE__ST(t_ + (r) * 2 * VAE__VW + VAE__VW, c##r##1);

/* Full tiles store straight to C; edge tiles go through t_ and a scalar
 * tail.  Each loop variant gets its own function and its own accumulators:
 * sharing one set across variants made gcc spill an accumulator inside the
 * hot loop.  When n fits one vector only half the FMAs are issued (the narrow
 * layers of a VAE, e.g. a 20-wide latent, hit this), and a tile of m <= 2 or
 * m <= 4 rows runs a 2- or 4-row loop: batches of 128 and 32 leave 2 rows in
 * their last 6-row tile, 64 and 16 leave 4 (computing all 6 cost ~5% of a
 * 128 x 400 x 784 product, ~2% of 64 x 400 x 784). */
#define VAE__GEMM_EPILOGUE(ROWS, MRV) \
    if (m == (MRV) && n == 2 * VAE__VW) { \
        const VAE__V va_ = VAE__SPLAT(alpha); \
        if (beta == 0.0f) { ROWS(VAE__GEMM_ST0) } \
        else { const VAE__V vb_ = VAE__SPLAT(beta); ROWS(VAE__GEMM_STB) } \
    } else { \
        float t_[VAE__MR * 2 * VAE__VW]; int i_, j_; \
        ROWS(VAE__GEMM_STT) \
        for (i_ = 0; i_ < m; i_++) { \
            float *cr_ = c + i_ * ldc; const float *tr_ = t_ + i_ * 2 * VAE__VW; \
            if (beta == 0.0f) { for (j_ = 0; j_ < n; j_++) cr_[j_] = alpha * tr_[j_]; } \
            else { for (j_ = 0; j_ < n; j_++) cr_[j_] = alpha * tr_[j_] + beta * cr_[j_]; } \
        } \
    }
#define VAE__GEMM_UKR_PARAMS int kc, const float *a, ptrdiff_t rsa, ptrdiff_t csa, \
    const float *b, float *c, ptrdiff_t ldc, float alpha, float beta, int m, int n
#define VAE__GEMM_UKR_ARGS kc, a, rsa, csa, b, c, ldc, alpha, beta, m, n
/* Only valid rows/columns: forming a pointer past C is undefined in C. */
#define VAE__GEMM_PFC(r) if ((r) < m) { VAE__GEMM_PREFETCH(c + (r) * ldc); \
    VAE__GEMM_PREFETCH(c + (r) * ldc + n - 1); }
#define VAE__GEMM_UKR_VARIANT(NAME, ATTR, STEP, ROWS, MRV) \
static ATTR void NAME(VAE__GEMM_UKR_PARAMS) \
{ \
    ROWS(VAE__GEMM_DECL) \
    ROWS(VAE__GEMM_PFC) \
    VAE__GEMM_KLOOP(rsa, csa, STEP, ROWS) \
    VAE__GEMM_EPILOGUE(ROWS, MRV) \
}
/* NAME picks one of six loops: 2 or 1 vectors wide, VAE__MR, 4 or 2 rows tall (4 only where
 * VAE__MR is 6). */
#define VAE__GEMM_UKR_DEFINE(NAME, ATTR) \
VAE__GEMM_UKR_VARIANT(NAME##_2v, ATTR, VAE__GEMM_STEP2, VAE__ROWS, VAE__MR) \
VAE__GEMM_UKR_VARIANT(NAME##_1v, ATTR, VAE__GEMM_STEP1, VAE__ROWS, VAE__MR) \
VAE__GEMM_UKR_VARIANT(NAME##_2v2r, ATTR, VAE__GEMM_STEP2, VAE__GEMM_R2, 2) \
VAE__GEMM_UKR_VARIANT(NAME##_1v2r, ATTR, VAE__GEMM_STEP1, VAE__GEMM_R2, 2) \
VAE__GEMM_UKR_VARIANT(NAME##_2v4r, ATTR, VAE__GEMM_STEP2, VAE__GEMM_R4, 4) \
VAE__GEMM_UKR_VARIANT(NAME##_1v4r, ATTR, VAE__GEMM_STEP1, VAE__GEMM_R4, 4) \
static ATTR void NAME(VAE__GEMM_UKR_PARAMS) \
{ \
    if (m <= 2) { \
        if (n <= VAE__VW) NAME##_1v2r(VAE__GEMM_UKR_ARGS); \
        else NAME##_2v2r(VAE__GEMM_UKR_ARGS); \
    } else if (m <= 4 && VAE__MR > 4) { \
        if (n <= VAE__VW) NAME##_1v4r(VAE__GEMM_UKR_ARGS); \
        else NAME##_2v4r(VAE__GEMM_UKR_ARGS); \
    } else { \
        if (n <= VAE__VW) NAME##_1v(VAE__GEMM_UKR_ARGS); \
        else NAME##_2v(VAE__GEMM_UKR_ARGS); \
    } \
}

/* ---- scalar kernel: plain C, always present, the reference twin ---------- */
#define VAE__GEMM_SMR 4
#define VAE__GEMM_SNR 4
static void vae__gemm_ukr_scalar(int kc, const float *a, ptrdiff_t rsa, ptrdiff_t csa,
                                 const float *b, float *c, ptrdiff_t ldc,
                                 float alpha, float beta, int m, int n)
{
    float acc[VAE__GEMM_SMR][VAE__GEMM_SNR];
    int i, j, k;
    for (i = 0; i < VAE__GEMM_SMR; i++)
        for (j = 0; j < VAE__GEMM_SNR; j++) acc[i][j] = 0.0f;
    for (k = 0; k < kc; k++) {
        const float *ak = a + k * csa, *bk = b + k * VAE__GEMM_SNR;
        for (i = 0; i < VAE__GEMM_SMR; i++) {
            const float ai = ak[i * rsa];
            for (j = 0; j < VAE__GEMM_SNR; j++) acc[i][j] += ai * bk[j];
        }
    }
    for (i = 0; i < m; i++) {
        float *cr = c + i * ldc;
        if (beta == 0.0f) { for (j = 0; j < n; j++) cr[j] = alpha * acc[i][j]; }
        else { for (j = 0; j < n; j++) cr[j] = alpha * acc[i][j] + beta * cr[j]; }
    }
}

/* ---- SSE2 (no FMA: mul + add) -------------------------------------------- */
#ifdef VAE__GEMM_HAVE_SSE2
#define VAE__V __m128
#define VAE__VW 4
#define VAE__MR 4
#define VAE__ROWS VAE__GEMM_R4
#define VAE__LD(p) _mm_loadu_ps(p)
#define VAE__ST(p, v) _mm_storeu_ps((p), (v))
#define VAE__BC(p) _mm_load1_ps(p)
#define VAE__SPLAT(x) _mm_set1_ps(x)
#define VAE__ZERO() _mm_setzero_ps()
#define VAE__FMA(c, a, b) _mm_add_ps((c), _mm_mul_ps((a), (b)))
#define VAE__MUL(a, b) _mm_mul_ps((a), (b))
#define VAE__ADD(a, b) _mm_add_ps((a), (b))
VAE__GEMM_UKR_DEFINE(vae__gemm_ukr_sse2, )
#undef VAE__V
#undef VAE__VW
#undef VAE__MR
#undef VAE__ROWS
#undef VAE__LD
#undef VAE__ST
#undef VAE__BC
#undef VAE__SPLAT
#undef VAE__ZERO
#undef VAE__FMA
#undef VAE__MUL
#undef VAE__ADD
#endif

/* ---- AVX2 + FMA ----------------------------------------------------------- */
#ifdef VAE__GEMM_HAVE_AVX2
#define VAE__V __m256
#define VAE__VW 8
#define VAE__MR 6
#define VAE__ROWS VAE__GEMM_R6
#define VAE__LD(p) _mm256_loadu_ps(p)
#define VAE__ST(p, v) _mm256_storeu_ps((p), (v))
#define VAE__BC(p) _mm256_broadcast_ss(p)
#define VAE__SPLAT(x) _mm256_set1_ps(x)
#define VAE__ZERO() _mm256_setzero_ps()
#define VAE__FMA(c, a, b) _mm256_fmadd_ps((a), (b), (c))
#define VAE__MUL(a, b) _mm256_mul_ps((a), (b))
#define VAE__ADD(a, b) _mm256_add_ps((a), (b))
VAE__GEMM_UKR_DEFINE(vae__gemm_ukr_avx2, VAE__GEMM_AVX2_ATTR)
#undef VAE__V
#undef VAE__VW
#undef VAE__MR
#undef VAE__ROWS
#undef VAE__LD
#undef VAE__ST
#undef VAE__BC
#undef VAE__SPLAT
#undef VAE__ZERO
#undef VAE__FMA
#undef VAE__MUL
#undef VAE__ADD
#endif

/* ---- NEON ------------------------------------------------------------------ */
#ifdef VAE__GEMM_HAVE_NEON
#define VAE__V float32x4_t
#define VAE__VW 4
#define VAE__MR 6
#define VAE__ROWS VAE__GEMM_R6
#define VAE__LD(p) vld1q_f32(p)
#define VAE__ST(p, v) vst1q_f32((p), (v))
#define VAE__BC(p) vld1q_dup_f32(p)
#define VAE__SPLAT(x) vdupq_n_f32(x)
#define VAE__ZERO() vdupq_n_f32(0.0f)
#if defined(__aarch64__) || defined(_M_ARM64) || defined(__ARM_FEATURE_FMA)
#define VAE__FMA(c, a, b) vfmaq_f32((c), (a), (b))
#else /* ARMv7 NEON without VFPv4: no fused form */
#define VAE__FMA(c, a, b) vmlaq_f32((c), (a), (b))
#endif
#define VAE__MUL(a, b) vmulq_f32((a), (b))
#define VAE__ADD(a, b) vaddq_f32((a), (b))
VAE__GEMM_UKR_DEFINE(vae__gemm_ukr_neon, )
#undef VAE__V
#undef VAE__VW
#undef VAE__MR
#undef VAE__ROWS
#undef VAE__LD
#undef VAE__ST
#undef VAE__BC
#undef VAE__SPLAT
#undef VAE__ZERO
#undef VAE__FMA
#undef VAE__MUL
#undef VAE__ADD
#endif

/* ---- WASM SIMD128 (no FMA in the base proposal: mul + add) ------------------ */
#ifdef VAE__GEMM_HAVE_WASM
#define VAE__V v128_t
#define VAE__VW 4
#define VAE__MR 6
#define VAE__ROWS VAE__GEMM_R6
#define VAE__LD(p) wasm_v128_load(p)
#define VAE__ST(p, v) wasm_v128_store((p), (v))
#define VAE__BC(p) wasm_v128_load32_splat(p)
#define VAE__SPLAT(x) wasm_f32x4_splat(x)
#define VAE__ZERO() wasm_f32x4_splat(0.0f)
#define VAE__FMA(c, a, b) wasm_f32x4_add((c), wasm_f32x4_mul((a), (b)))
#define VAE__MUL(a, b) wasm_f32x4_mul((a), (b))
#define VAE__ADD(a, b) wasm_f32x4_add((a), (b))
VAE__GEMM_UKR_DEFINE(vae__gemm_ukr_wasm, )
#undef VAE__V
#undef VAE__VW
#undef VAE__MR
#undef VAE__ROWS
#undef VAE__LD
#undef VAE__ST
#undef VAE__BC
#undef VAE__SPLAT
#undef VAE__ZERO
#undef VAE__FMA
#undef VAE__MUL
#undef VAE__ADD
#endif

/* ---- kernel table ------------------------------------------------------------
 * Ordered from slowest to fastest, so the best kernel is the last available.
 * AVX2: KC = 256, so a 6 x 256 A sliver (6 KB) and a 256 x 16 B sliver
 * (16 KB) share a 32 KB L1; MC x KC of A (144 KB) stays in L2; KC x NC of B
 * (up to 1 MB) in L2/L3 (NC = 2048 measured no faster and doubles scratch).
 * The 4-wide kernels keep KC and shrink NR, so their L1 share halves;
 * NEON/WASM targets tend to have smaller caches, so their MC is smaller.
 * Narrow products use 2 KC (vae__gemm_kcb).  The AVX2 blocks can be
 * overridden at compile time for tuning. */
#ifndef VAE__GEMM_AVX2_MC
#define VAE__GEMM_AVX2_MC 144
#endif
#ifndef VAE__GEMM_AVX2_KC
#define VAE__GEMM_AVX2_KC 256
#endif
#ifndef VAE__GEMM_AVX2_NC
#define VAE__GEMM_AVX2_NC 1024
#endif
static const vae__gemm_kinfo vae__gemm_kernels[] = {
    { "scalar", vae__gemm_ukr_scalar, VAE__GEMM_ISA_NONE, VAE__GEMM_SMR, VAE__GEMM_SNR, 128, 256, 1024 },
#ifdef VAE__GEMM_HAVE_SSE2
    { "sse2", vae__gemm_ukr_sse2, VAE__GEMM_ISA_SSE2, 4, 8, 144, 256, 1024 },
#endif
#ifdef VAE__GEMM_HAVE_AVX2
    { "avx2", vae__gemm_ukr_avx2, VAE__GEMM_ISA_AVX2, VAE__GEMM_MR, 16, VAE__GEMM_AVX2_MC, VAE__GEMM_AVX2_KC, VAE__GEMM_AVX2_NC },
#endif
#ifdef VAE__GEMM_HAVE_NEON
    { "neon", vae__gemm_ukr_neon, VAE__GEMM_ISA_NEON, VAE__GEMM_MR, 8, 120, 256, 1024 },
#endif
#ifdef VAE__GEMM_HAVE_WASM
    { "wasm", vae__gemm_ukr_wasm, VAE__GEMM_ISA_WASM, VAE__GEMM_MR, 8, 120, 256, 1024 },
#endif
};

static int vae__gemm_kernel_count(void)
{
    return (int)(sizeof(vae__gemm_kernels) / sizeof(vae__gemm_kernels[0]));
}

static const char *vae__gemm_kernel_name(int k)
{
    if (k < 0 || k >= vae__gemm_kernel_count()) return "none";
    return vae__gemm_kernels[k].name;
}

/* Runtime check.  Only the dispatched AVX2 kernel needs one; the others are
 * compiled only when the compile target guarantees the ISA.
 * __builtin_cpu_supports reads a table libgcc / compiler-rt fill once in a
 * constructor (and __builtin_cpu_init returns at once when already done), so
 * this is a few loads: cheap enough to run per call, and it avoids any cached
 * mutable state of our own.  "avx2" also covers OS support for YMM state. */
static int vae__gemm_kernel_available(int k)
{
    if (k < 0 || k >= vae__gemm_kernel_count()) return 0;
#ifdef VAE__GEMM_AVX2_DISPATCH
    if (vae__gemm_kernels[k].isa == VAE__GEMM_ISA_AVX2) {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
#endif
    return 1;
}

static int vae__gemm_best_kernel(void)
{
    int k = vae__gemm_kernel_count() - 1;
    while (k > 0 && !vae__gemm_kernel_available(k)) k--;
    return k;
}

VAEDEF const char *vae_gemm_kernel_name_active(void)
{
    return vae__gemm_kernel_name(vae__gemm_best_kernel());
}

/* ---- blocking helpers ----------------------------------------------------------- */

/* Block size for `total` with at most `maxb` per block, balanced so the last
 * block is not a sliver (K = 784 -> 4 x 196, not 3 x 256 + 16), rounded up to
 * `unit`.  maxb is a multiple of unit, so the result never exceeds maxb. */
static int vae__gemm_blk(int total, int maxb, int unit)
{
    long long nb = ((long long)total + maxb - 1) / maxb, b;
    if (nb < 1) nb = 1;
    b = ((long long)total + nb - 1) / nb;
    b = (b + unit - 1) / unit * unit;
    return b < maxb ? (int)b : maxb;
}

/* Alignment slack per packed buffer: 16 floats = 64 bytes (a cache line). */
#define VAE__GEMM_ALIGN_F 16

/* With at most this many B slivers in a panel, A is read in place. */
#ifndef VAE__GEMM_DIRECT_A_SLIVERS
#define VAE__GEMM_DIRECT_A_SLIVERS 2
#endif

/* K block of the whole problem.  It must depend on the full shape only
 * (never on a thread's slice): the grouping of the K sum decides the
 * rounding.  Narrow products (A read in place, B panel only 1-2 slivers)
 * take up to 2 KC: fewer passes over C and longer unbroken A rows measured
 * ~10% faster at 128 x 20 x 400. */
static int vae__gemm_kcb(const vae__gemm_kinfo *ki, int N, int K)
{
    const int narrow = (N + ki->nr - 1) / ki->nr <= VAE__GEMM_DIRECT_A_SLIVERS;
    return vae__gemm_blk(K, narrow ? 2 * ki->kc : ki->kc, 1);
}

/* Scratch for one thread working on any slice of an M x N x K problem. */
static size_t vae__gemm_scratch_slot(const vae__gemm_kinfo *ki, int M, int N, int K)
{
    size_t kc = (size_t)vae__gemm_kcb(ki, N, K);
    size_t nr = (size_t)ki->nr, mr = (size_t)ki->mr;
    size_t nc = ((size_t)N + nr - 1) / nr * nr, mc = ((size_t)M + mr - 1) / mr * mr;
    if (nc > (size_t)ki->nc) nc = (size_t)ki->nc;
    if (mc > (size_t)ki->mc) mc = (size_t)ki->mc;
    return kc * (nc + mc) + 2 * VAE__GEMM_ALIGN_F;
}

/* Floats of scratch that let vae__gemm run packed with any kernel on any
 * shape with up to `threads` threads (one slot per thread: ~1.2 MB each for
 * the x86 kernels).  Less scratch is fine too: vae__gemm then uses as many
 * threads as there are slots, or the unpacked fallback if not even one
 * slot for the actual shape fits. */
static size_t vae__gemm_scratch_floats(int threads)
{
    size_t best = 0;
    int k;
    if (threads < 1) threads = 1;
    for (k = 0; k < vae__gemm_kernel_count(); k++) {
        const vae__gemm_kinfo *ki = &vae__gemm_kernels[k];
        size_t s = (size_t)ki->kc * (size_t)(ki->nc + ki->mc) + 2 * VAE__GEMM_ALIGN_F;
        /* narrow products: 2 KC deep, at most VAE__GEMM_DIRECT_A_SLIVERS wide */
        size_t s2 = 2 * (size_t)ki->kc * (size_t)(VAE__GEMM_DIRECT_A_SLIVERS * ki->nr + ki->mc) +
                    2 * VAE__GEMM_ALIGN_F;
        if (s2 > s) s = s2;
        if (s > best) best = s;
    }
    return best * (size_t)threads;
}

static float *vae__gemm_align(float *p)
{
    uintptr_t u = (uintptr_t)p;
    u = (u + 63u) & ~(uintptr_t)63u;
    return (float *)u;
}

typedef struct vae__gemm_args {
    int transa, transb, M, N, K;
    float alpha, beta;
    const float *A; int lda;
    const float *B; int ldb;
    float *C; int ldc;
    const float *bias;   /* NULL, or N values: C = bias (per column) + alpha op(A) op(B) */
} vae__gemm_args;

/* 4x4 transpose for packing: d[q*ld + i] = ri[q] (i, q < 4).  Packing runs
 * in the baseline ISA of the build, so this uses SSE2 / NEON / WASM where
 * present; a strided scalar copy was a quarter of the run time of X * W^T
 * with W 400 x 784. */
#if defined(VAE__GEMM_HAVE_SSE2)
#define VAE__GEMM_HAVE_T4 1
static void vae__gemm_t4(const float *r0, const float *r1, const float *r2, const float *r3,
                         float *d, ptrdiff_t ld)
{
    __m128 x0 = _mm_loadu_ps(r0), x1 = _mm_loadu_ps(r1), x2 = _mm_loadu_ps(r2), x3 = _mm_loadu_ps(r3);
    __m128 t0 = _mm_unpacklo_ps(x0, x1), t1 = _mm_unpacklo_ps(x2, x3);
    __m128 t2 = _mm_unpackhi_ps(x0, x1), t3 = _mm_unpackhi_ps(x2, x3);
    _mm_storeu_ps(d, _mm_movelh_ps(t0, t1));
    _mm_storeu_ps(d + ld, _mm_movehl_ps(t1, t0));
    _mm_storeu_ps(d + 2 * ld, _mm_movelh_ps(t2, t3));
    _mm_storeu_ps(d + 3 * ld, _mm_movehl_ps(t3, t2));
}
#elif defined(VAE__GEMM_HAVE_NEON)
#define VAE__GEMM_HAVE_T4 1
static void vae__gemm_t4(const float *r0, const float *r1, const float *r2, const float *r3,
                         float *d, ptrdiff_t ld)
{
    float32x4x2_t a = vtrnq_f32(vld1q_f32(r0), vld1q_f32(r1));
    float32x4x2_t b = vtrnq_f32(vld1q_f32(r2), vld1q_f32(r3));
    vst1q_f32(d, vcombine_f32(vget_low_f32(a.val[0]), vget_low_f32(b.val[0])));
    vst1q_f32(d + ld, vcombine_f32(vget_low_f32(a.val[1]), vget_low_f32(b.val[1])));
    vst1q_f32(d + 2 * ld, vcombine_f32(vget_high_f32(a.val[0]), vget_high_f32(b.val[0])));
    vst1q_f32(d + 3 * ld, vcombine_f32(vget_high_f32(a.val[1]), vget_high_f32(b.val[1])));
}
#elif defined(VAE__GEMM_HAVE_WASM)
#define VAE__GEMM_HAVE_T4 1
static void vae__gemm_t4(const float *r0, const float *r1, const float *r2, const float *r3,
                         float *d, ptrdiff_t ld)
{
    v128_t x0 = wasm_v128_load(r0), x1 = wasm_v128_load(r1), x2 = wasm_v128_load(r2), x3 = wasm_v128_load(r3);
    v128_t t0 = wasm_i32x4_shuffle(x0, x1, 0, 4, 1, 5), t1 = wasm_i32x4_shuffle(x2, x3, 0, 4, 1, 5);
    v128_t t2 = wasm_i32x4_shuffle(x0, x1, 2, 6, 3, 7), t3 = wasm_i32x4_shuffle(x2, x3, 2, 6, 3, 7);
    wasm_v128_store(d, wasm_i32x4_shuffle(t0, t1, 0, 1, 4, 5));
    wasm_v128_store(d + ld, wasm_i32x4_shuffle(t0, t1, 2, 3, 6, 7));
    wasm_v128_store(d + 2 * ld, wasm_i32x4_shuffle(t2, t3, 0, 1, 4, 5));
    wasm_v128_store(d + 3 * ld, wasm_i32x4_shuffle(t2, t3, 2, 3, 6, 7));
}
#endif

/* Pack slivers [s0, s1) of the mc x kc block of op(A) at (i0, p0) into Ap. */
static void vae__gemm_pack_a(const vae__gemm_args *g, int i0, int mc, int p0, int kc,
                             int mr, int s0, int s1, float *VAE__RESTRICT ap)
{
    const size_t l = (size_t)g->lda;
    int s, i, k;
    if (!g->transa) {
        /* A(i,k) = A[i*lda + k]: per sliver, gather one element from each of
         * its rows per k (each row is read contiguously). */
        for (s = s0; s < s1; s++) {
            float *d = ap + (size_t)s * kc * mr;
            const int r0 = s * mr, rows = mc - r0 < mr ? mc - r0 : mr;
            const float *src = g->A + (size_t)(i0 + r0) * l + p0;
            if (rows == 6 && mr == 6) {
                const float *q0 = src, *q1 = src + l, *q2 = src + 2 * l, *q3 = src + 3 * l,
                            *q4 = src + 4 * l, *q5 = src + 5 * l;
                k = 0;
#ifdef VAE__GEMM_HAVE_T4
                /* rows 0-3 four k at a time as a 4 x 4 transpose, rows 4-5 as pairs */
                for (; k + 4 <= kc; k += 4, d += 24) {
                    vae__gemm_t4(q0 + k, q1 + k, q2 + k, q3 + k, d, 6);
                    d[4] = q4[k]; d[5] = q5[k]; d[10] = q4[k + 1]; d[11] = q5[k + 1];
                    d[16] = q4[k + 2]; d[17] = q5[k + 2]; d[22] = q4[k + 3]; d[23] = q5[k + 3];
                }
#endif
                for (; k < kc; k++, d += 6) {
                    d[0] = q0[k]; d[1] = q1[k]; d[2] = q2[k];
                    d[3] = q3[k]; d[4] = q4[k]; d[5] = q5[k];
                }
#ifdef VAE__GEMM_HAVE_T4
            } else if (rows == 4 && mr == 4) {
                for (k = 0; k + 4 <= kc; k += 4)
                    vae__gemm_t4(src + k, src + l + k, src + 2 * l + k, src + 3 * l + k, d + (size_t)k * 4, 4);
                for (; k < kc; k++) {
                    d[k * 4] = src[k]; d[k * 4 + 1] = src[l + k];
                    d[k * 4 + 2] = src[2 * l + k]; d[k * 4 + 3] = src[3 * l + k];
                }
#endif
            } else {
                for (i = 0; i < mr; i++) {
                    if (i < rows) {
                        const float *q = src + (size_t)i * l;
                        for (k = 0; k < kc; k++) d[(size_t)k * mr + i] = q[k];
                    } else {
                        for (k = 0; k < kc; k++) d[(size_t)k * mr + i] = 0.0f;
                    }
                }
            }
        }
    } else {
        /* A stored (K,M): A(i,k) = A[k*lda + i].  Eight source rows at a
         * time across all slivers: sliver by sliver would touch kc cache
         * lines for every 24 bytes used, and row by row leaves each sliver's
         * line partly written while 20-odd slivers (kc x mr floats apart,
         * often a multiple of 2 KB) fight over the same L1 sets. */
        int k0, k1;
        for (k0 = 0; k0 < kc; k0 = k1) {
            k1 = kc - k0 < 8 ? kc : k0 + 8;
            for (s = s0; s < s1; s++) {
                const int r0 = s * mr, rows = mc - r0 < mr ? mc - r0 : mr;
                for (k = k0; k < k1; k++) {
                    const float *src = g->A + (size_t)(p0 + k) * l + i0 + r0;
                    float *d = ap + ((size_t)s * kc + k) * mr;
                    if (rows == 6 && mr == 6) {
                        memcpy(d, src, 6 * sizeof(float));
                    } else {
                        for (i = 0; i < rows; i++) d[i] = src[i];
                        for (; i < mr; i++) d[i] = 0.0f;
                    }
                }
            }
        }
    }
}

/* Pack slivers [s0, s1) of the kc x nc panel of op(B) at (p0, j0) into Bp. */
static void vae__gemm_pack_b(const vae__gemm_args *g, int p0, int kc, int j0, int nc,
                             int nr, int s0, int s1, float *VAE__RESTRICT bp)
{
    const size_t l = (size_t)g->ldb;
    int s, j, k;
    if (!g->transb) {
        /* B(k,j) = B[k*ldb + j]: walk each source row once across all
         * slivers, so B streams through the cache instead of being read one
         * 64-byte piece per row per sliver (that cost ~20% at 128x400x784).
         * Constant-size memcpy compiles to plain vector moves. */
        for (k = 0; k < kc; k++) {
            const float *src = g->B + (size_t)(p0 + k) * l + j0;
            for (s = s0; s < s1; s++) {
                float *d = bp + ((size_t)s * kc + k) * nr;
                const int c0 = s * nr, cols = nc - c0 < nr ? nc - c0 : nr;
                if (cols == 16 && nr == 16) {
                    memcpy(d, src + c0, 16 * sizeof(float));
                } else if (cols == 8 && nr == 8) {
                    memcpy(d, src + c0, 8 * sizeof(float));
                } else {
                    for (j = 0; j < cols; j++) d[j] = src[c0 + j];
                    for (; j < nr; j++) d[j] = 0.0f;
                }
            }
        }
    } else {
        /* B stored (N,K): B(k,j) = B[j*ldb + k], a transpose: 4 x 4 blocks
         * where vectors exist, then scalar leftovers.  k outer: each step
         * fills four whole rows of the sliver (cache lines when nr = 16). */
        for (s = s0; s < s1; s++) {
            float *d = bp + (size_t)s * kc * nr;
            const int c0 = s * nr, cols = nc - c0 < nr ? nc - c0 : nr;
            const float *src = g->B + (size_t)(j0 + c0) * l + p0;
            int j4 = 0;
#ifdef VAE__GEMM_HAVE_T4
            const int cols4 = cols / 4 * 4;
            for (k = 0; k + 4 <= kc; k += 4)
                for (j4 = 0; j4 < cols4; j4 += 4) {
                    const float *q = src + (size_t)j4 * l + k;
                    vae__gemm_t4(q, q + l, q + 2 * l, q + 3 * l, d + (size_t)k * nr + j4, nr);
                }
            for (; k < kc; k++)
                for (j = 0; j < cols4; j++) d[(size_t)k * nr + j] = src[(size_t)j * l + k];
            j4 = cols4;
#endif
            for (j = j4; j < nr; j++) {
                if (j < cols) {
                    const float *q = src + (size_t)j * l;
                    for (k = 0; k < kc; k++) d[(size_t)k * nr + j] = q[k];
                } else {
                    for (k = 0; k < kc; k++) d[(size_t)k * nr + j] = 0.0f;
                }
            }
        }
    }
}

/* A bias is one rule everywhere: write it into the m x n block of C, then accumulate onto
 * it as with beta = 1. */
static void vae__gemm_bias_rows(float *c, int ldc, const float *bias, int m, int n)
{
    int r;
    for (r = 0; r < m; r++) memcpy(c + (size_t)r * ldc, bias, (size_t)n * sizeof(float));
}

/* The blocked product, serially, on the problem in g (a thread's slice). */
static void vae__gemm_drive(const vae__gemm_kinfo *ki, const vae__gemm_args *g, int kcb, float *bp, float *ap)
{
    const int mr = ki->mr, nr = ki->nr;
    const int ncb = vae__gemm_blk(g->N, ki->nc, nr);
    const int mcb = vae__gemm_blk(g->M, ki->mc, mr);
    int jc, pc, ic, jr, ir;
    for (jc = 0; jc < g->N; jc += ncb) {
        const int nc = g->N - jc < ncb ? g->N - jc : ncb;
        const int nsb = (nc + nr - 1) / nr;
        const int direct = nsb <= VAE__GEMM_DIRECT_A_SLIVERS;
        for (pc = 0; pc < g->K; pc += kcb) {
            const int kc = g->K - pc < kcb ? g->K - pc : kcb;
            /* Later K blocks accumulate onto what the first one wrote; with a bias, the
             * first writes the bias into its tile and accumulates onto that. */
            const float beta = pc == 0 && !g->bias ? g->beta : 1.0f;
            vae__gemm_pack_b(g, pc, kc, jc, nc, nr, 0, nsb, bp);
            for (ic = 0; ic < g->M; ic += mcb) {
                const int mc = g->M - ic < mcb ? g->M - ic : mcb;
                const int nsa = (mc + mr - 1) / mr;
                if (!direct) vae__gemm_pack_a(g, ic, mc, pc, kc, mr, 0, nsa, ap);
                else if (mc % mr) vae__gemm_pack_a(g, ic, mc, pc, kc, mr, nsa - 1, nsa, ap);
                /* jr outer: one B sliver stays in L1 while A streams from L2. */
                for (jr = 0; jr < nsb; jr++) {
                    const int n = nc - jr * nr < nr ? nc - jr * nr : nr;
                    const float *b = bp + (size_t)jr * kc * nr;
                    for (ir = 0; ir < nsa; ir++) {
                        const int m = mc - ir * mr < mr ? mc - ir * mr : mr;
                        const float *a;
                        ptrdiff_t rsa, csa;
                        if (!direct || m < mr) {
                            a = ap + (size_t)ir * kc * mr; rsa = 1; csa = mr;
                        } else if (!g->transa) {
                            a = g->A + (size_t)(ic + ir * mr) * g->lda + pc; rsa = g->lda; csa = 1;
                        } else {
                            a = g->A + (size_t)pc * g->lda + ic + ir * mr; rsa = 1; csa = g->lda;
                        }
                        float *c = g->C + (size_t)(ic + ir * mr) * g->ldc + jc + jr * nr;
                        if (pc == 0 && g->bias) vae__gemm_bias_rows(c, g->ldc, g->bias + jc + jr * nr, m, n);
                        ki->ukr(kc, a, rsa, csa, b, c, g->ldc, g->alpha, beta, m, n);
                    }
                }
            }
        }
    }
}

/* Slice t of nth of the problem: columns (splitn) or rows of C, cut at
 * multiples of the register tile so the tile grid matches the serial one. */
static void vae__gemm_slice(const vae__gemm_args *g, const vae__gemm_kinfo *ki, int splitn, int t, int nth,
                            vae__gemm_args *s)
{
    const int unit = splitn ? ki->nr : ki->mr, total = splitn ? g->N : g->M;
    const int tiles = (total + unit - 1) / unit;
    const int lo = (int)((long long)tiles * t / nth), hi = (int)((long long)tiles * (t + 1) / nth);
    const int x0 = lo * unit, x1 = hi * unit < total ? hi * unit : total;
    *s = *g;
    if (x1 <= x0) { s->M = 0; return; }
    if (splitn) {
        s->N = x1 - x0;
        s->B += g->transb ? (size_t)x0 * g->ldb : (size_t)x0;
        s->C += x0;
        if (s->bias) s->bias += x0;
    } else {
        s->M = x1 - x0;
        s->A += g->transa ? (size_t)x0 : (size_t)x0 * g->lda;
        s->C += (size_t)x0 * g->ldc;
    }
}

/* C = beta * C (K == 0 or alpha == 0); beta == 0 writes zeros without reading C. */
static void vae__gemm_scale(int M, int N, float beta, float *C, int ldc)
{
    int i, j;
    if (beta == 1.0f) return;
    for (i = 0; i < M; i++) {
        float *c = C + (size_t)i * ldc;
        if (beta == 0.0f) { for (j = 0; j < N; j++) c[j] = 0.0f; }
        else { for (j = 0; j < N; j++) c[j] *= beta; }
    }
}

/* Fallback without scratch: no packing, no memory.  Rows of C are
 * independent, so splitting them over threads keeps results identical. */
static void vae__gemm_noscratch(const vae__gemm_args *g, int threads)
{
    const float beta = g->bias ? 1.0f : g->beta;
    int i;
#ifdef _OPENMP
#pragma omp parallel for num_threads(threads > 1 ? threads : 1) if (threads > 1) schedule(static)
#endif
    for (i = 0; i < g->M; i++) {
        float *c = g->C + (size_t)i * g->ldc;
        const size_t sa_i = g->transa ? 1 : (size_t)g->lda, sa_k = g->transa ? (size_t)g->lda : 1;
        const float *ai = g->A + (size_t)i * sa_i;
        int j, k;
        if (g->bias) vae__gemm_bias_rows(c, g->ldc, g->bias, 1, g->N);
        if (!g->transb) {
            /* Row update: c_i = beta c_i + sum_k (alpha a_ik) b_k, unit stride in B and C. */
            if (beta == 0.0f) { for (j = 0; j < g->N; j++) c[j] = 0.0f; }
            else if (beta != 1.0f) { for (j = 0; j < g->N; j++) c[j] *= beta; }
            for (k = 0; k < g->K; k++) {
                const float s = g->alpha * ai[k * sa_k];
                const float *b = g->B + (size_t)k * g->ldb;
                for (j = 0; j < g->N; j++) c[j] += s * b[j];
            }
        } else {
            /* Dot products: B rows are contiguous in k. */
            for (j = 0; j < g->N; j++) {
                const float *b = g->B + (size_t)j * g->ldb;
                float s = 0.0f;
                for (k = 0; k < g->K; k++) s += ai[k * sa_k] * b[k];
                c[j] = beta == 0.0f ? g->alpha * s : g->alpha * s + beta * c[j];
            }
        }
    }
#ifndef _OPENMP
    (void)threads;
#endif
}

/* Below this many multiply-adds a second thread costs more than it saves. */
#define VAE__GEMM_MT_MIN_WORK (1LL << 18)

/* C = alpha op(A) op(B) + beta C; or, when bias is not NULL, C = bias + alpha op(A) op(B)
 * with bias (N values) added to every row and beta unused.  The bias is written into each
 * C tile just before its first K block accumulates onto it (a linear layer's forward). */
static void vae__gemm_bias(const vae__gemm_ctx *ctx, int transa, int transb, int M, int N, int K,
                           float alpha, const float *A, int lda, const float *B, int ldb,
                           float beta, const float *bias, float *C, int ldc)
{
    vae__gemm_args g;
    const vae__gemm_kinfo *ki;
    int kern, nth, splitn, tilesm, tilesn, kcb;
    size_t slot;
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || alpha == 0.0f) {
        if (bias) vae__gemm_bias_rows(C, ldc, bias, M, N);
        else vae__gemm_scale(M, N, beta, C, ldc);
        return;
    }
    g.transa = transa; g.transb = transb; g.M = M; g.N = N; g.K = K;
    g.alpha = alpha; g.beta = beta; g.bias = bias;
    g.A = A; g.lda = lda; g.B = B; g.ldb = ldb; g.C = C; g.ldc = ldc;
    /* An unavailable kernel would fault (SIGILL); use the best one instead. */
    kern = ctx ? ctx->kernel : -1;
    if (!vae__gemm_kernel_available(kern)) kern = vae__gemm_best_kernel();
    ki = &vae__gemm_kernels[kern];
    nth = ctx && ctx->threads > 1 ? ctx->threads : 1;
#ifndef _OPENMP
    nth = 1;
#endif
    if ((long long)M * N * K < VAE__GEMM_MT_MIN_WORK) nth = 1;
    /* Cut along N unless N has too few tiles; each slice re-packs the
     * operand the slices share (A for an N cut), so prefer cutting the
     * dimension whose shared operand is smaller when both are wide. */
    tilesm = (M + ki->mr - 1) / ki->mr;
    tilesn = (N + ki->nr - 1) / ki->nr;
    splitn = tilesn >= 2 * nth && (N >= M || tilesm < 2 * nth);
    if (nth > (splitn ? tilesn : tilesm)) nth = splitn ? tilesn : tilesm;
    kcb = vae__gemm_kcb(ki, N, K);
    slot = vae__gemm_scratch_slot(ki, M, N, K);
    if (nth > 1 && ctx->scratch_floats / slot < (size_t)nth) nth = (int)(ctx->scratch_floats / slot);
    if (!ctx || !ctx->scratch || ctx->scratch_floats < slot) {
        vae__gemm_noscratch(&g, ctx ? ctx->threads : 1);
        return;
    }
    if (nth <= 1) {
        float *bp = vae__gemm_align(ctx->scratch);
        vae__gemm_drive(ki, &g, kcb, bp, vae__gemm_align(bp + (size_t)kcb *
                                                        vae__gemm_blk(N, ki->nc, ki->nr)));
        return;
    }
    {
        int t;
#ifdef _OPENMP
#pragma omp parallel for num_threads(nth) schedule(static, 1)
#endif
        for (t = 0; t < nth; t++) {
            vae__gemm_args s;
            vae__gemm_slice(&g, ki, splitn, t, nth, &s);
            if (s.M > 0 && s.N > 0) {
                float *bp = vae__gemm_align(ctx->scratch + (size_t)t * slot);
                vae__gemm_drive(ki, &s, kcb, bp, vae__gemm_align(bp + (size_t)kcb *
                                                                 vae__gemm_blk(s.N, ki->nc, ki->nr)));
            }
        }
    }
}

static void vae__gemm(const vae__gemm_ctx *ctx, int transa, int transb, int M, int N, int K,
                      float alpha, const float *A, int lda, const float *B, int ldb,
                      float beta, float *C, int ldc)
{
    vae__gemm_bias(ctx, transa, transb, M, N, K, alpha, A, lda, B, ldb, beta, NULL, C, ldc);
}


VAEDEF void vae_gemm(int transa, int transb, int M, int N, int K, float alpha,
                     const float *A, int lda, const float *B, int ldb, float beta,
                     float *C, int ldc)
{
    vae__gemm_ctx ctx;
    const vae__gemm_kinfo *ki;
    /* Invalid arguments are a no-op: the library never asserts on input. */
    if (M < 0 || N < 0 || K < 0 || ldc < N || lda < (transa ? M : K) || ldb < (transb ? K : N))
        return;
    if (M == 0 || N == 0) return;
    if (!C || (K > 0 && alpha != 0.0f && (!A || !B))) return;
    ki = &vae__gemm_kernels[vae__gemm_best_kernel()];
    ctx.threads = 1;
    ctx.kernel = -1;
    ctx.scratch_floats = 0;
    ctx.scratch = NULL;
    if (K > 0 && alpha != 0.0f) {
        ctx.scratch_floats = vae__gemm_scratch_slot(ki, M, N, K);
        ctx.scratch = (float *)VAE_MALLOC(ctx.scratch_floats * sizeof(float));
        if (!ctx.scratch) ctx.scratch_floats = 0; /* fallback path, still correct */
    }
    vae__gemm(&ctx, transa, transb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    if (ctx.scratch) VAE_FREE(ctx.scratch);
}
/* GEMM-END */

/* ELEM-BEGIN */
/* >>elementwise: Adam/AdamW, SGD, sum of squares, fused BCE-from-logits + sigmoid,
   sigmoid / tanh / SiLU */
/*
 * Every kernel exists as a scalar twin (plain C, the reference) and as SSE2,
 * AVX2+FMA, NEON (AArch64 only) and WASM SIMD128 versions, all written once
 * as templates over a small per-ISA vocabulary, like the GEMM micro-kernels.
 * ISA detection is the GEMM's: VAE__GEMM_HAVE_* decide what is compiled, and
 * the AVX2 kernels are picked at run time through vae__gemm_kernel_available
 * (no second CPUID path).  ARMv7 NEON has no vector sqrt or divide, and the
 * brief forbids reciprocal estimates, so 32-bit ARM uses the scalar twins.
 *
 * Position independence.  A SIMD kernel runs its last partial vector through
 * a zero-padded stack buffer with the *same* vector code instead of a scalar
 * tail, and never peels for alignment.  So every output element is a pure
 * function of its inputs: any split of a range into chunks gives
 * bit-identical results (within one kernel).
 *
 * Optimizer kernels use mul + add in every ISA (no FMA), with real IEEE sqrt
 * and divide, so they match the scalar twin bit for bit as long as the
 * compiler does not contract the twin's expressions (gcc/clang in ISO modes,
 * -std=c99 / c++11, do not; the twin also keeps one operation per statement
 * for clang's default -ffp-contract=on).  With contraction they differ by at
 * most an ulp or so per step.
 *
 * exp, expm1 and log1p are our own (no libm in any path, so results do not
 * depend on the C library).  The AVX2 and NEON versions use FMA in the
 * polynomials and the scalar/SSE2/WASM ones do not; those may differ by one
 * ulp in rare cases.  Error bounds (measured by exhaustive-stride sweeps in
 * parts/elem_test.c against double libm, both with and without FMA):
 *   exp:     < 1.17 ulp (0.92 with FMA) over the whole float range, subnormal
 *            results included; exact inf / 0 / NaN at the ends
 *   log1p:   < 0.82 ulp over (-1, FLT_MAX]
 *   sigmoid: < 2.31 ulp (absolute error < 9e-8), tanh < 2.5 ulp,
 *   SiLU:    < 3 ulp where sigmoid(x) is normal (below x ~ -87 it multiplies a
 *            subnormal sigmoid, as x * sigmoid(x) does in any float code)
 * The scalar twin and SSE2/WASM round identically (bit-equal) unless the
 * compiler contracts; AVX2/NEON differ from them by at most 2-3 ulp.
 *
 */

#if defined(VAE__GEMM_HAVE_SSE2)
#define VAE__ELEM_HAVE_SSE2 1
#endif
#if defined(VAE__GEMM_HAVE_AVX2)
#define VAE__ELEM_HAVE_AVX2 1
#endif
#if defined(VAE__GEMM_HAVE_NEON) && (defined(__aarch64__) || defined(_M_ARM64))
#define VAE__ELEM_HAVE_NEON 1
#endif
#if defined(VAE__GEMM_HAVE_WASM)
#define VAE__ELEM_HAVE_WASM 1
#endif

/* Shared constants.  exp: x = n ln2 + r, |r| <= ln2/2 (a little more when
 * the rounding of x*log2e ties), with Cody-Waite ln2 = HI + LO: HI has 15
 * significant bits so n*HI is exact for |n| < 512 and x - n*HI is exact
 * (Sterbenz).  n is rounded with the 1.5*2^23 shifter, so its integer value
 * is read straight from the float's bits in every ISA. */
#define VAE__ELEM_LOG2E   1.442695022e+00f
#define VAE__ELEM_LN2_HI  0.693145751953125f      /* 0x3f317200 */
#define VAE__ELEM_LN2_LO  1.428606765e-06f
#define VAE__ELEM_SHIFT   12582912.0f             /* 1.5 * 2^23, bits 0x4b400000 */
#define VAE__ELEM_SHIFT_BITS 0x4b400000
/* Clamp: exp(89) overflows to inf through the scaling below and exp(-104)
 * rounds to 0 (it is below half the smallest subnormal), so clamping there
 * gives the right inf / 0 for any larger |x| without overflowing n. */
#define VAE__ELEM_EXP_HI  89.0f
#define VAE__ELEM_EXP_LO  -104.0f
/* Taylor coefficients 1/k!, k = 2..7.  Degree 7 on |r| <= 0.347: truncation
 * |r|^8/8! e^|r| < 7.5e-9 relative (0.13 ulp at worst), the rest of the 1 ulp
 * budget is the rounding of the last Horner steps. */
#define VAE__ELEM_E2 5.000000000e-01f
#define VAE__ELEM_E3 1.666666716e-01f
#define VAE__ELEM_E4 4.166666791e-02f
#define VAE__ELEM_E5 8.333333768e-03f
#define VAE__ELEM_E6 1.388888923e-03f
#define VAE__ELEM_E7 1.984127011e-04f
/* log1p: u = 1 + x = 2^k m, m in [sqrt(1/2), sqrt(2)), f = m - 1 (exact),
 * s = f / (2 + f), z = s^2 <= 0.0295,
 *   log(1 + f) = f - f^2/2 + s (f^2/2 + R),  R = 2z/3 + 2z^2/5 + 2z^3/7 + 2z^4/9
 * (truncation 2 z^5 / 11 < 2e-9 relative), plus the rounding error of 1 + x,
 * c = (x - (u - 1)) / u, added as a first-order correction.  (Replacing
 * this divide by a Newton reciprocal was measured: no faster, less accurate.) */
#define VAE__ELEM_SQRTH_BITS 0x3f3504f3           /* sqrt(1/2) */
#define VAE__ELEM_L3 6.666666865e-01f
#define VAE__ELEM_L5 4.000000060e-01f
#define VAE__ELEM_L7 2.857142985e-01f
#define VAE__ELEM_L9 2.222222239e-01f
/* expm1 is only needed on [-40, 0] (tanh): e^-40 - 1 rounds to -1, and
 * 2^n for n >= -58 is a normal float, so one scale suffices. */
#define VAE__ELEM_EXPM1_LO -40.0f

/* ---- scalar twins of the math functions --------------------------------- */

static float vae__elem_f32_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint32_t vae__elem_bits_from_f32(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float vae__elem_exp_scalar(float x)
{
    float t, nf, r, q;
    int32_t n, n1, n2;
    if (x != x) return x + x;
    x = x < VAE__ELEM_EXP_LO ? VAE__ELEM_EXP_LO : x;
    x = x > VAE__ELEM_EXP_HI ? VAE__ELEM_EXP_HI : x;
    t = x * VAE__ELEM_LOG2E;
    t = t + VAE__ELEM_SHIFT;
    nf = t - VAE__ELEM_SHIFT;
    q = nf * VAE__ELEM_LN2_HI;
    r = x - q;
    q = nf * VAE__ELEM_LN2_LO;
    r = r - q;
    q = VAE__ELEM_E7 * r; q = q + VAE__ELEM_E6;
    q = q * r; q = q + VAE__ELEM_E5;
    q = q * r; q = q + VAE__ELEM_E4;
    q = q * r; q = q + VAE__ELEM_E3;
    q = q * r; q = q + VAE__ELEM_E2;
    q = q * r; q = q + 1.0f;
    q = q * r; q = q + 1.0f;
    /* 2^n as two normal factors (n in [-150, 128]): p * 2^n1 is exact, the
     * second product rounds once, into the subnormals or to inf if needed.
     * Any split with both halves in [-126, 127] gives the same result. */
    n = (int32_t)nf;
    n1 = n / 2;
    n2 = n - n1;
    q = q * vae__elem_f32_from_bits((uint32_t)(n1 + 127) << 23);
    return q * vae__elem_f32_from_bits((uint32_t)(n2 + 127) << 23);
}

/* e^y - 1 for y <= 0 (NaN passes through). */
static float vae__elem_expm1n_scalar(float y)
{
    float t, nf, r, q, s, r2;
    if (y != y) return y + y;
    y = y < VAE__ELEM_EXPM1_LO ? VAE__ELEM_EXPM1_LO : y;
    t = y * VAE__ELEM_LOG2E;
    t = t + VAE__ELEM_SHIFT;
    nf = t - VAE__ELEM_SHIFT;
    q = nf * VAE__ELEM_LN2_HI;
    r = y - q;
    q = nf * VAE__ELEM_LN2_LO;
    r = r - q;
    q = VAE__ELEM_E7 * r; q = q + VAE__ELEM_E6;
    q = q * r; q = q + VAE__ELEM_E5;
    q = q * r; q = q + VAE__ELEM_E4;
    q = q * r; q = q + VAE__ELEM_E3;
    q = q * r; q = q + VAE__ELEM_E2;
    r2 = r * r;
    q = r2 * q; q = q + r;            /* e^r - 1, without the cancellation of (e^r) - 1 */
    s = vae__elem_f32_from_bits((uint32_t)((int32_t)nf + 127) << 23);
    r = s - 1.0f;                      /* exact for n >= -24; below that the result is ~ -1 anyway */
    q = s * q;                         /* exact: scaling by a power of two, no underflow */
    return q + r;
}

/* log(1 + x) for x in (-1, +FLT_MAX] (NaN passes through; +inf, -1 and
 * x < -1 are not handled: no caller produces them). */
static float vae__elem_log1p_scalar(float x)
{
    float u, m, f, c, s, z, R, hf, w, kf, t;
    uint32_t ui;
    int32_t k;
    u = 1.0f + x;
    ui = vae__elem_bits_from_f32(u) - (uint32_t)VAE__ELEM_SQRTH_BITS;
    /* arithmetic shift of a possibly negative value, written portably */
    k = (int32_t)(ui >> 23);
    if (ui & 0x80000000u) k -= 512;
    m = vae__elem_f32_from_bits((ui & 0x007fffffu) + (uint32_t)VAE__ELEM_SQRTH_BITS);
    f = m - 1.0f;
    t = u - 1.0f;
    c = x - t;
    c = c / u;
    t = f + 2.0f;
    s = f / t;
    z = s * s;
    R = VAE__ELEM_L9 * z; R = R + VAE__ELEM_L7;
    R = R * z; R = R + VAE__ELEM_L5;
    R = R * z; R = R + VAE__ELEM_L3;
    R = R * z;
    hf = 0.5f * f;
    hf = hf * f;
    kf = (float)k;
    t = kf * VAE__ELEM_LN2_LO;
    t = t + c;
    w = hf + R;
    w = s * w;
    w = w + t;
    w = hf - w;
    w = f - w;
    t = kf * VAE__ELEM_LN2_HI;
    return t + w;
}

/* ---- scalar twins of the kernels ------------------------------------------ */

static void vae__adam_update_scalar(float *p, const float *g, float *m, float *v, size_t n,
                                    float b1, float b2, float step_size, float bc2_sqrt,
                                    float eps, float l2, float decay)
{
    const float omb1 = 1.0f - b1, omb2 = 1.0f - b2;
    size_t i;
    for (i = 0; i < n; i++) {
        float d = g[i], pi = p[i], mi, vi, t, u;
        if (l2 != 0.0f) { t = l2 * pi; d = d + t; }
        if (decay != 1.0f) pi = pi * decay;
        mi = m[i] * b1; t = d * omb1; mi = mi + t;
        vi = v[i] * b2; t = d * d; t = t * omb2; vi = vi + t;
        t = sqrtf(vi);
        t = t / bc2_sqrt; t = t + eps;
        u = step_size * mi; u = u / t;
        p[i] = pi - u; m[i] = mi; v[i] = vi;
    }
}

static void vae__sgd_update_scalar(float *p, const float *g, float *buf, size_t n,
                                   float lr, float wd, float momentum)
{
    size_t i;
    for (i = 0; i < n; i++) {
        float d = g[i], t;
        if (wd != 0.0f) { t = wd * p[i]; d = d + t; }
        if (buf) { t = momentum * buf[i]; d = t + d; buf[i] = d; }
        t = lr * d;
        p[i] = p[i] - t;
    }
}

/* Reductions use 16 double accumulators, element i going to accumulator
 * i mod 16 (the SIMD kernels hold them as 16/lanes double vectors), then a
 * fixed pairwise tree.  Products of floats are exact in double, so FMA or
 * not, every kernel adds the same numbers in the same order: vae__sumsq is
 * bit-identical across scalar/SSE2/AVX2/NEON/WASM.  Error: at most
 * n/16 + 4 roundings of 2^-53 relative to the sum of |terms|, < 4e-10 for
 * n = 50M. */
#define VAE__ELEM_NACC 16
#define VAE__BCE_CHUNK 256   /* elements per two-pass chunk of the BCE kernels */

static double vae__elem_tree16(double *s)
{
    int w, j;
    for (w = VAE__ELEM_NACC / 2; w >= 1; w /= 2)
        for (j = 0; j < w; j++) s[j] += s[j + w];
    return s[0];
}

static double vae__sumsq_scalar(const float *x, size_t n)
{
    double s[VAE__ELEM_NACC];
    size_t i;
    int j;
    for (j = 0; j < VAE__ELEM_NACC; j++) s[j] = 0.0;
    for (i = 0; i < n; i++) s[i % VAE__ELEM_NACC] += (double)x[i] * (double)x[i];
    return vae__elem_tree16(s);
}

/* BCE term max(l,0) - l t + log1p(e), in double: l t is exact in double, so
 * the first two terms carry no error and the only float error is the log1p
 * (<= 1 ulp relative).  All three parts are >= 0 for t in [0,1], so the
 * per-image sum has relative error < 2e-7 (typically 1e-8). */
static double vae__bce_logits_scalar(const float *l, const float *t, float *p, float *dl, size_t n,
                                     float scale)
{
    double s[VAE__ELEM_NACC];
    size_t i;
    int j;
    for (j = 0; j < VAE__ELEM_NACC; j++) s[j] = 0.0;
    for (i = 0; i < n; i++) {
        float li = l[i], e = vae__elem_exp_scalar(0.0f - fabsf(li)), num = li >= 0.0f ? 1.0f : e;
        float den = 1.0f + e, pi = num / den, lp = vae__elem_log1p_scalar(e);
        float ml = li > 0.0f ? li : 0.0f;
        double a = (double)ml - (double)li * (double)t[i];
        p[i] = pi;
        if (dl) { float d = pi - t[i]; dl[i] = d * scale; }
        s[i % VAE__ELEM_NACC] += a + (double)lp;
    }
    return vae__elem_tree16(s);
}

static float vae__elem_sigmoid_scalar(float x)
{
    float e = vae__elem_exp_scalar(0.0f - fabsf(x)), num = x >= 0.0f ? 1.0f : e, den = 1.0f + e;
    return num / den;
}

static float vae__elem_tanh_scalar(float x)
{
    float em1 = vae__elem_expm1n_scalar(-2.0f * fabsf(x)), den = 2.0f + em1, y = (0.0f - em1) / den;
    return (vae__elem_bits_from_f32(x) & 0x80000000u) ? -y : y;   /* y >= 0: as OR-ing in x's sign */
}

static void vae__sigmoid_forward_scalar(float *y, const float *x, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) y[i] = vae__elem_sigmoid_scalar(x[i]);
}

static void vae__tanh_forward_scalar(float *y, const float *x, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) y[i] = vae__elem_tanh_scalar(x[i]);
}

static void vae__silu_forward_scalar(float *y, const float *x, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) { float xi = x[i]; y[i] = xi * vae__elem_sigmoid_scalar(xi); }
}

/* The vector helpers must be inlined: as calls, every vector crosses the ABI
 * through memory and AVX2 pays a vzeroupper per call (measured 3x slower). */
#if defined(__GNUC__) || defined(__clang__)
#define VAE__ELEM_INLINE static inline __attribute__((always_inline))
#elif defined(_MSC_VER)
#define VAE__ELEM_INLINE static __forceinline
#else
#define VAE__ELEM_INLINE static
#endif

/* ---- SIMD templates ----------------------------------------------------------
 * Vocabulary each ISA defines before instantiating (all loads/stores unaligned;
 * VAE__E_ is left off the names below):
 *   VAE__EV float vector (VAE__EW lanes), VAE__EI int32 vector,
 *   VAE__ED double vector (VAE__EW / 2 lanes)
 *   VAE__E_LD VAE__E_ST VAE__E_SET VAE__E_ADD VAE__E_SUB VAE__E_MUL VAE__E_DIV VAE__E_SQRT VAE__E_ABS
 *   VAE__E_FMA(a,b,c) = a*b + c (fused where the ISA has it)
 *   VAE__E_MAX(k,x), VAE__E_MIN(k,x): x is returned when it is NaN (SSE's operand order)
 *   VAE__E_GE VAE__E_LT -> mask, VAE__E_SEL(m,a,b) = m ? a : b, VAE__E_XSIGN(a,s) = a | sign(s)
 *   VAE__E_ASI VAE__E_ASF (bit casts), VAE__E_I2F, VAE__E_IADD VAE__E_ISUB VAE__E_IAND VAE__E_ISET VAE__E_ISHL VAE__E_ISRA
 *   VAE__E_DZERO VAE__E_DADD VAE__E_DMAC(a,b,c) = a*b + c, VAE__E_DNMAC(a,b,c) = c - a*b
 *   VAE__E_DLO(v) VAE__E_DHI(v): the low / high half of a float vector as doubles
 *   VAE__E_DST(p,d) store doubles
 */
#define VAE__ELEM_DEFINE_MATH(S, ATTR) \
VAE__ELEM_INLINE ATTR VAE__EV vae__elem_exp_##S(VAE__EV x) \
{ \
    VAE__EV t, nf, r, q; VAE__EI n, n1, n2; \
    x = VAE__E_MIN(VAE__E_SET(VAE__ELEM_EXP_HI), VAE__E_MAX(VAE__E_SET(VAE__ELEM_EXP_LO), x)); \
    t = VAE__E_FMA(x, VAE__E_SET(VAE__ELEM_LOG2E), VAE__E_SET(VAE__ELEM_SHIFT)); \
    nf = VAE__E_SUB(t, VAE__E_SET(VAE__ELEM_SHIFT)); \
    r = VAE__E_SUB(x, VAE__E_MUL(nf, VAE__E_SET(VAE__ELEM_LN2_HI))); \
    r = VAE__E_SUB(r, VAE__E_MUL(nf, VAE__E_SET(VAE__ELEM_LN2_LO))); \
    q = VAE__E_FMA(VAE__E_SET(VAE__ELEM_E7), r, VAE__E_SET(VAE__ELEM_E6)); \
    q = VAE__E_FMA(q, r, VAE__E_SET(VAE__ELEM_E5)); \
    q = VAE__E_FMA(q, r, VAE__E_SET(VAE__ELEM_E4)); \
    q = VAE__E_FMA(q, r, VAE__E_SET(VAE__ELEM_E3)); \
    q = VAE__E_FMA(q, r, VAE__E_SET(VAE__ELEM_E2)); \
    q = VAE__E_FMA(q, r, VAE__E_SET(1.0f)); \
    q = VAE__E_FMA(q, r, VAE__E_SET(1.0f)); \
    n = VAE__E_ISUB(VAE__E_ASI(t), VAE__E_ISET(VAE__ELEM_SHIFT_BITS)); \
    n1 = VAE__E_ISRA(n, 1); \
    n2 = VAE__E_ISUB(n, n1); \
    q = VAE__E_MUL(q, VAE__E_ASF(VAE__E_ISHL(VAE__E_IADD(n1, VAE__E_ISET(127)), 23))); \
    return VAE__E_MUL(q, VAE__E_ASF(VAE__E_ISHL(VAE__E_IADD(n2, VAE__E_ISET(127)), 23))); \
} \
VAE__ELEM_INLINE ATTR VAE__EV vae__elem_expm1n_##S(VAE__EV y) \
{ \
    VAE__EV t, nf, r, q, s; \
    y = VAE__E_MAX(VAE__E_SET(VAE__ELEM_EXPM1_LO), y); \
    t = VAE__E_FMA(y, VAE__E_SET(VAE__ELEM_LOG2E), VAE__E_SET(VAE__ELEM_SHIFT)); \
    nf = VAE__E_SUB(t, VAE__E_SET(VAE__ELEM_SHIFT)); \
    r = VAE__E_SUB(y, VAE__E_MUL(nf, VAE__E_SET(VAE__ELEM_LN2_HI))); \
    r = VAE__E_SUB(r, VAE__E_MUL(nf, VAE__E_SET(VAE__ELEM_LN2_LO))); \
    q = VAE__E_FMA(VAE__E_SET(VAE__ELEM_E7), r, VAE__E_SET(VAE__ELEM_E6)); \
    q = VAE__E_FMA(q, r, VAE__E_SET(VAE__ELEM_E5)); \
    q = VAE__E_FMA(q, r, VAE__E_SET(VAE__ELEM_E4)); \
    q = VAE__E_FMA(q, r, VAE__E_SET(VAE__ELEM_E3)); \
    q = VAE__E_FMA(q, r, VAE__E_SET(VAE__ELEM_E2)); \
    q = VAE__E_FMA(VAE__E_MUL(r, r), q, r); \
    s = VAE__E_ASF(VAE__E_ISHL(VAE__E_IADD(VAE__E_ISUB(VAE__E_ASI(t), VAE__E_ISET(VAE__ELEM_SHIFT_BITS)), VAE__E_ISET(127)), 23)); \
    return VAE__E_FMA(s, q, VAE__E_SUB(s, VAE__E_SET(1.0f))); \
} \
VAE__ELEM_INLINE ATTR VAE__EV vae__elem_log1p_##S(VAE__EV x) \
{ \
    VAE__EV u, m, f, c, s, z, R, hf, w, kf; VAE__EI ui; \
    u = VAE__E_ADD(VAE__E_SET(1.0f), x); \
    ui = VAE__E_ISUB(VAE__E_ASI(u), VAE__E_ISET(VAE__ELEM_SQRTH_BITS)); \
    kf = VAE__E_I2F(VAE__E_ISRA(ui, 23)); \
    m = VAE__E_ASF(VAE__E_IADD(VAE__E_IAND(ui, VAE__E_ISET(0x007fffff)), VAE__E_ISET(VAE__ELEM_SQRTH_BITS))); \
    f = VAE__E_SUB(m, VAE__E_SET(1.0f)); \
    c = VAE__E_DIV(VAE__E_SUB(x, VAE__E_SUB(u, VAE__E_SET(1.0f))), u); \
    s = VAE__E_DIV(f, VAE__E_ADD(f, VAE__E_SET(2.0f))); \
    z = VAE__E_MUL(s, s); \
    R = VAE__E_FMA(VAE__E_SET(VAE__ELEM_L9), z, VAE__E_SET(VAE__ELEM_L7)); \
    R = VAE__E_FMA(R, z, VAE__E_SET(VAE__ELEM_L5)); \
    R = VAE__E_FMA(R, z, VAE__E_SET(VAE__ELEM_L3)); \
    R = VAE__E_MUL(R, z); \
    hf = VAE__E_MUL(VAE__E_MUL(VAE__E_SET(0.5f), f), f); \
    w = VAE__E_FMA(s, VAE__E_ADD(hf, R), VAE__E_FMA(kf, VAE__E_SET(VAE__ELEM_LN2_LO), c)); \
    return VAE__E_FMA(kf, VAE__E_SET(VAE__ELEM_LN2_HI), VAE__E_SUB(f, VAE__E_SUB(hf, w))); \
} \
VAE__ELEM_INLINE ATTR VAE__EV vae__elem_sigmoid_##S(VAE__EV x) \
{ \
    VAE__EV e = vae__elem_exp_##S(VAE__E_SUB(VAE__E_SET(0.0f), VAE__E_ABS(x))); \
    return VAE__E_DIV(VAE__E_SEL(VAE__E_GE(x, VAE__E_SET(0.0f)), VAE__E_SET(1.0f), e), VAE__E_ADD(VAE__E_SET(1.0f), e)); \
} \
VAE__ELEM_INLINE ATTR VAE__EV vae__elem_tanh_##S(VAE__EV x) \
{ \
    VAE__EV em1 = vae__elem_expm1n_##S(VAE__E_MUL(VAE__E_SET(-2.0f), VAE__E_ABS(x))); \
    return VAE__E_XSIGN(VAE__E_DIV(VAE__E_SUB(VAE__E_SET(0.0f), em1), VAE__E_ADD(VAE__E_SET(2.0f), em1)), x); \
} \
VAE__ELEM_INLINE ATTR VAE__EV vae__elem_silu_##S(VAE__EV x) \
{ \
    return VAE__E_MUL(x, vae__elem_sigmoid_##S(x)); \
}

/* y = f(x) over an array (y == x allowed); the tail goes through a padded
 * buffer so element results do not depend on their position. */
#define VAE__ELEM_DEFINE_MAP(NAME, ATTR, FN) \
static ATTR void NAME(float *y, const float *x, size_t n) \
{ \
    size_t i = 0; \
    for (; i + VAE__EW <= n; i += VAE__EW) VAE__E_ST(y + i, FN(VAE__E_LD(x + i))); \
    if (i < n) { \
        float b_[VAE__EW]; \
        memset(b_, 0, sizeof b_); \
        memcpy(b_, x + i, (n - i) * sizeof(float)); \
        VAE__E_ST(b_, FN(VAE__E_LD(b_))); \
        memcpy(y + i, b_, (n - i) * sizeof(float)); \
    } \
}

#define VAE__ELEM_DEFINE_OPT(S, ATTR) \
VAE__ELEM_INLINE ATTR void vae__adam_blk_##S(float *p, const float *g, float *m, float *v, const float *k) \
{ \
    VAE__EV P = VAE__E_LD(p), D = VAE__E_LD(g), M = VAE__E_LD(m), V = VAE__E_LD(v), den; \
    if (k[6] != 0.0f) D = VAE__E_ADD(D, VAE__E_MUL(VAE__E_SET(k[6]), P)); \
    if (k[7] != 1.0f) P = VAE__E_MUL(P, VAE__E_SET(k[7])); \
    M = VAE__E_ADD(VAE__E_MUL(M, VAE__E_SET(k[0])), VAE__E_MUL(D, VAE__E_SET(k[1]))); \
    V = VAE__E_ADD(VAE__E_MUL(V, VAE__E_SET(k[2])), VAE__E_MUL(VAE__E_MUL(D, D), VAE__E_SET(k[3]))); \
    den = VAE__E_ADD(VAE__E_DIV(VAE__E_SQRT(V), VAE__E_SET(k[4])), VAE__E_SET(k[5])); \
    P = VAE__E_SUB(P, VAE__E_DIV(VAE__E_MUL(VAE__E_SET(k[8]), M), den)); \
    VAE__E_ST(p, P); VAE__E_ST(m, M); VAE__E_ST(v, V); \
} \
static ATTR void vae__adam_update_##S(float *p, const float *g, float *m, float *v, size_t n, \
                                      float b1, float b2, float step_size, float bc2_sqrt, \
                                      float eps, float l2, float decay) \
{ \
    float k_[9]; size_t i = 0; \
    k_[0] = b1; k_[1] = 1.0f - b1; k_[2] = b2; k_[3] = 1.0f - b2; k_[4] = bc2_sqrt; \
    k_[5] = eps; k_[6] = l2; k_[7] = decay; k_[8] = step_size; \
    for (; i + VAE__EW <= n; i += VAE__EW) vae__adam_blk_##S(p + i, g + i, m + i, v + i, k_); \
    if (i < n) { \
        float pb[VAE__EW], gb[VAE__EW], mb[VAE__EW], vb[VAE__EW]; size_t r = (n - i) * sizeof(float); \
        memset(pb, 0, sizeof pb); memset(gb, 0, sizeof gb); memset(mb, 0, sizeof mb); memset(vb, 0, sizeof vb); \
        memcpy(pb, p + i, r); memcpy(gb, g + i, r); memcpy(mb, m + i, r); memcpy(vb, v + i, r); \
        vae__adam_blk_##S(pb, gb, mb, vb, k_); \
        memcpy(p + i, pb, r); memcpy(m + i, mb, r); memcpy(v + i, vb, r); \
    } \
} \
VAE__ELEM_INLINE ATTR void vae__sgd_blk_##S(float *p, const float *g, float *buf, float lr, float wd, float mom) \
{ \
    VAE__EV P = VAE__E_LD(p), D = VAE__E_LD(g); \
    if (wd != 0.0f) D = VAE__E_ADD(D, VAE__E_MUL(VAE__E_SET(wd), P)); \
    if (buf) { D = VAE__E_ADD(VAE__E_MUL(VAE__E_SET(mom), VAE__E_LD(buf)), D); VAE__E_ST(buf, D); } \
    VAE__E_ST(p, VAE__E_SUB(P, VAE__E_MUL(VAE__E_SET(lr), D))); \
} \
static ATTR void vae__sgd_update_##S(float *p, const float *g, float *buf, size_t n, \
                                     float lr, float wd, float momentum) \
{ \
    size_t i = 0; \
    for (; i + VAE__EW <= n; i += VAE__EW) \
        vae__sgd_blk_##S(p + i, g + i, buf ? buf + i : NULL, lr, wd, momentum); \
    if (i < n) { \
        float pb[VAE__EW], gb[VAE__EW], bb[VAE__EW]; size_t r = (n - i) * sizeof(float); \
        memset(pb, 0, sizeof pb); memset(gb, 0, sizeof gb); memset(bb, 0, sizeof bb); \
        memcpy(pb, p + i, r); memcpy(gb, g + i, r); if (buf) memcpy(bb, buf + i, r); \
        vae__sgd_blk_##S(pb, gb, buf ? bb : NULL, lr, wd, momentum); \
        memcpy(p + i, pb, r); if (buf) memcpy(buf + i, bb, r); \
    } \
}

/* Reductions: accumulators a_[j] hold elements i with i mod 16 in lanes
 * j*DW .. j*DW+DW-1 (DW = VAE__EW/2 double lanes), matching the scalar twin. */
#define VAE__ELEM_NDACC (VAE__ELEM_NACC / (VAE__EW / 2))
#define VAE__ELEM_DEFINE_RED(S, ATTR) \
static ATTR double vae__sumsq_##S(const float *x, size_t n) \
{ \
    VAE__ED a_[VAE__ELEM_NDACC]; double s_[VAE__ELEM_NACC]; size_t i = 0; int j; \
    for (j = 0; j < VAE__ELEM_NDACC; j++) a_[j] = VAE__E_DZERO(); \
    for (; i + VAE__ELEM_NACC <= n; i += VAE__ELEM_NACC) \
        for (j = 0; j < VAE__ELEM_NACC / VAE__EW; j++) { \
            VAE__EV X = VAE__E_LD(x + i + j * VAE__EW); VAE__ED lo = VAE__E_DLO(X), hi = VAE__E_DHI(X); \
            a_[2 * j] = VAE__E_DMAC(lo, lo, a_[2 * j]); a_[2 * j + 1] = VAE__E_DMAC(hi, hi, a_[2 * j + 1]); \
        } \
    for (j = 0; j < VAE__ELEM_NDACC; j++) VAE__E_DST(s_ + j * (VAE__EW / 2), a_[j]); \
    for (; i < n; i++) s_[i % VAE__ELEM_NACC] += (double)x[i] * (double)x[i]; \
    return vae__elem_tree16(s_); \
} \
VAE__ELEM_INLINE ATTR void vae__bce_sig_##S(const float *l, const float *t, float *p, float *dl, float scale, \
                                             float *e) \
{ \
    VAE__EV L = VAE__E_LD(l), E, P; \
    E = vae__elem_exp_##S(VAE__E_SUB(VAE__E_SET(0.0f), VAE__E_ABS(L))); \
    P = VAE__E_DIV(VAE__E_SEL(VAE__E_GE(L, VAE__E_SET(0.0f)), VAE__E_SET(1.0f), E), VAE__E_ADD(VAE__E_SET(1.0f), E)); \
    VAE__E_ST(p, P); \
    VAE__E_ST(e, E); \
    if (dl) VAE__E_ST(dl, VAE__E_MUL(VAE__E_SUB(P, VAE__E_LD(t)), VAE__E_SET(scale))); \
} \
VAE__ELEM_INLINE ATTR void vae__bce_sum_##S(const float *l, const float *t, const float *e, VAE__ED *lo, VAE__ED *hi) \
{ \
    VAE__EV L = VAE__E_LD(l), T = VAE__E_LD(t), LP = vae__elem_log1p_##S(VAE__E_LD(e)); \
    VAE__EV ML = VAE__E_MAX(VAE__E_SET(0.0f), L); \
    *lo = VAE__E_DADD(*lo, VAE__E_DADD(VAE__E_DNMAC(VAE__E_DLO(L), VAE__E_DLO(T), VAE__E_DLO(ML)), VAE__E_DLO(LP))); \
    *hi = VAE__E_DADD(*hi, VAE__E_DADD(VAE__E_DNMAC(VAE__E_DHI(L), VAE__E_DHI(T), VAE__E_DHI(ML)), VAE__E_DHI(LP))); \
} \
/* c elements (a multiple of VAE__ELEM_NACC, at most VAE__BCE_CHUNK) in two passes: the \
 * sigmoid and exp, then log1p and the sums.  In one pass each element was a chain of ~120 \
 * cycles of dependent operations, too long for enough of them to be in flight at once. */ \
VAE__ELEM_INLINE ATTR void vae__bce_chunk_##S(const float *l, const float *t, float *p, float *dl, size_t c, \
                                               float scale, VAE__ED *a) \
{ \
    float e_[VAE__BCE_CHUNK]; size_t q; int j; \
    for (q = 0; q < c; q += VAE__EW) vae__bce_sig_##S(l + q, t + q, p + q, dl ? dl + q : NULL, scale, e_ + q); \
    for (j = 0; j < VAE__ELEM_NACC / VAE__EW; j++) { \
        VAE__ED lo = a[2 * j], hi = a[2 * j + 1]; \
        for (q = (size_t)j * VAE__EW; q < c; q += VAE__ELEM_NACC) vae__bce_sum_##S(l + q, t + q, e_ + q, &lo, &hi); \
        a[2 * j] = lo; a[2 * j + 1] = hi; \
    } \
} \
static ATTR double vae__bce_logits_##S(const float *l, const float *t, float *p, float *dl, size_t n, \
                                       float scale) \
{ \
    VAE__ED a_[VAE__ELEM_NDACC]; double s_[VAE__ELEM_NACC]; size_t i = 0, c; int j; \
    for (j = 0; j < VAE__ELEM_NDACC; j++) a_[j] = VAE__E_DZERO(); \
    for (; i + VAE__ELEM_NACC <= n; i += c) { \
        c = VAE__MIN(n - i, (size_t)VAE__BCE_CHUNK) / VAE__ELEM_NACC * VAE__ELEM_NACC; \
        vae__bce_chunk_##S(l + i, t + i, p + i, dl ? dl + i : NULL, c, scale, a_); \
    } \
    for (j = 0; j < VAE__ELEM_NDACC; j++) VAE__E_DST(s_ + j * (VAE__EW / 2), a_[j]); \
    if (i < n) { \
        float lb[VAE__ELEM_NACC], tb[VAE__ELEM_NACC], pb[VAE__ELEM_NACC], db[VAE__ELEM_NACC]; \
        VAE__ED b_[VAE__ELEM_NDACC]; double tm[VAE__ELEM_NACC]; size_t r = n - i, q; \
        memset(lb, 0, sizeof lb); memset(tb, 0, sizeof tb); \
        memcpy(lb, l + i, r * sizeof(float)); memcpy(tb, t + i, r * sizeof(float)); \
        for (j = 0; j < VAE__ELEM_NDACC; j++) b_[j] = VAE__E_DZERO(); \
        vae__bce_chunk_##S(lb, tb, pb, db, VAE__ELEM_NACC, scale, b_); \
        for (j = 0; j < VAE__ELEM_NDACC; j++) VAE__E_DST(tm + j * (VAE__EW / 2), b_[j]); \
        memcpy(p + i, pb, r * sizeof(float)); \
        if (dl) memcpy(dl + i, db, r * sizeof(float)); \
        for (q = 0; q < r; q++) s_[q] += tm[q]; \
    } \
    return vae__elem_tree16(s_); \
}

#define VAE__ELEM_DEFINE_ALL(S, ATTR) \
    VAE__ELEM_DEFINE_MATH(S, ATTR) \
    VAE__ELEM_DEFINE_MAP(vae__sigmoid_forward_##S, ATTR, vae__elem_sigmoid_##S) \
    VAE__ELEM_DEFINE_MAP(vae__tanh_forward_##S, ATTR, vae__elem_tanh_##S) \
    VAE__ELEM_DEFINE_MAP(vae__silu_forward_##S, ATTR, vae__elem_silu_##S) \
    VAE__ELEM_DEFINE_OPT(S, ATTR) \
    VAE__ELEM_DEFINE_RED(S, ATTR)

/* ---- SSE2 ------------------------------------------------------------------- */
#ifdef VAE__ELEM_HAVE_SSE2
#define VAE__EV __m128
#define VAE__EI __m128i
#define VAE__ED __m128d
#define VAE__EW 4
#define VAE__E_LD(p) _mm_loadu_ps(p)
#define VAE__E_ST(p, v) _mm_storeu_ps((p), (v))
#define VAE__E_SET(x) _mm_set1_ps(x)
#define VAE__E_ADD(a, b) _mm_add_ps((a), (b))
#define VAE__E_SUB(a, b) _mm_sub_ps((a), (b))
#define VAE__E_MUL(a, b) _mm_mul_ps((a), (b))
#define VAE__E_DIV(a, b) _mm_div_ps((a), (b))
#define VAE__E_SQRT(a) _mm_sqrt_ps(a)
#define VAE__E_ABS(a) _mm_andnot_ps(_mm_set1_ps(-0.0f), (a))
#define VAE__E_FMA(a, b, c) _mm_add_ps(_mm_mul_ps((a), (b)), (c))
#define VAE__E_MAX(k, x) _mm_max_ps((k), (x))
#define VAE__E_MIN(k, x) _mm_min_ps((k), (x))
#define VAE__E_GE(a, b) _mm_cmpge_ps((a), (b))
#define VAE__E_SEL(m, a, b) _mm_or_ps(_mm_and_ps((m), (a)), _mm_andnot_ps((m), (b)))
#define VAE__E_XSIGN(a, s) _mm_or_ps((a), _mm_and_ps((s), _mm_set1_ps(-0.0f)))
#define VAE__E_ASI(v) _mm_castps_si128(v)
#define VAE__E_ASF(i) _mm_castsi128_ps(i)
#define VAE__E_I2F(i) _mm_cvtepi32_ps(i)
#define VAE__E_IADD(a, b) _mm_add_epi32((a), (b))
#define VAE__E_ISUB(a, b) _mm_sub_epi32((a), (b))
#define VAE__E_IAND(a, b) _mm_and_si128((a), (b))
#define VAE__E_ISET(x) _mm_set1_epi32(x)
#define VAE__E_ISHL(a, n) _mm_slli_epi32((a), (n))
#define VAE__E_ISRA(a, n) _mm_srai_epi32((a), (n))
#define VAE__E_DZERO() _mm_setzero_pd()
#define VAE__E_DADD(a, b) _mm_add_pd((a), (b))
#define VAE__E_DMAC(a, b, c) _mm_add_pd(_mm_mul_pd((a), (b)), (c))
#define VAE__E_DNMAC(a, b, c) _mm_sub_pd((c), _mm_mul_pd((a), (b)))
#define VAE__E_DLO(v) _mm_cvtps_pd(v)
#define VAE__E_DHI(v) _mm_cvtps_pd(_mm_movehl_ps((v), (v)))
#define VAE__E_DST(p, d) _mm_storeu_pd((p), (d))
VAE__ELEM_DEFINE_ALL(sse2, )
#undef VAE__EV
#undef VAE__EI
#undef VAE__ED
#undef VAE__EW
#undef VAE__E_LD
#undef VAE__E_ST
#undef VAE__E_SET
#undef VAE__E_ADD
#undef VAE__E_SUB
#undef VAE__E_MUL
#undef VAE__E_DIV
#undef VAE__E_SQRT
#undef VAE__E_ABS
#undef VAE__E_FMA
#undef VAE__E_MAX
#undef VAE__E_MIN
#undef VAE__E_GE
#undef VAE__E_SEL
#undef VAE__E_XSIGN
#undef VAE__E_ASI
#undef VAE__E_ASF
#undef VAE__E_I2F
#undef VAE__E_IADD
#undef VAE__E_ISUB
#undef VAE__E_IAND
#undef VAE__E_ISET
#undef VAE__E_ISHL
#undef VAE__E_ISRA
#undef VAE__E_DZERO
#undef VAE__E_DADD
#undef VAE__E_DMAC
#undef VAE__E_DNMAC
#undef VAE__E_DLO
#undef VAE__E_DHI
#undef VAE__E_DST
#endif

/* ---- AVX2 + FMA ------------------------------------------------------------ */
#ifdef VAE__ELEM_HAVE_AVX2
#define VAE__EV __m256
#define VAE__EI __m256i
#define VAE__ED __m256d
#define VAE__EW 8
#define VAE__E_LD(p) _mm256_loadu_ps(p)
#define VAE__E_ST(p, v) _mm256_storeu_ps((p), (v))
#define VAE__E_SET(x) _mm256_set1_ps(x)
#define VAE__E_ADD(a, b) _mm256_add_ps((a), (b))
#define VAE__E_SUB(a, b) _mm256_sub_ps((a), (b))
#define VAE__E_MUL(a, b) _mm256_mul_ps((a), (b))
#define VAE__E_DIV(a, b) _mm256_div_ps((a), (b))
#define VAE__E_SQRT(a) _mm256_sqrt_ps(a)
#define VAE__E_ABS(a) _mm256_andnot_ps(_mm256_set1_ps(-0.0f), (a))
#define VAE__E_FMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define VAE__E_MAX(k, x) _mm256_max_ps((k), (x))
#define VAE__E_MIN(k, x) _mm256_min_ps((k), (x))
#define VAE__E_GE(a, b) _mm256_cmp_ps((a), (b), _CMP_GE_OQ)
#define VAE__E_SEL(m, a, b) _mm256_blendv_ps((b), (a), (m))
#define VAE__E_XSIGN(a, s) _mm256_or_ps((a), _mm256_and_ps((s), _mm256_set1_ps(-0.0f)))
#define VAE__E_ASI(v) _mm256_castps_si256(v)
#define VAE__E_ASF(i) _mm256_castsi256_ps(i)
#define VAE__E_I2F(i) _mm256_cvtepi32_ps(i)
#define VAE__E_IADD(a, b) _mm256_add_epi32((a), (b))
#define VAE__E_ISUB(a, b) _mm256_sub_epi32((a), (b))
#define VAE__E_IAND(a, b) _mm256_and_si256((a), (b))
#define VAE__E_ISET(x) _mm256_set1_epi32(x)
#define VAE__E_ISHL(a, n) _mm256_slli_epi32((a), (n))
#define VAE__E_ISRA(a, n) _mm256_srai_epi32((a), (n))
#define VAE__E_DZERO() _mm256_setzero_pd()
#define VAE__E_DADD(a, b) _mm256_add_pd((a), (b))
#define VAE__E_DMAC(a, b, c) _mm256_fmadd_pd((a), (b), (c))
#define VAE__E_DNMAC(a, b, c) _mm256_fnmadd_pd((a), (b), (c))
#define VAE__E_DLO(v) _mm256_cvtps_pd(_mm256_castps256_ps128(v))
#define VAE__E_DHI(v) _mm256_cvtps_pd(_mm256_extractf128_ps((v), 1))
#define VAE__E_DST(p, d) _mm256_storeu_pd((p), (d))
VAE__ELEM_DEFINE_ALL(avx2, VAE__GEMM_AVX2_ATTR)
#undef VAE__EV
#undef VAE__EI
#undef VAE__ED
#undef VAE__EW
#undef VAE__E_LD
#undef VAE__E_ST
#undef VAE__E_SET
#undef VAE__E_ADD
#undef VAE__E_SUB
#undef VAE__E_MUL
#undef VAE__E_DIV
#undef VAE__E_SQRT
#undef VAE__E_ABS
#undef VAE__E_FMA
#undef VAE__E_MAX
#undef VAE__E_MIN
#undef VAE__E_GE
#undef VAE__E_SEL
#undef VAE__E_XSIGN
#undef VAE__E_ASI
#undef VAE__E_ASF
#undef VAE__E_I2F
#undef VAE__E_IADD
#undef VAE__E_ISUB
#undef VAE__E_IAND
#undef VAE__E_ISET
#undef VAE__E_ISHL
#undef VAE__E_ISRA
#undef VAE__E_DZERO
#undef VAE__E_DADD
#undef VAE__E_DMAC
#undef VAE__E_DNMAC
#undef VAE__E_DLO
#undef VAE__E_DHI
#undef VAE__E_DST
#endif

/* ---- NEON (AArch64) ---------------------------------------------------------- */
#ifdef VAE__ELEM_HAVE_NEON
#define VAE__EV float32x4_t
#define VAE__EI int32x4_t
#define VAE__ED float64x2_t
#define VAE__EW 4
#define VAE__E_LD(p) vld1q_f32(p)
#define VAE__E_ST(p, v) vst1q_f32((p), (v))
#define VAE__E_SET(x) vdupq_n_f32(x)
#define VAE__E_ADD(a, b) vaddq_f32((a), (b))
#define VAE__E_SUB(a, b) vsubq_f32((a), (b))
#define VAE__E_MUL(a, b) vmulq_f32((a), (b))
#define VAE__E_DIV(a, b) vdivq_f32((a), (b))
#define VAE__E_SQRT(a) vsqrtq_f32(a)
#define VAE__E_ABS(a) vabsq_f32(a)
#define VAE__E_FMA(a, b, c) vfmaq_f32((c), (a), (b))
#define VAE__E_MAX(k, x) vmaxq_f32((k), (x))
#define VAE__E_MIN(k, x) vminq_f32((k), (x))
#define VAE__E_GE(a, b) vcgeq_f32((a), (b))
#define VAE__E_SEL(m, a, b) vbslq_f32((m), (a), (b))
#define VAE__E_XSIGN(a, s) vbslq_f32(vdupq_n_u32(0x80000000u), (s), (a))
#define VAE__E_ASI(v) vreinterpretq_s32_f32(v)
#define VAE__E_ASF(i) vreinterpretq_f32_s32(i)
#define VAE__E_I2F(i) vcvtq_f32_s32(i)
#define VAE__E_IADD(a, b) vaddq_s32((a), (b))
#define VAE__E_ISUB(a, b) vsubq_s32((a), (b))
#define VAE__E_IAND(a, b) vandq_s32((a), (b))
#define VAE__E_ISET(x) vdupq_n_s32(x)
#define VAE__E_ISHL(a, n) vshlq_n_s32((a), (n))
#define VAE__E_ISRA(a, n) vshrq_n_s32((a), (n))
#define VAE__E_DZERO() vdupq_n_f64(0.0)
#define VAE__E_DADD(a, b) vaddq_f64((a), (b))
#define VAE__E_DMAC(a, b, c) vfmaq_f64((c), (a), (b))
#define VAE__E_DNMAC(a, b, c) vfmsq_f64((c), (a), (b))
#define VAE__E_DLO(v) vcvt_f64_f32(vget_low_f32(v))
#define VAE__E_DHI(v) vcvt_high_f64_f32(v)
#define VAE__E_DST(p, d) vst1q_f64((p), (d))
VAE__ELEM_DEFINE_ALL(neon, )
#undef VAE__EV
#undef VAE__EI
#undef VAE__ED
#undef VAE__EW
#undef VAE__E_LD
#undef VAE__E_ST
#undef VAE__E_SET
#undef VAE__E_ADD
#undef VAE__E_SUB
#undef VAE__E_MUL
#undef VAE__E_DIV
#undef VAE__E_SQRT
#undef VAE__E_ABS
#undef VAE__E_FMA
#undef VAE__E_MAX
#undef VAE__E_MIN
#undef VAE__E_GE
#undef VAE__E_SEL
#undef VAE__E_XSIGN
#undef VAE__E_ASI
#undef VAE__E_ASF
#undef VAE__E_I2F
#undef VAE__E_IADD
#undef VAE__E_ISUB
#undef VAE__E_IAND
#undef VAE__E_ISET
#undef VAE__E_ISHL
#undef VAE__E_ISRA
#undef VAE__E_DZERO
#undef VAE__E_DADD
#undef VAE__E_DMAC
#undef VAE__E_DNMAC
#undef VAE__E_DLO
#undef VAE__E_DHI
#undef VAE__E_DST
#endif

/* ---- WASM SIMD128 (no FMA: mul + add) ---------------------------------------- */
#ifdef VAE__ELEM_HAVE_WASM
#define VAE__EV v128_t
#define VAE__EI v128_t
#define VAE__ED v128_t
#define VAE__EW 4
#define VAE__E_LD(p) wasm_v128_load(p)
#define VAE__E_ST(p, v) wasm_v128_store((p), (v))
#define VAE__E_SET(x) wasm_f32x4_splat(x)
#define VAE__E_ADD(a, b) wasm_f32x4_add((a), (b))
#define VAE__E_SUB(a, b) wasm_f32x4_sub((a), (b))
#define VAE__E_MUL(a, b) wasm_f32x4_mul((a), (b))
#define VAE__E_DIV(a, b) wasm_f32x4_div((a), (b))
#define VAE__E_SQRT(a) wasm_f32x4_sqrt(a)
#define VAE__E_ABS(a) wasm_f32x4_abs(a)
#define VAE__E_FMA(a, b, c) wasm_f32x4_add(wasm_f32x4_mul((a), (b)), (c))
#define VAE__E_MAX(k, x) wasm_f32x4_max((k), (x))
#define VAE__E_MIN(k, x) wasm_f32x4_min((k), (x))
#define VAE__E_GE(a, b) wasm_f32x4_ge((a), (b))
#define VAE__E_SEL(m, a, b) wasm_v128_bitselect((a), (b), (m))
#define VAE__E_XSIGN(a, s) wasm_v128_or((a), wasm_v128_and((s), wasm_f32x4_splat(-0.0f)))
#define VAE__E_ASI(v) (v)
#define VAE__E_ASF(i) (i)
#define VAE__E_I2F(i) wasm_f32x4_convert_i32x4(i)
#define VAE__E_IADD(a, b) wasm_i32x4_add((a), (b))
#define VAE__E_ISUB(a, b) wasm_i32x4_sub((a), (b))
#define VAE__E_IAND(a, b) wasm_v128_and((a), (b))
#define VAE__E_ISET(x) wasm_i32x4_splat(x)
#define VAE__E_ISHL(a, n) wasm_i32x4_shl((a), (n))
#define VAE__E_ISRA(a, n) wasm_i32x4_shr((a), (n))
#define VAE__E_DZERO() wasm_f64x2_splat(0.0)
#define VAE__E_DADD(a, b) wasm_f64x2_add((a), (b))
#define VAE__E_DMAC(a, b, c) wasm_f64x2_add(wasm_f64x2_mul((a), (b)), (c))
#define VAE__E_DNMAC(a, b, c) wasm_f64x2_sub((c), wasm_f64x2_mul((a), (b)))
#define VAE__E_DLO(v) wasm_f64x2_promote_low_f32x4(v)
#define VAE__E_DHI(v) wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle((v), (v), 2, 3, 0, 1))
#define VAE__E_DST(p, d) wasm_v128_store((p), (d))
VAE__ELEM_DEFINE_ALL(wasm, )
#undef VAE__EV
#undef VAE__EI
#undef VAE__ED
#undef VAE__EW
#undef VAE__E_LD
#undef VAE__E_ST
#undef VAE__E_SET
#undef VAE__E_ADD
#undef VAE__E_SUB
#undef VAE__E_MUL
#undef VAE__E_DIV
#undef VAE__E_SQRT
#undef VAE__E_ABS
#undef VAE__E_FMA
#undef VAE__E_MAX
#undef VAE__E_MIN
#undef VAE__E_GE
#undef VAE__E_SEL
#undef VAE__E_XSIGN
#undef VAE__E_ASI
#undef VAE__E_ASF
#undef VAE__E_I2F
#undef VAE__E_IADD
#undef VAE__E_ISUB
#undef VAE__E_IAND
#undef VAE__E_ISET
#undef VAE__E_ISHL
#undef VAE__E_ISRA
#undef VAE__E_DZERO
#undef VAE__E_DADD
#undef VAE__E_DMAC
#undef VAE__E_DNMAC
#undef VAE__E_DLO
#undef VAE__E_DHI
#undef VAE__E_DST
#endif

/* ---- dispatch ---------------------------------------------------------------------
 * 2 = AVX2+FMA, 1 = the 128-bit SIMD of this target, 0 = scalar.  The AVX2
 * check is the GEMM's (vae__gemm_kernel_available on the GEMM's AVX2 entry);
 * it costs a few loads, so it is done per call rather than cached. */
static int vae__elem_kernel(void)
{
#ifdef VAE__ELEM_HAVE_AVX2
    int k;
    for (k = 0; k < vae__gemm_kernel_count(); k++)
        if (vae__gemm_kernels[k].isa == VAE__GEMM_ISA_AVX2 && vae__gemm_kernel_available(k)) return 2;
#endif
#if defined(VAE__ELEM_HAVE_SSE2) || defined(VAE__ELEM_HAVE_NEON) || defined(VAE__ELEM_HAVE_WASM)
    return 1;
#else
    return 0;
#endif
}

#if defined(VAE__ELEM_HAVE_SSE2)
#define VAE__ELEM_128(name) name##_sse2
#elif defined(VAE__ELEM_HAVE_NEON)
#define VAE__ELEM_128(name) name##_neon
#elif defined(VAE__ELEM_HAVE_WASM)
#define VAE__ELEM_128(name) name##_wasm
#endif
#ifdef VAE__ELEM_HAVE_AVX2
#define VAE__ELEM_DISPATCH_AVX2(name, args) if (k_ == 2) { name##_avx2 args; return; }
#define VAE__ELEM_DISPATCH_AVX2_R(name, args) if (k_ == 2) return name##_avx2 args;
#else
#define VAE__ELEM_DISPATCH_AVX2(name, args)
#define VAE__ELEM_DISPATCH_AVX2_R(name, args)
#endif
#ifdef VAE__ELEM_128
#define VAE__ELEM_DISPATCH_128(name, args) if (k_ >= 1) { VAE__ELEM_128(name) args; return; }
#define VAE__ELEM_DISPATCH_128_R(name, args) if (k_ >= 1) return VAE__ELEM_128(name) args;
#else
#define VAE__ELEM_DISPATCH_128(name, args)
#define VAE__ELEM_DISPATCH_128_R(name, args)
#endif
#define VAE__ELEM_DISPATCH(name, args) { \
    const int k_ = vae__elem_kernel(); \
    VAE__ELEM_DISPATCH_AVX2(name, args) \
    VAE__ELEM_DISPATCH_128(name, args) \
    (void)k_; name##_scalar args; }
#define VAE__ELEM_DISPATCH_R(name, args) { \
    const int k_ = vae__elem_kernel(); \
    VAE__ELEM_DISPATCH_AVX2_R(name, args) \
    VAE__ELEM_DISPATCH_128_R(name, args) \
    (void)k_; return name##_scalar args; }

/* One Adam/AdamW step over n parameters (PyTorch 1.13 arithmetic):
 *   d = g + l2 p;  p *= decay;  m = b1 m + (1-b1) d;  v = b2 v + (1-b2) d^2;
 *   p -= step_size m / (sqrt(v) / bc2_sqrt + eps)
 * l2 = 0 (AdamW) and decay = 1 (Adam) skip their terms, as PyTorch does. */
static void vae__adam_update(float *p, const float *g, float *m, float *v, size_t n, float b1, float b2,
                             float step_size, float bc2_sqrt, float eps, float l2, float decay)
VAE__ELEM_DISPATCH(vae__adam_update, (p, g, m, v, n, b1, b2, step_size, bc2_sqrt, eps, l2, decay))

/* SGD: d = g + wd p; with buf: d = buf = momentum buf + d; p -= lr d. */
static void vae__sgd_update(float *p, const float *g, float *buf, size_t n, float lr, float wd, float momentum)
VAE__ELEM_DISPATCH(vae__sgd_update, (p, g, buf, n, lr, wd, momentum))

/* sum x^2 in double; bit-identical for every kernel (see vae__sumsq_scalar). */
static double vae__sumsq(const float *x, size_t n)
VAE__ELEM_DISPATCH_R(vae__sumsq, (x, n))

/* One image: returns sum max(l,0) - l t + log1p(exp(-|l|)), writes p = sigmoid(l) and, if dl is
 * not NULL, dl = (p - t) scale.  Stable for any finite logit (and +-inf). */
static double vae__bce_logits(const float *l, const float *t, float *p, float *dl, size_t n, float scale)
VAE__ELEM_DISPATCH_R(vae__bce_logits, (l, t, p, dl, n, scale))

/* Activations; y == x is allowed. */
static void vae__sigmoid_forward(float *y, const float *x, size_t n)
VAE__ELEM_DISPATCH(vae__sigmoid_forward, (y, x, n))

static void vae__tanh_forward(float *y, const float *x, size_t n)
VAE__ELEM_DISPATCH(vae__tanh_forward, (y, x, n))

static void vae__silu_forward(float *y, const float *x, size_t n)
VAE__ELEM_DISPATCH(vae__silu_forward, (y, x, n))
/* ELEM-END */

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

/* Marsaglia's polar method: exact rejection with only a log and an IEEE sqrt. A point (u, v)
   uniform in the unit disc gives two independent normals, u f and v f. */
static double vae__rng_polar(vae_rng *rng, double *v2)
{
    for (;;) {
        double u = (vae_rng_u32(rng) >> 8) * (2.0 / 16777216.0) - 1.0;
        double v = (vae_rng_u32(rng) >> 8) * (2.0 / 16777216.0) - 1.0;
        double s = u * u + v * v;
        if (s > 0 && s < 1) {
            double f = sqrt(-2.0 * vae__log(s) / s);
            *v2 = v * f;
            return u * f;
        }
    }
}

/* One normal: the second variate of the pair is dropped so that the state is the only thing
   to save. */
VAEDEF float vae_rng_normal(vae_rng *rng)
{
    double v;
    return (float)vae__rng_polar(rng, &v);
}

/* n normals, both variates of each pair (half the work of n vae_rng_normal calls, and a
   different stream); an odd n drops the last pair's second one. */
VAEDEF void vae_rng_normals(vae_rng *rng, float *out, size_t n)
{
    size_t i;
    for (i = 0; i < n; i += 2) {
        double v, u = vae__rng_polar(rng, &v);
        out[i] = (float)u;
        if (i + 1 < n) out[i + 1] = (float)v;
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

/* >>checksum: CRC-32 and Adler-32 (gzip, PNG and checkpoints) */


/* Reflected CRC-32, polynomial 0xEDB88320 (gzip, PNG, zlib.crc32). The table
 * was generated offline (for n in 0..255: 8 rounds of c = c&1 ? P^(c>>1) : c>>1)
 * so the library keeps no mutable global state and needs no init call. */
static const uint32_t vae__crc_table[256] = {
    0x00000000UL, 0x77073096UL, 0xee0e612cUL, 0x990951baUL, 0x076dc419UL, 0x706af48fUL,
    0xe963a535UL, 0x9e6495a3UL, 0x0edb8832UL, 0x79dcb8a4UL, 0xe0d5e91eUL, 0x97d2d988UL,
    0x09b64c2bUL, 0x7eb17cbdUL, 0xe7b82d07UL, 0x90bf1d91UL, 0x1db71064UL, 0x6ab020f2UL,
    0xf3b97148UL, 0x84be41deUL, 0x1adad47dUL, 0x6ddde4ebUL, 0xf4d4b551UL, 0x83d385c7UL,
    0x136c9856UL, 0x646ba8c0UL, 0xfd62f97aUL, 0x8a65c9ecUL, 0x14015c4fUL, 0x63066cd9UL,
    0xfa0f3d63UL, 0x8d080df5UL, 0x3b6e20c8UL, 0x4c69105eUL, 0xd56041e4UL, 0xa2677172UL,
    0x3c03e4d1UL, 0x4b04d447UL, 0xd20d85fdUL, 0xa50ab56bUL, 0x35b5a8faUL, 0x42b2986cUL,
    0xdbbbc9d6UL, 0xacbcf940UL, 0x32d86ce3UL, 0x45df5c75UL, 0xdcd60dcfUL, 0xabd13d59UL,
    0x26d930acUL, 0x51de003aUL, 0xc8d75180UL, 0xbfd06116UL, 0x21b4f4b5UL, 0x56b3c423UL,
    0xcfba9599UL, 0xb8bda50fUL, 0x2802b89eUL, 0x5f058808UL, 0xc60cd9b2UL, 0xb10be924UL,
    0x2f6f7c87UL, 0x58684c11UL, 0xc1611dabUL, 0xb6662d3dUL, 0x76dc4190UL, 0x01db7106UL,
    0x98d220bcUL, 0xefd5102aUL, 0x71b18589UL, 0x06b6b51fUL, 0x9fbfe4a5UL, 0xe8b8d433UL,
    0x7807c9a2UL, 0x0f00f934UL, 0x9609a88eUL, 0xe10e9818UL, 0x7f6a0dbbUL, 0x086d3d2dUL,
    0x91646c97UL, 0xe6635c01UL, 0x6b6b51f4UL, 0x1c6c6162UL, 0x856530d8UL, 0xf262004eUL,
    0x6c0695edUL, 0x1b01a57bUL, 0x8208f4c1UL, 0xf50fc457UL, 0x65b0d9c6UL, 0x12b7e950UL,
    0x8bbeb8eaUL, 0xfcb9887cUL, 0x62dd1ddfUL, 0x15da2d49UL, 0x8cd37cf3UL, 0xfbd44c65UL,
    0x4db26158UL, 0x3ab551ceUL, 0xa3bc0074UL, 0xd4bb30e2UL, 0x4adfa541UL, 0x3dd895d7UL,
    0xa4d1c46dUL, 0xd3d6f4fbUL, 0x4369e96aUL, 0x346ed9fcUL, 0xad678846UL, 0xda60b8d0UL,
    0x44042d73UL, 0x33031de5UL, 0xaa0a4c5fUL, 0xdd0d7cc9UL, 0x5005713cUL, 0x270241aaUL,
    0xbe0b1010UL, 0xc90c2086UL, 0x5768b525UL, 0x206f85b3UL, 0xb966d409UL, 0xce61e49fUL,
    0x5edef90eUL, 0x29d9c998UL, 0xb0d09822UL, 0xc7d7a8b4UL, 0x59b33d17UL, 0x2eb40d81UL,
    0xb7bd5c3bUL, 0xc0ba6cadUL, 0xedb88320UL, 0x9abfb3b6UL, 0x03b6e20cUL, 0x74b1d29aUL,
    0xead54739UL, 0x9dd277afUL, 0x04db2615UL, 0x73dc1683UL, 0xe3630b12UL, 0x94643b84UL,
    0x0d6d6a3eUL, 0x7a6a5aa8UL, 0xe40ecf0bUL, 0x9309ff9dUL, 0x0a00ae27UL, 0x7d079eb1UL,
    0xf00f9344UL, 0x8708a3d2UL, 0x1e01f268UL, 0x6906c2feUL, 0xf762575dUL, 0x806567cbUL,
    0x196c3671UL, 0x6e6b06e7UL, 0xfed41b76UL, 0x89d32be0UL, 0x10da7a5aUL, 0x67dd4accUL,
    0xf9b9df6fUL, 0x8ebeeff9UL, 0x17b7be43UL, 0x60b08ed5UL, 0xd6d6a3e8UL, 0xa1d1937eUL,
    0x38d8c2c4UL, 0x4fdff252UL, 0xd1bb67f1UL, 0xa6bc5767UL, 0x3fb506ddUL, 0x48b2364bUL,
    0xd80d2bdaUL, 0xaf0a1b4cUL, 0x36034af6UL, 0x41047a60UL, 0xdf60efc3UL, 0xa867df55UL,
    0x316e8eefUL, 0x4669be79UL, 0xcb61b38cUL, 0xbc66831aUL, 0x256fd2a0UL, 0x5268e236UL,
    0xcc0c7795UL, 0xbb0b4703UL, 0x220216b9UL, 0x5505262fUL, 0xc5ba3bbeUL, 0xb2bd0b28UL,
    0x2bb45a92UL, 0x5cb36a04UL, 0xc2d7ffa7UL, 0xb5d0cf31UL, 0x2cd99e8bUL, 0x5bdeae1dUL,
    0x9b64c2b0UL, 0xec63f226UL, 0x756aa39cUL, 0x026d930aUL, 0x9c0906a9UL, 0xeb0e363fUL,
    0x72076785UL, 0x05005713UL, 0x95bf4a82UL, 0xe2b87a14UL, 0x7bb12baeUL, 0x0cb61b38UL,
    0x92d28e9bUL, 0xe5d5be0dUL, 0x7cdcefb7UL, 0x0bdbdf21UL, 0x86d3d2d4UL, 0xf1d4e242UL,
    0x68ddb3f8UL, 0x1fda836eUL, 0x81be16cdUL, 0xf6b9265bUL, 0x6fb077e1UL, 0x18b74777UL,
    0x88085ae6UL, 0xff0f6a70UL, 0x66063bcaUL, 0x11010b5cUL, 0x8f659effUL, 0xf862ae69UL,
    0x616bffd3UL, 0x166ccf45UL, 0xa00ae278UL, 0xd70dd2eeUL, 0x4e048354UL, 0x3903b3c2UL,
    0xa7672661UL, 0xd06016f7UL, 0x4969474dUL, 0x3e6e77dbUL, 0xaed16a4aUL, 0xd9d65adcUL,
    0x40df0b66UL, 0x37d83bf0UL, 0xa9bcae53UL, 0xdebb9ec5UL, 0x47b2cf7fUL, 0x30b5ffe9UL,
    0xbdbdf21cUL, 0xcabac28aUL, 0x53b39330UL, 0x24b4a3a6UL, 0xbad03605UL, 0xcdd70693UL,
    0x54de5729UL, 0x23d967bfUL, 0xb3667a2eUL, 0xc4614ab8UL, 0x5d681b02UL, 0x2a6f2b94UL,
    0xb40bbe37UL, 0xc30c8ea1UL, 0x5a05df1bUL, 0x2d02ef8dUL,
};

/* crc is the running value returned by a previous call (0 to start), exactly
 * like zlib's crc32(): the pre/post inversion is done inside.
 * Long inputs (decoded data sets are tens of MB) use "slicing by 8": eight
 * derived tables let 8 bytes be folded per step instead of 1, ~4x faster. The
 * 8 KB of derived tables are rebuilt on the stack per call (a few us) rather
 * than kept in a global, so there is no mutable state and no init race. Bytes
 * are assembled explicitly, so the result does not depend on endianness. */
static uint32_t vae__crc32(uint32_t crc, const unsigned char *p, size_t n)
{
    uint32_t c = crc ^ 0xFFFFFFFFu;
    size_t i = 0;
    if (n >= 65536) {
        uint32_t t[8][256];
        int k, j;
        for (j = 0; j < 256; j++) t[0][j] = vae__crc_table[j];
        for (k = 1; k < 8; k++)
            for (j = 0; j < 256; j++)
                t[k][j] = (t[k - 1][j] >> 8) ^ vae__crc_table[t[k - 1][j] & 0xFFu];
        for (; n - i >= 8; i += 8) {
            const unsigned char *q = p + i;
            c ^= (uint32_t)q[0] | ((uint32_t)q[1] << 8) | ((uint32_t)q[2] << 16) | ((uint32_t)q[3] << 24);
            c = t[7][c & 0xFFu] ^ t[6][(c >> 8) & 0xFFu] ^ t[5][(c >> 16) & 0xFFu] ^ t[4][c >> 24] ^
                t[3][q[4]] ^ t[2][q[5]] ^ t[1][q[6]] ^ t[0][q[7]];
        }
    }
    for (; i < n; i++)
        c = vae__crc_table[(c ^ p[i]) & 0xFFu] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

/* a is the running value (1 to start), like zlib's adler32(). */
static uint32_t vae__adler32(uint32_t a, const unsigned char *p, size_t n)
{
    uint32_t s1 = a & 0xFFFFu, s2 = (a >> 16) & 0xFFFFu;
    while (n > 0) {
        /* 5552 is the largest block for which s2 cannot overflow 32 bits
         * before the modulo (255*n*(n+1)/2 + (n+1)*(65521-1) < 2^32). */
        size_t k = n < 5552 ? n : 5552, i;
        n -= k;
        for (i = 0; i < k; i++) {
            s1 += p[i];
            s2 += s1;
        }
        p += k;
        s1 %= 65521u;
        s2 %= 65521u;
    }
    return (s2 << 16) | s1;
}

/* >>arch: the architecture text */

static const char *vae__op_names[] = {
    "input", "flatten", "reshape", "linear", "mulv", "sample", "conv", "convt", "batchnorm",
    "groupnorm", "maxpool", "upsample", "skip", "add", "relu", "leakyrelu", "sigmoid", "tanh", "silu"
};
VAE__STATIC_ASSERT(op_names, VAE__COUNTOF(vae__op_names) == VAE_OP_COUNT);

#define VAE__MAX_DIM   65536          /* any one dimension            */
#define VAE__MAX_ELEMS (1 << 28)      /* elements of one activation   */
#define VAE__MAX_ARGS  8
#define VAE__MAX_SKIPS 32             /* skips open at once           */

/* What parsing learns before anything is allocated. */
typedef struct vae__plan {
    int    nlayers, sample_layer;
    int    in_c, in_h, in_w, latent, out_c;
    size_t nparams;      /* floats                                        */
    size_t act;          /* activation floats per image, over all layers  */
    size_t aux;          /* saved-for-backward floats per image, over all layers */
    size_t cols;         /* largest conv work space of one image (vae__conv_work) */
    size_t state;        /* batchnorm running statistics and saved batch statistics */
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

/* Layers whose output is their input, unchanged in memory: no activation of their own. */
static int vae__is_view(vae_op op) { return op == VAE_OP_FLATTEN || op == VAE_OP_RESHAPE || op == VAE_OP_SKIP; }

/* Parses arch, infers every shape and sums every size. With layers == NULL it only counts;
   the model calls it twice, before and after carving memory, so that parsing never allocates. */
static vae_result vae__arch_parse(const char *arch, vae_layer *layers, vae__plan *pl, char *err)
{
    static const char *const no_keys[] = { NULL };
    static const char *const bias_keys[] = { "bias", NULL };
    static const char *const sample_keys[] = { "clamp", NULL };
    static const char *const conv_keys[] = { "k", "s", "p", "bias", NULL };
    static const char *const bn_keys[] = { "eps", "momentum", NULL };
    static const char *const convt_keys[] = { "k", "s", "p", "op", "bias", NULL };
    static const char *const gn_keys[] = { "eps", "affine", NULL };
    static const char *const pool_keys[] = { "k", "s", NULL };
    static const char *const add_keys[] = { "proj", "bias", NULL };
    const char *p = arch;
    vae_layer tmp;
    vae__token t;
    int i, r, c = 0, h = 0, w = 0, ovf = 0;
    int nskip = 0, skip_at[VAE__MAX_SKIPS], skip_shape[VAE__MAX_SKIPS][3];   /* open skips, innermost last */
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
            if (vae__args_check(&t, 1, bias_keys, err) || vae__arg_int(&t, 0, NULL, LONG_MIN, 1, VAE__MAX_ELEMS, &a, err) ||
                vae__arg_int(&t, 1, "bias", 1, 0, 1, &b, err))
                return VAE_ERROR_ARCH;
            if (h != 1 || w != 1)
                return vae__fail(err, VAE_ERROR_ARCH, "arch: %s needs a flat input; add flatten before it", t.op);
            l->units = (int)a; l->has_bias = (int)b;
            l->c = op == VAE_OP_MULV ? 2 * l->units : l->units; l->h = l->w = 1;
            l->nparams = vae__add(vae__mul((size_t)l->c, in_size, &ovf), l->has_bias ? (size_t)l->c : 0, &ovf);
            break;
        case VAE_OP_CONV:
        case VAE_OP_CONVT: {
            long k, st, pd, op2 = 0;
            double oh, ow;
            if (vae__args_check(&t, 4, op == VAE_OP_CONV ? conv_keys : convt_keys, err) ||
                vae__arg_int(&t, 0, NULL, LONG_MIN, 1, VAE__MAX_DIM, &a, err) || vae__arg_int(&t, 1, "k", 3, 1, 64, &k, err) ||
                vae__arg_int(&t, 2, "s", 1, 1, 64, &st, err) || vae__arg_int(&t, 3, "p", 0, 0, 64, &pd, err) ||
                vae__arg_int(&t, 99, "bias", 1, 0, 1, &b, err) ||
                (op == VAE_OP_CONVT && vae__arg_int(&t, 99, "op", 0, 0, 63, &op2, err)))
                return VAE_ERROR_ARCH;
            if (op2 >= st) return vae__fail(err, VAE_ERROR_ARCH, "arch: convt output padding %ld must be below the stride %ld", op2, st);
            if (op == VAE_OP_CONV) { oh = floor((h + 2.0 * pd - k) / st) + 1; ow = floor((w + 2.0 * pd - k) / st) + 1; }
            else { oh = (h - 1.0) * st - 2.0 * pd + k + op2; ow = (w - 1.0) * st - 2.0 * pd + k + op2; }
            if (oh < 1 || ow < 1 || oh > VAE__MAX_DIM || ow > VAE__MAX_DIM ||
                (op == VAE_OP_CONV && (h + 2 * pd < k || w + 2 * pd < k)))
                return vae__fail(err, VAE_ERROR_ARCH, "arch: %s(k=%ld,s=%ld,p=%ld) does not fit a %dx%d input", t.op, k, st, pd, h, w);
            l->units = (int)a; l->has_bias = (int)b; l->k = (int)k; l->stride = (int)st; l->pad = (int)pd; l->opad = (int)op2;
            l->c = (int)a; l->h = (int)oh; l->w = (int)ow;
            /* weight (OC, C, k, k) for conv, (C, OC, k, k) for convt, as PyTorch stores them */
            l->nparams = vae__add(vae__mul(vae__mul((size_t)c, (size_t)a, &ovf), (size_t)(k * k), &ovf),
                                  b ? (size_t)a : 0, &ovf);
            {   /* conv work space of one image (vae__conv_work): the im2col matrix and the GEMM's
                   other operand, (C k k + OC, OH OW) for conv, (OC k k + C, H W) for convt, and
                   the phase planes of one channel (vae__phase_floats) over the column grid */
                double ch = op == VAE_OP_CONV ? oh : h, cw = op == VAE_OP_CONV ? ow : w;
                double qspan = floor((k - 1.0 - pd) / st) - floor(-(double)pd / st);
                size_t cols = op == VAE_OP_CONV ? vae__mul(vae__add((size_t)c * k * k, (size_t)a, &ovf), (size_t)(oh * ow), &ovf)
                                                : vae__mul(vae__add((size_t)a * k * k, (size_t)c, &ovf), (size_t)h * w, &ovf);
                cols = vae__add(cols, vae__mul(vae__mul((size_t)(st * st), (size_t)(ch + qspan), &ovf), (size_t)(cw + qspan), &ovf), &ovf);
                if (cols > pl->cols) pl->cols = cols;
            }
            break;
        }
        case VAE_OP_BATCHNORM:
            /* PyTorch's BatchNorm2d: batch statistics in training, running ones in eval */
            if (vae__args_check(&t, 0, bn_keys, err) || vae__arg_float(&t, 99, "eps", 1e-5, 0, 1, &l->eps, err) ||
                vae__arg_float(&t, 99, "momentum", 0.1, 0, 1, &l->momentum, err))
                return VAE_ERROR_ARCH;
            l->c = c; l->h = h; l->w = w; l->has_bias = 1;
            l->nparams = 2 * (size_t)c;
            pl->state = vae__add(pl->state, 4 * (size_t)c, &ovf);
            break;
        case VAE_OP_GROUPNORM:
            /* PyTorch's GroupNorm(groups, C): each image's channels in `groups` contiguous sets */
            if (vae__args_check(&t, 1, gn_keys, err) || vae__arg_int(&t, 0, NULL, LONG_MIN, 1, VAE__MAX_DIM, &a, err) ||
                vae__arg_float(&t, 99, "eps", 1e-5, 0, 1, &l->eps, err) || vae__arg_int(&t, 99, "affine", 1, 0, 1, &b, err))
                return VAE_ERROR_ARCH;
            if (c % a) return vae__fail(err, VAE_ERROR_ARCH, "arch: groupnorm(%ld) does not divide %d channels", a, c);
            l->c = c; l->h = h; l->w = w; l->groups = (int)a; l->has_bias = (int)b;
            l->nparams = b ? 2 * (size_t)c : 0;
            l->aux_size = 2 * (size_t)a;
            break;
        case VAE_OP_MAXPOOL:
            /* MaxPool2d(k, stride=k by default), no padding, floor: PyTorch's defaults */
            if (vae__args_check(&t, 2, pool_keys, err) || vae__arg_int(&t, 0, "k", 2, 1, 64, &a, err) ||
                vae__arg_int(&t, 1, "s", a, 1, 64, &b, err))
                return VAE_ERROR_ARCH;
            if (h < a || w < a) return vae__fail(err, VAE_ERROR_ARCH, "arch: maxpool(%ld) of a %dx%d input", a, h, w);
            l->k = (int)a; l->stride = (int)b;
            l->c = c; l->h = (int)((h - a) / b + 1); l->w = (int)((w - a) / b + 1);
            break;
        case VAE_OP_UPSAMPLE:
            /* Upsample(scale_factor=k, mode='nearest') */
            if (vae__args_check(&t, 1, no_keys, err) || vae__arg_int(&t, 0, NULL, 2, 1, 64, &a, err)) return VAE_ERROR_ARCH;
            if ((double)h * a > VAE__MAX_DIM || (double)w * a > VAE__MAX_DIM)
                return vae__fail(err, VAE_ERROR_ARCH, "arch: upsample(%ld) of a %dx%d input is too large", a, h, w);
            l->k = (int)a; l->c = c; l->h = h * (int)a; l->w = w * (int)a;
            break;
        case VAE_OP_SKIP:
            /* opens a residual branch: the matching add sums its input with this tensor */
            if (vae__args_check(&t, 0, no_keys, err)) return VAE_ERROR_ARCH;
            if (nskip == VAE__MAX_SKIPS) return vae__fail(err, VAE_ERROR_ARCH, "arch: more than %d nested skips", VAE__MAX_SKIPS);
            skip_at[nskip] = i; skip_shape[nskip][0] = c; skip_shape[nskip][1] = h; skip_shape[nskip][2] = w; nskip++;
            l->c = c; l->h = h; l->w = w;
            break;
        case VAE_OP_ADD: {
            /* closes the innermost skip: y = x + s, or x + conv1x1(s) with proj=1 */
            int sc, sh, sw;
            if (vae__args_check(&t, 0, add_keys, err) || vae__arg_int(&t, 99, "proj", 0, 0, 1, &a, err) ||
                vae__arg_int(&t, 99, "bias", 1, 0, 1, &b, err))
                return VAE_ERROR_ARCH;
            if (!nskip) return vae__fail(err, VAE_ERROR_ARCH, "arch: add (token %d) without a skip before it", i + 1);
            nskip--;
            sc = skip_shape[nskip][0]; sh = skip_shape[nskip][1]; sw = skip_shape[nskip][2];
            if (sh != h || sw != w || (!a && sc != c))
                return vae__fail(err, VAE_ERROR_ARCH, "arch: add (token %d) joins %dx%dx%d with the skip's %dx%dx%d%s", i + 1,
                                 c, h, w, sc, sh, sw, a || sh != h || sw != w ? "" : "; add(proj=1) projects channels");
            l->link = skip_at[nskip];
            if (layers) layers[l->link].link = i;
            l->c = c; l->h = h; l->w = w;
            if (a) {
                l->k = 1; l->has_bias = (int)b;
                l->nparams = vae__add(vae__mul((size_t)c, (size_t)sc, &ovf), b ? (size_t)c : 0, &ovf);
                l->aux_size = (size_t)sc * h * w;
            }
            break;
        }
        case VAE_OP_SAMPLE:
            if (vae__args_check(&t, 0, sample_keys, err) || vae__arg_float(&t, 0, "clamp", 0, 0, 1e4, &l->alpha, err))
                return VAE_ERROR_ARCH;
            if (pl->sample_layer >= 0) return vae__fail(err, VAE_ERROR_ARCH, "arch: more than one sample layer");
            if (c % 2) return vae__fail(err, VAE_ERROR_ARCH, "arch: sample needs an even channel count (mu | logvar), got %d", c);
            pl->sample_layer = i;
            l->c = c / 2; l->h = h; l->w = w;
            pl->latent = l->c * h * w;
            l->aux_size = (size_t)pl->latent;   /* eps */
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
        if (!vae__is_view(l->op)) pl->act = vae__add(pl->act, size, &ovf);
        pl->nparams = vae__add(pl->nparams, l->nparams, &ovf);
        pl->aux = vae__add(pl->aux, l->aux_size, &ovf);
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
    if (nskip) return vae__fail(err, VAE_ERROR_ARCH, "arch: skip (token %d) without an add after it", skip_at[nskip - 1] + 1);
    if ((c != pl->in_c && c != 1) || h != pl->in_h || w != pl->in_w)
        return vae__fail(err, VAE_ERROR_ARCH, "arch: the decoder gives %dx%dx%d but the input is %dx%dx%d",
                         c, h, w, pl->in_c, pl->in_h, pl->in_w);
    pl->out_c = c;
    return VAE_OK;
}

/* Appends to the text being built in buf; *len past cap marks it as too long. */
static void vae__catf(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
    va_list ap;
    int n;
    if (*len >= cap) return;
    va_start(ap, fmt);
    n = vsnprintf(buf + *len, cap - *len, fmt, ap);
    va_end(ap);
    *len = n < 0 ? cap : *len + (size_t)n;
}

/* Seed 000's ResidualBlock(in, out) as residual_blocks.<i> of <part>: two 3x3 convolutions
   with GroupNorm(32) and SiLU, a 1x1 channel_up on the skip when the channels change, and a
   GroupNorm after the sum. */
static void vae__preset_resblock(char *buf, size_t cap, size_t *len, const char *part, int i, int in, int out)
{
    vae__catf(buf, cap, len,
              "\nskip conv(%d,3,1,1,bias=0):%s.residual_blocks.%d.block.0 groupnorm(32):%s.residual_blocks.%d.block.1 silu"
              " conv(%d,3,1,1,bias=0):%s.residual_blocks.%d.block.3 groupnorm(32):%s.residual_blocks.%d.block.4 silu",
              out, part, i, part, i, out, part, i, part, i);
    if (in != out) vae__catf(buf, cap, len, " add(proj=1,bias=0):%s.residual_blocks.%d.channel_up", part, i);
    else vae__catf(buf, cap, len, " add");
    vae__catf(buf, cap, len, " groupnorm(32):%s.residual_blocks.%d.group_norm", part, i);
}

VAEDEF vae_result vae_arch_preset(char *buf, size_t cap, const char *name, int c, int h, int w, int hidden, int latent)
{
    size_t n = 0;
    int i;
    if (!buf || !cap || !name || c < 1 || h < 1 || w < 1 || hidden < 0 || latent < 0) return VAE_ERROR_INVALID_ARGUMENT;
    buf[0] = 0;
    if (strcmp(name, "mlp") == 0) {
        /* seed 003: the PyTorch example VAE, 784-400-20, attribute names as in the seed */
        if (!hidden) hidden = 400;
        if (!latent) latent = 20;
        vae__catf(buf, cap, &n,
                  "input(%d,%d,%d) flatten linear(%d):img_to_hidden relu\n"
                  "mulv(%d):hidden_to_mean,hidden_to_logvar sample\n"
                  "linear(%d):latent_to_hidden relu linear(%d):hidden_to_img reshape(%d,%d,%d) sigmoid",
                  c, h, w, hidden, latent, hidden, c * h * w, c, h, w);
    } else if (strcmp(name, "conv") == 0) {
        /* seed 002: ConvolutionalVAE, names as its encoder/decoder nn.Sequential indices */
        int f = h / 8;
        if (h % 8 || w % 8 || h != w) return VAE_ERROR_INVALID_ARGUMENT;
        if (!latent) latent = 128;
        vae__catf(buf, cap, &n,
                  "input(%d,%d,%d) conv(96,3,2,1):encoder.0 relu batchnorm:encoder.2\n"
                  "conv(192,3,2,1):encoder.3 relu batchnorm:encoder.5 conv(384,3,2,1):encoder.6 relu batchnorm:encoder.8\n"
                  "flatten linear(%d):encoder.10 sample linear(%d):decoder.0 reshape(384,%d,%d)\n"
                  "convt(192,3,2,1,op=1):decoder.2 relu batchnorm:decoder.4 convt(96,3,2,1,op=1):decoder.5 relu batchnorm:decoder.7\n"
                  "convt(%d,3,2,1,op=1):decoder.8 sigmoid",
                  c, h, w, 2 * latent, 384 * f * f, f, f, c);
    } else if (strcmp(name, "vanilla") == 0) {
        /* seed 004: VanillaVAE(in_channels, 128) as printed: five stride-2 Conv+BN+LeakyReLU
           blocks to 512x8x8, fc_mu/fc_var, a decoder from 512x2x2 through four ConvTranspose
           blocks, final_layer and final_after to 256x256, then final_conv to one channel + Tanh */
        static const int dims[] = { 32, 64, 128, 256, 512 };
        if (h != 256 || w != 256) return VAE_ERROR_INVALID_ARGUMENT;
        if (!latent) latent = 128;
        vae__catf(buf, cap, &n, "input(%d,%d,%d)", c, h, w);
        for (i = 0; i < 5; i++)
            vae__catf(buf, cap, &n, "\nconv(%d,3,2,1):encoder.%d.0 batchnorm:encoder.%d.1 leakyrelu", dims[i], i, i);
        vae__catf(buf, cap, &n, "\nflatten mulv(%d):fc_mu,fc_var sample linear(2048):decoder_input reshape(512,2,2)", latent);
        for (i = 0; i < 4; i++)
            vae__catf(buf, cap, &n, "\nconvt(%d,3,2,1,op=1):decoder.%d.0 batchnorm:decoder.%d.1 leakyrelu", dims[3 - i], i, i);
        vae__catf(buf, cap, &n,
                  "\nconvt(32,3,2,1,op=1):final_layer.0 batchnorm:final_layer.1 leakyrelu"
                  "\nconvt(32,3,2,1,op=1):final_after.0 batchnorm:final_after.1 leakyrelu"
                  " convt(32,3,2,1,op=1):final_after.3 batchnorm:final_after.4 leakyrelu"
                  "\nconv(1,3,1,1):final_conv.0 tanh");
    } else if (strcmp(name, "resnet") == 0) {
        /* seed 000: VAE(in_channels, latent_dim=4): a ResNet encoder with GroupNorm and max
           pooling to a spatial latent (mean | logvar as 2x4 channels at h/8 x w/8), log-variance
           clamped to +-10, tanh on z, and a decoder with nearest upsampling */
        static const int enc[][2] = { { 64, 128 }, { 128, 128 }, { 0, 0 }, { 128, 256 }, { 256, 256 }, { 0, 0 },
                                      { 256, 512 }, { 512, 512 }, { 0, 0 }, { 512, 512 }, { 512, 512 } };
        static const int dec[][2] = { { 512, 512 }, { 512, 512 }, { 0, 0 }, { 512, 256 }, { 256, 256 }, { 0, 0 },
                                      { 256, 128 }, { 128, 128 }, { 0, 0 }, { 128, 64 }, { 64, 64 } };
        if (h % 8 || w % 8) return VAE_ERROR_INVALID_ARGUMENT;
        if (!latent) latent = 4;
        vae__catf(buf, cap, &n, "input(%d,%d,%d) conv(64,3,1,1,bias=0):encoder.initial", c, h, w);
        for (i = 0; i < 11; i++)
            if (enc[i][0]) vae__preset_resblock(buf, cap, &n, "encoder", i, enc[i][0], enc[i][1]);
            else vae__catf(buf, cap, &n, "\nmaxpool(2)");
        vae__catf(buf, cap, &n, "\nconv(%d,3,1,1,bias=0):encoder.conv conv(%d,1,1,0,bias=0):encoder.final sample(clamp=10) tanh"
                                "\nconv(512,1,1,0,bias=0):decoder.initial", 2 * latent, 2 * latent);
        for (i = 0; i < 11; i++)
            if (dec[i][0]) vae__preset_resblock(buf, cap, &n, "decoder", i, dec[i][0], dec[i][1]);
            else vae__catf(buf, cap, &n, "\nupsample(2)");
        vae__catf(buf, cap, &n, "\nconv(%d,3,1,1,bias=0):decoder.final1 conv(%d,1,1,0,bias=0):decoder.final2", c, c);
    } else if (strcmp(name, "conv250") == 0) {
        /* seed 001: ConvVAE(latent_dim=128) for 250x250 images: four stride-2 convolutions to
           512x16x16, fc_mu/fc_logvar, decoder_input, and transposed convolutions with
           output_padding 1, 0, 0, 1 back to 250x250 (nn.Sequential index 0 is the Reshape) */
        if (h != 250 || w != 250) return VAE_ERROR_INVALID_ARGUMENT;
        if (!latent) latent = 128;
        vae__catf(buf, cap, &n,
                  "input(%d,%d,%d) conv(64,3,2,1):encoder.0 relu conv(128,3,2,1):encoder.2 relu\n"
                  "conv(256,3,2,1):encoder.4 relu conv(512,3,2,1):encoder.6 relu flatten\n"
                  "mulv(%d):fc_mu,fc_logvar sample linear(131072):decoder_input reshape(512,16,16)\n"
                  "convt(256,3,2,1,op=1):decoder.1 relu convt(128,3,2,1,op=0):decoder.3 relu\n"
                  "convt(64,3,2,1,op=0):decoder.5 relu convt(%d,3,2,1,op=1):decoder.7 sigmoid",
                  c, h, w, latent, c);
    } else {
        return VAE_ERROR_INVALID_ARGUMENT;
    }
    return n < cap ? VAE_OK : VAE_ERROR_INVALID_ARGUMENT;
}

VAEDEF vae_result vae_preset_input(const char *name, int *c, int *h, int *w)
{
    static const struct { const char *name; int c, h, w; } t[] = {
        { "mlp", 1, 28, 28 }, { "conv", 3, 32, 32 }, { "vanilla", 3, 256, 256 }, { "resnet", 3, 32, 32 }, { "conv250", 3, 250, 250 }
    };
    size_t i;
    for (i = 0; name && i < VAE__COUNTOF(t); i++)
        if (strcmp(name, t[i].name) == 0) { *c = t[i].c; *h = t[i].h; *w = t[i].w; return VAE_OK; }
    return VAE_ERROR_INVALID_ARGUMENT;
}

VAEDEF vae_result vae_config_preset(vae_config *cfg, const char *name)
{
    *cfg = vae_config_default();
    if (strcmp(name, "mlp") == 0) return VAE_OK;   /* seed 003: BCE, Adam 1e-3, batch 128 */
    if (strcmp(name, "conv250") == 0) { cfg->batch = 8; return VAE_OK; }   /* seed 001: BCE + KL, summed */
    if (strcmp(name, "resnet") == 0) {
        /* seed 000: MSE (sum) + 0.1 KL */
        cfg->loss = VAE_LOSS_MSE; cfg->beta = 0.1f; cfg->batch = 16;
        return VAE_OK;
    }
    if (strcmp(name, "vanilla") == 0) {
        /* seed 004: MSE (mean) + kld_weight x KL summed over the latent, with PyTorch-VAE's
           kld_weight 0.00025; REDUCE_MEAN divides KL by the latent size, so beta carries it */
        cfg->loss = VAE_LOSS_MSE; cfg->reduce = VAE_REDUCE_MEAN; cfg->beta = 0.00025f * 128; cfg->batch = 8;
        return VAE_OK;
    }
    if (strcmp(name, "conv") == 0) {
        /* seed 002: MSE (mean) + beta KL / (batch x latent), log-variance clamped to +-10 in
           the KL term, AdamW with weight decay 1e-5, gradient norm clipped to 1, batch 32 */
        cfg->loss = VAE_LOSS_MSE; cfg->reduce = VAE_REDUCE_MEAN; cfg->beta = 0.001f; cfg->logvar_clamp = 10.0f;
        cfg->optim = VAE_OPTIM_ADAMW; cfg->weight_decay = 1e-5f; cfg->clip = 1.0f; cfg->batch = 32;
        return VAE_OK;
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
    if (c->frozen_stats != 0 && c->frozen_stats != 1)
        return vae__fail(err, VAE_ERROR_INVALID_ARGUMENT, "config: frozen_stats must be 0 or 1, not %d", c->frozen_stats);
    if (c->threads < 1) c->threads = 1;
    if (c->threads > 256) c->threads = 256;
    return VAE_OK;
}

/* The carving of one block, as offsets in floats (the block is aligned to 64 bytes). */
typedef struct vae__layout {
    size_t layers, arch, params, grads, opt_m, opt_v, acts, dacts, aux, cols, cols_floats, state, scratch, total;
} vae__layout;

/* Conv work space: one image's at least; room for more lets the conv GEMMs take several images
   at once (>>layers, vae__conv_chunk), up to the whole batch or VAE__CONV_WORK floats (8 MB). */
#ifndef VAE__CONV_WORK
#define VAE__CONV_WORK ((size_t)1 << 21)
#endif
static size_t vae__conv_work_floats(size_t per_image, size_t batch, int *ovf)
{
    size_t all = vae__mul(per_image, batch, ovf);
    return VAE__MAX(per_image, VAE__MIN(all, VAE__CONV_WORK));
}

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
    L->cols_floats = vae__conv_work_floats(pl->cols, B, &ovf);
    VAE__CARVE(cols, L->cols_floats);
    VAE__CARVE(state, pl->state);
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
        if (l->op == VAE_OP_BATCHNORM || l->op == VAE_OP_GROUPNORM) {
            int j;
            for (j = 0; j < (l->nparams ? l->c : 0); j++) { l->weight[j] = 1.0f; l->bias[j] = 0.0f; }
        } else if (l->nparams) {
            /* fan_in as PyTorch computes it from the weight: dim 1 times the kernel area */
            int fan_in = l->op == VAE_OP_CONV ? l->in_c * l->k * l->k : l->op == VAE_OP_CONVT ? l->c * l->k * l->k
                       : l->op == VAE_OP_ADD ? m->layers[l->link].c : l->in_c * l->in_h * l->in_w;
            float bound = 1.0f / (float)sqrt((double)fan_in);
            vae__init_uniform(l->weight, l->nparams - (l->bias ? (size_t)l->c : 0), bound, &rng);
            if (l->bias) vae__init_uniform(l->bias, (size_t)l->c, bound, &rng);
        }
    }
}

VAEDEF vae_result vae_model_init_preallocated(vae_model *m, const char *arch, const vae_config *cfg,
                                              unsigned flags, void *memory, size_t size)
{
    vae__plan pl;
    vae__layout L;
    vae_result r;
    float *base, *param, *grad, *act, *dact, *aux, *state;
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
    if (m->cfg.loss == VAE_LOSS_BCE && pl.out_c != pl.in_c)
        return vae__fail(m->error, VAE_ERROR_ARCH, "arch: the BCE loss needs as many output channels as input channels");
    m->nlayers = pl.nlayers; m->sample_layer = pl.sample_layer;
    m->in_c = pl.in_c; m->in_h = pl.in_h; m->in_w = pl.in_w; m->in_size = pl.in_c * pl.in_h * pl.in_w;
    m->out_c = pl.out_c; m->out_size = pl.out_c * pl.in_h * pl.in_w;
    m->latent = pl.latent; m->nparams = pl.nparams;
    m->params = base + L.params;
    m->grads = train ? base + L.grads : NULL;
    m->opt_m = train && vae__uses_m(&m->cfg) ? base + L.opt_m : NULL;
    m->opt_v = train && vae__uses_v(&m->cfg) ? base + L.opt_v : NULL;
    m->scratch = base + L.scratch;
    m->cols = base + L.cols; m->cols_floats = L.cols_floats;
    m->state = base + L.state; m->nstate = pl.state;
    m->scratch_floats = vae__gemm_scratch_floats(m->cfg.threads);
    B = (size_t)m->cfg.batch;
    state = m->state;
    param = m->params; grad = m->grads; act = base + L.acts; dact = train ? base + L.dacts : NULL; aux = base + L.aux;
    for (i = 0; i < m->nlayers; i++) {
        vae_layer *l = &m->layers[i];
        size_t size = (size_t)l->c * l->h * l->w;
        if (vae__is_view(l->op)) {   /* no copy */
            l->y = m->layers[i - 1].y; l->dy = m->layers[i - 1].dy;
        } else {
            l->y = act; act += B * size;
            if (dact && i > 0) { l->dy = dact; dact += B * size; }
        }
        if (l->nparams) {
            size_t nw = l->nparams - (l->has_bias ? (size_t)l->c : 0);
            l->weight = param; l->bias = l->has_bias ? param + nw : NULL; param += l->nparams;
            if (grad) { l->dweight = grad; l->dbias = l->has_bias ? grad + nw : NULL; grad += l->nparams; }
        }
        if (l->aux_size) { l->aux = aux; aux += B * l->aux_size; }
        if (l->op == VAE_OP_BATCHNORM) {
            int j;
            l->state = state; state += 4 * (size_t)l->c;
            for (j = 0; j < l->c; j++) l->state[l->c + j] = 1.0f;   /* running var starts at 1 */
        }
    }
    for (i = 0; i < m->nlayers; i++) {   /* where each skip finds its add's gradient */
        vae_layer *l = &m->layers[i];
        if (l->op == VAE_OP_ADD) m->layers[l->link].aux = l->nparams ? l->aux : l->dy;
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
   The GEMM writes the bias into each tile of y just before accumulating onto it. */
static void vae__linear_forward(const vae__gemm_ctx *g, float *y, const float *x, const float *w, const float *b,
                                int n, int in, int out)
{
    vae__gemm_bias(g, 0, 1, n, out, in, 1.0f, x, in, w, in, 0.0f, b, y, out);
}

/* dw (out,in) = dy^T x,  db (out) = sum over the batch of dy,  dx (n,in) = dy w (dx may be NULL) */
static void vae__linear_backward(const vae__gemm_ctx *g, float *dx, float *dw, float *VAE__RESTRICT db,
                                 const float *dy, const float *x, const float *w, int n, int in, int out)
{
    int i, o, k;
    vae__gemm(g, 1, 0, out, in, n, 1.0f, dy, out, x, in, 0.0f, dw, in);
    if (db) {   /* each db[o] adds its column in batch order; 8 columns per step vectorise at -O2 */
        for (o = 0; o < out; o++) db[o] = 0;
        for (i = 0; i < n; i++) {
            const float *VAE__RESTRICT r = dy + (size_t)i * out;
            for (o = 0; o + 8 <= out; o += 8) for (k = 0; k < 8; k++) db[o + k] += r[o + k];
            for (; o < out; o++) db[o] += r[o];
        }
    }
    if (dx) vae__gemm(g, 0, 0, n, in, out, 1.0f, dy, out, w, in, 0.0f, dx, in);
}

/* im2col through phase planes. A conv with stride s reads input pixel (s oh + kh - p, s ow + kw - p).
   Writing kh - p = s qh + fh with 0 <= fh < s (and kw - p = s qw + fw), that is pixel
   (oh + qh, ow + qw) of phase plane (fh, fw), the plane of pixels (s i + fh, s j + fw). So each
   kernel tap's im2col row is a shifted OH x OW window of one phase plane. The s*s phase planes of
   a channel are gathered once, zero-padded to indices [qmin, OH + qmax) x [qmin, OW + qmax)
   (q over the taps), and every im2col row is then a run of plain row copies: no bounds test, no
   stride. col2im, the adjoint, adds rows into zeroed phase planes and scatters them back. */
static int vae__floordiv(int a, int b) { return a >= 0 ? a / b : -((b - 1 - a) / b); }

typedef struct vae__phases { int s, qmin, rh, rw; } vae__phases;

static vae__phases vae__phases_of(int k, int s, int p, int OH, int OW)
{
    vae__phases g;
    int qmax = vae__floordiv(k - 1 - p, s);
    g.s = s; g.qmin = vae__floordiv(-p, s);
    g.rh = OH + qmax - g.qmin; g.rw = OW + qmax - g.qmin;
    return g;
}

/* Floats of the phase planes of one channel (a per-image part of the conv work space). */
static size_t vae__phase_floats(int k, int s, int p, int OH, int OW)
{
    vae__phases g = vae__phases_of(k, s, p, OH, OW);
    return (size_t)s * s * g.rh * g.rw;
}

/* The row range [*lo, *hi) of phase indices j in [qmin, qmin + n) whose pixel s j + f lies in [0, W). */
static void vae__phase_span(const vae__phases *g, int f, int W, int n, int *lo, int *hi)
{
    int a = VAE__MAX(g->qmin, 0), b = VAE__MIN(g->qmin + n, (W - f + g->s - 1) / g->s);
    *lo = a; *hi = VAE__MAX(a, b);
}

/* Stride 2: input row r splits into its even and odd pixels, e[j] = r[2j], o[j] = r[2j+1] for
   j < n, and back (adding). 4-wide blocks: gcc vectorises them at -O2 into loads + shuffles. */
static void vae__deinterleave2(float *VAE__RESTRICT e, float *VAE__RESTRICT o, const float *VAE__RESTRICT r, int n)
{
    int j, t;
    for (j = 0; j + 4 <= n; j += 4) for (t = 0; t < 4; t++) { e[j + t] = r[2 * (j + t)]; o[j + t] = r[2 * (j + t) + 1]; }
    for (; j < n; j++) { e[j] = r[2 * j]; o[j] = r[2 * j + 1]; }
}
static void vae__interleave2_add(float *VAE__RESTRICT r, const float *VAE__RESTRICT e, const float *VAE__RESTRICT o, int n)
{
    int j, t;
    for (j = 0; j + 4 <= n; j += 4) for (t = 0; t < 4; t++) { r[2 * (j + t)] += e[j + t]; r[2 * (j + t) + 1] += o[j + t]; }
    for (; j < n; j++) { r[2 * j] += e[j]; r[2 * j + 1] += o[j]; }
}

/* Gathers the phase planes of plane x (H, W) into ph. */
static void vae__phase_fill(float *VAE__RESTRICT ph, const float *VAE__RESTRICT x, int H, int W, const vae__phases *g)
{
    int f, e, i, j, s = g->s;
    if (s == 2) {
        /* each input row fills one row of two phase planes: j in [0, n1) from pixel pairs,
           the last even pixel of an odd width, zeros for j < 0 and past the image */
        const size_t plane = (size_t)g->rh * g->rw;
        const int q = g->qmin, n0 = VAE__MIN((W + 1) / 2, q + g->rw), n1 = VAE__MIN(W / 2, n0);
        for (f = 0; f < 2; f++)
            for (i = 0; i < g->rh; i++) {
                float *o0 = ph + (size_t)(2 * f) * plane + (size_t)i * g->rw, *o1 = o0 + plane;
                const int ih = 2 * (i + q) + f;
                const float *r;
                if (ih < 0 || ih >= H || n0 <= 0) { memset(o0, 0, sizeof(float) * g->rw); memset(o1, 0, sizeof(float) * g->rw); continue; }
                r = x + (size_t)ih * W;
                for (j = q; j < 0; j++) o0[j - q] = o1[j - q] = 0.0f;
                vae__deinterleave2(o0 - q, o1 - q, r, n1);
                if (n0 > n1) { o0[n1 - q] = r[2 * n1]; o1[n1 - q] = 0.0f; }
                for (j = n0; j < q + g->rw; j++) o0[j - q] = o1[j - q] = 0.0f;
            }
        return;
    }
    for (f = 0; f < s; f++)
        for (e = 0; e < s; e++) {
            float *pl = ph + (size_t)(f * s + e) * g->rh * g->rw;
            int lo, hi;
            vae__phase_span(g, e, W, g->rw, &lo, &hi);
            for (i = 0; i < g->rh; i++) {
                float *o = pl + (size_t)i * g->rw;   /* o[j - qmin] is index j */
                const int ih = s * (i + g->qmin) + f, q = g->qmin;
                const float *r;
                if (ih < 0 || ih >= H) { memset(o, 0, sizeof(float) * g->rw); continue; }
                r = x + (size_t)ih * W;
                for (j = q; j < lo; j++) o[j - q] = 0.0f;
                if (s == 1) { if (hi > lo) memcpy(o + (lo - q), r + lo, sizeof(float) * (size_t)(hi - lo)); }
                else if (s == 2) for (j = lo; j < hi; j++) o[j - q] = r[2 * j + e];
                else for (j = lo; j < hi; j++) o[j - q] = r[j * s + e];
                for (j = hi; j < q + g->rw; j++) o[j - q] = 0.0f;
            }
        }
}

/* Adds the phase planes back into plane x: the adjoint of vae__phase_fill. */
static void vae__phase_scatter(float *VAE__RESTRICT x, const float *VAE__RESTRICT ph, int H, int W, const vae__phases *g)
{
    int f, e, i, j, s = g->s;
    if (s == 2) {
        const size_t plane = (size_t)g->rh * g->rw;
        const int q = g->qmin, n0 = VAE__MIN((W + 1) / 2, q + g->rw), n1 = VAE__MIN(W / 2, n0);
        for (f = 0; f < 2; f++)
            for (i = 0; i < g->rh; i++) {
                const float *o0 = ph + (size_t)(2 * f) * plane + (size_t)i * g->rw, *o1 = o0 + plane;
                const int ih = 2 * (i + q) + f;
                float *r;
                if (ih < 0 || ih >= H || n0 <= 0) continue;
                r = x + (size_t)ih * W;
                vae__interleave2_add(r, o0 - q, o1 - q, n1);
                if (n0 > n1) r[2 * n1] += o0[n1 - q];
            }
        return;
    }
    for (f = 0; f < s; f++)
        for (e = 0; e < s; e++) {
            const float *pl = ph + (size_t)(f * s + e) * g->rh * g->rw;
            int lo, hi;
            vae__phase_span(g, e, W, g->rw, &lo, &hi);
            for (i = 0; i < g->rh; i++) {
                const float *o = pl + (size_t)i * g->rw;
                const int ih = s * (i + g->qmin) + f, q = g->qmin;
                float *r;
                if (ih < 0 || ih >= H) continue;
                r = x + (size_t)ih * W;
                if (s == 1) for (j = lo; j < hi; j++) r[j] += o[j - q];
                else if (s == 2) for (j = lo; j < hi; j++) r[2 * j + e] += o[j - q];
                else for (j = lo; j < hi; j++) r[j * s + e] += o[j - q];
            }
        }
}

/* d (rows, n) = s (rows, n, row stride ls), and d += s: the copies of a tap's window. Common
   widths get constant-size copies (plain vector moves); 4-wide blocks vectorise the adds. */
static void vae__rows_copy(float *VAE__RESTRICT d, const float *VAE__RESTRICT s, size_t ls, int rows, int n)
{
    int r;
    if (n == 4) for (r = 0; r < rows; r++) memcpy(d + (size_t)r * 4, s + (size_t)r * ls, 4 * sizeof(float));
    else if (n == 8) for (r = 0; r < rows; r++) memcpy(d + (size_t)r * 8, s + (size_t)r * ls, 8 * sizeof(float));
    else if (n == 16) for (r = 0; r < rows; r++) memcpy(d + (size_t)r * 16, s + (size_t)r * ls, 16 * sizeof(float));
    else for (r = 0; r < rows; r++) memcpy(d + (size_t)r * n, s + (size_t)r * ls, (size_t)n * sizeof(float));
}
static void vae__rows_add(float *VAE__RESTRICT d, size_t ld, const float *VAE__RESTRICT s, int rows, int n)
{
    int r, j, t;
    if (n == 4) {
        for (r = 0; r < rows; r++) for (t = 0; t < 4; t++) d[(size_t)r * ld + t] += s[(size_t)r * 4 + t];
        return;
    }
    if (n == 8) {
        for (r = 0; r < rows; r++) for (t = 0; t < 8; t++) d[(size_t)r * ld + t] += s[(size_t)r * 8 + t];
        return;
    }
    for (r = 0; r < rows; r++) {
        float *dr = d + (size_t)r * ld;
        const float *sr = s + (size_t)r * n;
        for (j = 0; j + 4 <= n; j += 4) for (t = 0; t < 4; t++) dr[j + t] += sr[j + t];
        for (; j < n; j++) dr[j] += sr[j];
    }
}

/* im2col of images [j0, j1) of a chunk into one matrix whose rows are ld floats apart: image
   j is im + j*in (C,H,W), its columns are [j*P, (j+1)*P) (P = OH*OW), its phase planes
   ph + j*T (T = vae__phase_floats). Row (c, kh, kw) holds, for every output position, the
   input pixel that kernel tap sees (zero where the window leaves the padded image); with
   ld = q*P, q images side by side make one wide GEMM. Each row is written across all the
   images before the next (long runs, not one cache line per row and image). col2im is its
   adjoint: it adds the columns back into the images (which the caller zeroes or fills with
   the bias); each pixel's contributions are summed in tap order, starting from zero, then
   added to the image. */
static void vae__im2col(float *cols, size_t ld, size_t P, const float *im, size_t in, int j0, int j1,
                        int C, int H, int W, int k, int s, int p, int OH, int OW, float *ph, size_t T)
{
    const vae__phases g = vae__phases_of(k, s, p, OH, OW);
    const size_t plane = (size_t)g.rh * g.rw;
    const int f0 = -p - s * g.qmin;   /* tap 0 is phase f0, shift qmin; each next tap steps the phase */
    int c, kh, kw, qh, fh, qw, fw, j;
    for (c = 0; c < C; c++) {
        float *row = cols + (size_t)c * k * k * ld;
        for (j = j0; j < j1; j++) vae__phase_fill(ph + (size_t)j * T, im + (size_t)j * in + (size_t)c * H * W, H, W, &g);
        for (kh = 0, qh = 0, fh = f0; kh < k; kh++) {
            for (kw = 0, qw = 0, fw = f0; kw < k; kw++, row += ld) {
                const size_t off = (size_t)(fh * s + fw) * plane + (size_t)qh * g.rw + qw;
                for (j = j0; j < j1; j++) vae__rows_copy(row + (size_t)j * P, ph + (size_t)j * T + off, (size_t)g.rw, OH, OW);
                if (++fw == s) { fw = 0; qw++; }
            }
            if (++fh == s) { fh = 0; qh++; }
        }
    }
}

static void vae__col2im(float *im, size_t in, const float *cols, size_t ld, size_t P, int j0, int j1,
                        int C, int H, int W, int k, int s, int p, int OH, int OW, float *ph, size_t T)
{
    const vae__phases g = vae__phases_of(k, s, p, OH, OW);
    const size_t plane = (size_t)g.rh * g.rw;
    const int f0 = -p - s * g.qmin;
    int c, kh, kw, qh, fh, qw, fw, j;
    for (c = 0; c < C; c++) {
        const float *row = cols + (size_t)c * k * k * ld;
        for (j = j0; j < j1; j++) memset(ph + (size_t)j * T, 0, sizeof(float) * s * s * plane);
        for (kh = 0, qh = 0, fh = f0; kh < k; kh++) {
            for (kw = 0, qw = 0, fw = f0; kw < k; kw++, row += ld) {
                const size_t off = (size_t)(fh * s + fw) * plane + (size_t)qh * g.rw + qw;
                for (j = j0; j < j1; j++) vae__rows_add(ph + (size_t)j * T + off, (size_t)g.rw, row + (size_t)j * P, OH, OW);
                if (++fw == s) { fw = 0; qw++; }
            }
            if (++fh == s) { fh = 0; qh++; }
        }
        for (j = j0; j < j1; j++) vae__phase_scatter(im + (size_t)j * in + (size_t)c * H * W, ph + (size_t)j * T, H, W, &g);
    }
}

/* A 1x1 convolution with stride 1 and no padding needs no im2col: the image is the matrix. */
static int vae__conv_is_1x1(const vae_layer *l) { return l->k == 1 && l->stride == 1 && l->pad == 0; }

/* Fixed-order float sums (bias gradients, batchnorm): 8 running lanes per row (the loop shape
   gcc and clang vectorise at -O2 with the baseline ISA), folded in a fixed tree. Every sum is
   one thread's, so results never depend on the thread count. */
static float vae__lanes8(const float *a) { return ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7])); }

/* sum of x */
static float vae__row_sum(const float *x, size_t n)
{
    float a[8] = { 0, 0, 0, 0, 0, 0, 0, 0 };
    size_t j;
    int k;
    for (j = 0; j + 8 <= n; j += 8) for (k = 0; k < 8; k++) a[k] += x[j + k];
    for (k = 0; j < n; j++, k++) a[k] += x[j];
    return vae__lanes8(a);
}

/* Below this many values a layer-wide loop stays on one thread. */
#define VAE__PAR_MIN ((size_t)1 << 15)

/* Passes over n floats (an activation, the parameter block) cut them into VAE__SLICES fixed
   slices at multiples of 16 floats and hand the slices to the threads as they come free, so a
   busy core takes fewer. Elementwise work, and per-slice sums added in slice order, come out
   the same for any thread count. Below VAE__PAR_MIN floats a pass stays on one thread. */
#define VAE__SLICES 64

static void vae__slice(size_t n, int s, size_t *lo, size_t *hi)
{
    unsigned long long blocks = ((unsigned long long)n + 15) / 16;
    *lo = (size_t)VAE__MIN((unsigned long long)n, blocks * s / VAE__SLICES * 16);
    *hi = (size_t)VAE__MIN((unsigned long long)n, blocks * (s + 1) / VAE__SLICES * 16);
}

/* Runs body once per slice [lo, hi) of n, slice number s_. */
#define VAE__PAR_SLICES(n, threads, body) { \
    const size_t n_ = (n); \
    int s_, nth_ = n_ >= VAE__PAR_MIN && (threads) > 1 ? (threads) : 1; \
    (void)nth_; \
    VAE__PAR_SLICES_FOR \
    for (s_ = 0; s_ < VAE__SLICES; s_++) { \
        size_t lo, hi; \
        vae__slice(n_, s_, &lo, &hi); \
        body; \
    } }
#ifdef _OPENMP
#define VAE__PAR_SLICES_FOR _Pragma("omp parallel for num_threads(nth_) if (nth_ > 1) schedule(dynamic)")
#else
#define VAE__PAR_SLICES_FOR
#endif

static void vae__bias_rows(float *y, const float *b, int rows, size_t len)
{
    int r;
    size_t j;
    for (r = 0; r < rows; r++) for (j = 0; j < len; j++) y[(size_t)r * len + j] = b ? b[r] : 0.0f;
}

/* db[r] += sum of row r of dy (rows, len): the bias gradient of one image's channels. */
static void vae__bias_grad_rows(float *db, const float *dy, int rows, size_t len)
{
    int r;
    for (r = 0; r < rows; r++) db[r] += vae__row_sum(dy + (size_t)r * len, len);
}

/* The same over q images (q, rows, len), image by image. */
static void vae__bias_grad_images(float *db, const float *dy, int q, int rows, size_t len)
{
    int j;
    for (j = 0; j < q; j++) vae__bias_grad_rows(db, dy + (size_t)j * rows * len, rows, len);
}

/* Conv and convt layers run the GEMMs on q images at once, side by side: the products are
   q times wider, so packed weights are reused across images and dw sums over q*positions in
   one product instead of q thin ones. The work space holds, per image, the im2col matrix and
   the GEMM's other operand in the wide layout (the output (OC, OH*OW) for conv, the input
   (C, H*W) for convt), and its phase planes. The planner (>>arch) sizes the same expression
   with overflow checks. */
static size_t vae__conv_phase(const vae_layer *l)
{
    return l->op == VAE_OP_CONV ? vae__phase_floats(l->k, l->stride, l->pad, l->h, l->w)
                                : vae__phase_floats(l->k, l->stride, l->pad, l->in_h, l->in_w);
}
static size_t vae__conv_work(const vae_layer *l)
{
    size_t kk = (size_t)l->k * l->k;
    return (l->op == VAE_OP_CONV ? ((size_t)l->in_c * kk + (size_t)l->c) * ((size_t)l->h * l->w)
                                 : ((size_t)l->c * kk + (size_t)l->in_c) * ((size_t)l->in_h * l->in_w)) + vae__conv_phase(l);
}

/* Images per GEMM: as many as the work space holds (at most n), spread evenly over the
   chunks. It depends on the model's plan and n only, never on the thread count, so the
   grouping of dw's sum (and with it every bit of the result) does not either. */
static int vae__conv_chunk(const vae_layer *l, size_t work_floats, int n)
{
    size_t per = vae__conv_work(l), cols = l->op == VAE_OP_CONV ? (size_t)l->h * l->w : (size_t)l->in_h * l->in_w;
    size_t most = per ? work_floats / per : (size_t)n;
    int chunks;
    if (cols && most > (size_t)INT_MAX / cols) most = (size_t)INT_MAX / cols;   /* GEMM sizes are int */
    if (most < 1) most = 1;
    if (most >= (size_t)n) return n;
    chunks = (int)(((size_t)n + most - 1) / most);
    return (n + chunks - 1) / chunks;
}

/* Image j of q between the batch layout (rows, len) and the wide layout (rows, q*len): the
   image's rows are columns [j*len, (j+1)*len) of the wide matrix. from_wide adds b[r] to row
   r when b is not NULL. */
static void vae__to_wide(float *w, const float *im, int j, int q, int rows, size_t len)
{
    int r;
    for (r = 0; r < rows; r++) memcpy(w + ((size_t)r * q + j) * len, im + (size_t)r * len, sizeof(float) * len);
}
static void vae__from_wide(float *im, const float *w, const float *b, int j, int q, int rows, size_t len)
{
    int r;
    size_t t;
    for (r = 0; r < rows; r++) {
        const float *s = w + ((size_t)r * q + j) * len;
        float *d = im + (size_t)r * len;
        if (b) { const float br = b[r]; for (t = 0; t < len; t++) d[t] = s[t] + br; }
        else memcpy(d, s, sizeof(float) * len);
    }
}

/* This thread's contiguous share [*j0, *j1) of m images inside a parallel region (all of them
   outside one, or without OpenMP). */
static void vae__share(int m, int *j0, int *j1)
{
    int t = 0, nt = 1;
#ifdef _OPENMP
    t = omp_get_thread_num(); nt = omp_get_num_threads();
#endif
    *j0 = (int)((long long)m * t / nt); *j1 = (int)((long long)m * (t + 1) / nt);
}

/* The per-image loops of a chunk (im2col, col2im, layout changes) split the images over
   threads, each thread a contiguous share, when a chunk moves at least this many floats:
   below it a fork/join costs more than it saves, and on a busy machine each one can cost a
   scheduler time slice. Each image is one thread's, so results do not depend on threads. */
#define VAE__PAR_IMAGES ((size_t)1 << 18)

/* Conv2d: y (n, OC, OH, OW), x (n, C, H, W), w (OC, C, k, k), b (OC).
   Per chunk of q images: cols = [im2col(x_i) ...] (C k k, q OH OW), out = w cols, y_i = out_i + b.
   A 1x1 conv multiplies each image in place instead, with no copy. */
static void vae__conv_forward(const vae__gemm_ctx *g, const vae_layer *l, float *y, const float *x, int n,
                              float *work, size_t work_floats)
{
    int C = l->in_c, OC = l->c, K = C * l->k * l->k, q = vae__conv_chunk(l, work_floats, n), i;
    int nth = g->threads > 1 ? g->threads : 1;
    size_t in = (size_t)C * l->in_h * l->in_w, P = (size_t)l->h * l->w, T = vae__conv_phase(l);
    (void)nth;   /* unused without OpenMP */
    if (vae__conv_is_1x1(l)) {
        for (i = 0; i < n; i++) {
            float *yi = y + (size_t)i * OC * P;
            vae__bias_rows(yi, l->bias, OC, P);
            vae__gemm(g, 0, 0, OC, (int)P, K, 1.0f, l->weight, K, x + i * in, (int)P, 1.0f, yi, (int)P);
        }
        return;
    }
    for (i = 0; i < n; i += q) {
        int m = VAE__MIN(q, n - i);
        size_t N = (size_t)m * P;
        float *cols = work, *out = work + (size_t)K * N, *ph = out + (size_t)OC * N;
#ifdef _OPENMP
#pragma omp parallel num_threads(nth) if (nth > 1 && N * K >= VAE__PAR_IMAGES)
#endif
        {
            int j0, j1;
            vae__share(m, &j0, &j1);
            vae__im2col(cols, N, P, x + (size_t)i * in, in, j0, j1, C, l->in_h, l->in_w, l->k, l->stride, l->pad, l->h, l->w, ph, T);
        }
        vae__gemm(g, 0, 0, OC, (int)N, K, 1.0f, l->weight, K, cols, (int)N, 0.0f, out, (int)N);
#ifdef _OPENMP
#pragma omp parallel num_threads(nth) if (nth > 1 && N * OC >= VAE__PAR_IMAGES)
#endif
        {
            int j0, j1, j;
            vae__share(m, &j0, &j1);
            for (j = j0; j < j1; j++) vae__from_wide(y + (size_t)(i + j) * OC * P, out, l->bias, j, m, OC, P);
        }
    }
}

/* dw = sum over chunks of dy_wide cols^T,  db = sum of dy over images and positions,
   dx_i = col2im((w^T dy_wide)_i). The chunks follow each other in order and each sum's
   grouping depends on the shapes only, so threads never change dw. */
static void vae__conv_backward(const vae__gemm_ctx *g, const vae_layer *l, float *dx, const float *dy, const float *x,
                               int n, float *work, size_t work_floats)
{
    int C = l->in_c, OC = l->c, K = C * l->k * l->k, q = vae__conv_chunk(l, work_floats, n), i;
    int nth = g->threads > 1 ? g->threads : 1;
    size_t in = (size_t)C * l->in_h * l->in_w, P = (size_t)l->h * l->w, T = vae__conv_phase(l);
    (void)nth;   /* unused without OpenMP */
    if (l->dbias) memset(l->dbias, 0, sizeof(float) * OC);
    if (vae__conv_is_1x1(l)) {
        for (i = 0; i < n; i++) {
            const float *dyi = dy + (size_t)i * OC * P;
            vae__gemm(g, 0, 1, OC, K, (int)P, 1.0f, dyi, (int)P, x + i * in, (int)P, i ? 1.0f : 0.0f, l->dweight, K);
            if (l->dbias) vae__bias_grad_rows(l->dbias, dyi, OC, P);
            if (dx) vae__gemm(g, 1, 0, K, (int)P, OC, 1.0f, l->weight, K, dyi, (int)P, 0.0f, dx + i * in, (int)P);
        }
        return;
    }
    for (i = 0; i < n; i += q) {
        int m = VAE__MIN(q, n - i);
        size_t N = (size_t)m * P;
        float *cols = work, *dyw = work + (size_t)K * N, *ph = dyw + (size_t)OC * N;
#ifdef _OPENMP
#pragma omp parallel num_threads(nth) if (nth > 1 && N * K >= VAE__PAR_IMAGES)
#endif
        {
            int j0, j1, j;
            vae__share(m, &j0, &j1);
            vae__im2col(cols, N, P, x + (size_t)i * in, in, j0, j1, C, l->in_h, l->in_w, l->k, l->stride, l->pad, l->h, l->w, ph, T);
            for (j = j0; j < j1; j++) vae__to_wide(dyw, dy + (size_t)(i + j) * OC * P, j, m, OC, P);
        }
        vae__gemm(g, 0, 1, OC, K, (int)N, 1.0f, dyw, (int)N, cols, (int)N, i ? 1.0f : 0.0f, l->dweight, K);
        if (l->dbias) vae__bias_grad_images(l->dbias, dy + (size_t)i * OC * P, m, OC, P);
        if (!dx) continue;
        /* dcols = w^T dy_wide, written over cols (no longer needed) */
        vae__gemm(g, 1, 0, K, (int)N, OC, 1.0f, l->weight, K, dyw, (int)N, 0.0f, cols, (int)N);
#ifdef _OPENMP
#pragma omp parallel num_threads(nth) if (nth > 1 && N * K >= VAE__PAR_IMAGES)
#endif
        {
            int j0, j1, j;
            vae__share(m, &j0, &j1);
            for (j = j0; j < j1; j++) memset(dx + (size_t)(i + j) * in, 0, sizeof(float) * in);
            vae__col2im(dx + (size_t)i * in, in, cols, N, P, j0, j1, C, l->in_h, l->in_w, l->k, l->stride, l->pad, l->h, l->w, ph, T);
        }
    }
}

/* ConvTranspose2d is the adjoint of Conv2d: y (n, OC, OH, OW), x (n, C, H, W), w (C, OC, k, k).
   y_i = col2im(w^T x_i) + b, where the "image" of col2im is the output and its columns run
   over input positions (a conv with the same k, s, p maps OH x OW back to H x W).
   Per chunk of q images: cols = w^T x_wide (OC k k, q H W), then col2im. */
static void vae__convt_forward(const vae__gemm_ctx *g, const vae_layer *l, float *y, const float *x, int n,
                               float *work, size_t work_floats)
{
    int C = l->in_c, OC = l->c, K = OC * l->k * l->k, q = vae__conv_chunk(l, work_floats, n), i, j;
    int nth = g->threads > 1 ? g->threads : 1;
    size_t HW = (size_t)l->in_h * l->in_w, P = (size_t)l->h * l->w, T = vae__conv_phase(l);
    (void)nth;   /* unused without OpenMP */
    for (i = 0; i < n; i += q) {
        int m = VAE__MIN(q, n - i);
        size_t N = (size_t)m * HW;
        float *cols = work, *xw = work + (size_t)K * N, *ph = xw + (size_t)C * N;
        for (j = 0; j < m; j++) vae__to_wide(xw, x + (size_t)(i + j) * C * HW, j, m, C, HW);
        vae__gemm(g, 1, 0, K, (int)N, C, 1.0f, l->weight, K, xw, (int)N, 0.0f, cols, (int)N);
#ifdef _OPENMP
#pragma omp parallel num_threads(nth) if (nth > 1 && N * K >= VAE__PAR_IMAGES)
#endif
        {
            int j0, j1, jj;
            vae__share(m, &j0, &j1);
            for (jj = j0; jj < j1; jj++) vae__bias_rows(y + (size_t)(i + jj) * OC * P, l->bias, OC, P);
            vae__col2im(y + (size_t)i * OC * P, (size_t)OC * P, cols, N, HW, j0, j1, OC, l->h, l->w, l->k, l->stride, l->pad,
                        l->in_h, l->in_w, ph, T);
        }
    }
}

/* dcols = [im2col(dy_i) ...],  dw = sum over chunks of x_wide dcols^T,  dx_wide = w dcols,
   db = sum of dy. */
static void vae__convt_backward(const vae__gemm_ctx *g, const vae_layer *l, float *dx, const float *dy, const float *x,
                                int n, float *work, size_t work_floats)
{
    int C = l->in_c, OC = l->c, K = OC * l->k * l->k, q = vae__conv_chunk(l, work_floats, n), i;
    int nth = g->threads > 1 ? g->threads : 1;
    size_t HW = (size_t)l->in_h * l->in_w, P = (size_t)l->h * l->w, T = vae__conv_phase(l);
    (void)nth;   /* unused without OpenMP */
    if (l->dbias) memset(l->dbias, 0, sizeof(float) * OC);
    for (i = 0; i < n; i += q) {
        int m = VAE__MIN(q, n - i);
        size_t N = (size_t)m * HW;
        float *dcols = work, *xw = work + (size_t)K * N, *ph = xw + (size_t)C * N;
#ifdef _OPENMP
#pragma omp parallel num_threads(nth) if (nth > 1 && N * K >= VAE__PAR_IMAGES)
#endif
        {
            int j0, j1, j;
            vae__share(m, &j0, &j1);
            vae__im2col(dcols, N, HW, dy + (size_t)i * OC * P, (size_t)OC * P, j0, j1, OC, l->h, l->w, l->k, l->stride, l->pad,
                        l->in_h, l->in_w, ph, T);
            for (j = j0; j < j1; j++) vae__to_wide(xw, x + (size_t)(i + j) * C * HW, j, m, C, HW);
        }
        vae__gemm(g, 0, 1, C, K, (int)N, 1.0f, xw, (int)N, dcols, (int)N, i ? 1.0f : 0.0f, l->dweight, K);
        if (l->dbias) vae__bias_grad_images(l->dbias, dy + (size_t)i * OC * P, m, OC, P);
        if (!dx) continue;
        /* dx_wide = w dcols, written over x_wide (no longer needed) */
        vae__gemm(g, 0, 0, C, (int)N, K, 1.0f, l->weight, K, dcols, (int)N, 0.0f, xw, (int)N);
#ifdef _OPENMP
#pragma omp parallel num_threads(nth) if (nth > 1 && N * C >= VAE__PAR_IMAGES)
#endif
        {
            int j0, j1, j;
            vae__share(m, &j0, &j1);
            for (j = j0; j < j1; j++) vae__from_wide(dx + (size_t)(i + j) * C * HW, xw, NULL, j, m, C, HW);
        }
    }
}

/* sum of (x - m) into *sd and of (x - m)^2 into *sq: the normalisations' second pass
   (groupnorm also uses the sum of deviations to correct a mean summed in float lanes) */
static void vae__row_dev2(const float *x, size_t n, float m, float *sd, float *sq)
{
    float a[8] = { 0, 0, 0, 0, 0, 0, 0, 0 }, b[8] = { 0, 0, 0, 0, 0, 0, 0, 0 };
    size_t j;
    int k;
    for (j = 0; j + 8 <= n; j += 8) for (k = 0; k < 8; k++) { float d = x[j + k] - m; a[k] += d; b[k] += d * d; }
    for (k = 0; j < n; j++, k++) { float d = x[j] - m; a[k] += d; b[k] += d * d; }
    *sd = vae__lanes8(a); *sq = vae__lanes8(b);
}

/* sum of dy (x - m) */
static float vae__row_dotdev(const float *dy, const float *x, size_t n, float m)
{
    float a[8] = { 0, 0, 0, 0, 0, 0, 0, 0 };
    size_t j;
    int k;
    for (j = 0; j + 8 <= n; j += 8) for (k = 0; k < 8; k++) a[k] += dy[j + k] * (x[j + k] - m);
    for (k = 0; j < n; j++, k++) a[k] += dy[j] * (x[j] - m);
    return vae__lanes8(a);
}

/* y = (x - m) s + b, and dx = a dy - b (x - m) - d: batchnorm's elementwise passes. */
static void vae__row_affine(float *VAE__RESTRICT y, const float *VAE__RESTRICT x, size_t n, float m, float s, float b)
{
    size_t j;
    int k;
    for (j = 0; j + 8 <= n; j += 8) for (k = 0; k < 8; k++) y[j + k] = (x[j + k] - m) * s + b;
    for (; j < n; j++) y[j] = (x[j] - m) * s + b;
}
static void vae__row_bn_dx(float *VAE__RESTRICT dx, const float *VAE__RESTRICT dy, const float *VAE__RESTRICT x, size_t n,
                           float m, float a, float b, float d)
{
    size_t j;
    int k;
    for (j = 0; j + 8 <= n; j += 8) for (k = 0; k < 8; k++) dx[j + k] = a * dy[j + k] - b * (x[j + k] - m) - d;
    for (; j < n; j++) dx[j] = a * dy[j] - b * (x[j] - m) - d;
}

/* BatchNorm2d as PyTorch defines it, over (n, C, h*w): in training the batch's mean and
   biased variance normalise, and the running statistics move by `momentum` towards the batch
   mean and the unbiased variance; in eval the running statistics normalise. Sums run per row
   (one image's channel) in float lanes (vae__row_sum), rows added in double in order.
   Channels are split over threads. state: running mean, running var, batch mean, batch 1/std. */
static void vae__bn_forward(const vae_layer *l, float *y, const float *x, int n, int train, int threads)
{
    int C = l->c, c;
    size_t HW = (size_t)l->h * l->w, cnt = (size_t)n * HW;
    float *rm = l->state, *rv = rm + C, *bm = rv + C, *bi = bm + C;
#ifdef _OPENMP
#pragma omp parallel for num_threads(threads > 1 ? threads : 1) if (threads > 1 && cnt * C >= VAE__PAR_MIN) schedule(static)
#endif
    for (c = 0; c < C; c++) {
        float mean, inv, sc, b = l->bias[c];
        int i;
        if (train) {
            double s = 0, v = 0;
            for (i = 0; i < n; i++) s += vae__row_sum(x + ((size_t)i * C + c) * HW, HW);
            mean = (float)(s / (double)cnt);
            for (i = 0; i < n; i++) { float sd, sq; vae__row_dev2(x + ((size_t)i * C + c) * HW, HW, mean, &sd, &sq); v += sq; }
            inv = (float)(1.0 / sqrt(v / (double)cnt + l->eps));
            bm[c] = mean; bi[c] = inv;
            rm[c] = (1.0f - l->momentum) * rm[c] + l->momentum * mean;
            rv[c] = (1.0f - l->momentum) * rv[c] + l->momentum * (float)(cnt > 1 ? v / (double)(cnt - 1) : v);
        } else {
            mean = rm[c]; inv = (float)(1.0 / sqrt((double)rv[c] + l->eps));
        }
        sc = inv * l->weight[c];
        for (i = 0; i < n; i++) vae__row_affine(y + ((size_t)i * C + c) * HW, x + ((size_t)i * C + c) * HW, HW, mean, sc, b);
    }
#ifndef _OPENMP
    (void)threads;
#endif
}

/* With xhat = (x - mean) / std: dbeta = sum dy, dgamma = sum dy xhat,
   dx = gamma / std / N (N dy - dbeta - xhat dgamma). */
static void vae__bn_backward(const vae_layer *l, float *dx, const float *dy, const float *x, int n, int threads)
{
    int C = l->c, c;
    size_t HW = (size_t)l->h * l->w, cnt = (size_t)n * HW;
    const float *bm = l->state + 2 * C, *bi = bm + C;
#ifdef _OPENMP
#pragma omp parallel for num_threads(threads > 1 ? threads : 1) if (threads > 1 && cnt * C >= VAE__PAR_MIN) schedule(static)
#endif
    for (c = 0; c < C; c++) {
        const float m = bm[c], inv = bi[c];
        double sdy = 0, sdyx = 0;
        float k, a, b, d;
        int i;
        for (i = 0; i < n; i++) {
            const float *dyc = dy + ((size_t)i * C + c) * HW;
            sdy += vae__row_sum(dyc, HW);
            sdyx += vae__row_dotdev(dyc, x + ((size_t)i * C + c) * HW, HW, m);
        }
        sdyx *= inv;
        l->dbias[c] = (float)sdy; l->dweight[c] = (float)sdyx;
        if (!dx) continue;
        /* dx = a dy - b (x - mean) - d */
        k = l->weight[c] * inv / (float)cnt;
        a = k * (float)cnt; b = k * (float)sdyx * inv; d = k * (float)sdy;
        for (i = 0; i < n; i++)
            vae__row_bn_dx(dx + ((size_t)i * C + c) * HW, dy + ((size_t)i * C + c) * HW, x + ((size_t)i * C + c) * HW, HW, m, a, b, d);
    }
#ifndef _OPENMP
    (void)threads;
#endif
}

/* BatchNorm in eval mode (frozen statistics): y = (x - running mean) * inv * gamma + beta with
   inv = 1/sqrt(running var + eps), so dx = dy gamma inv, dgamma = sum dy xhat, dbeta = sum dy,
   summed as in vae__bn_backward. Channels are split over threads. */
static void vae__bn_backward_frozen(const vae_layer *l, float *dx, const float *dy, const float *x, int n, int threads)
{
    int C = l->c, c;
    size_t HW = (size_t)l->h * l->w;
    const float *rm = l->state, *rv = rm + C;
#ifdef _OPENMP
#pragma omp parallel for num_threads(threads > 1 ? threads : 1) if (threads > 1 && (size_t)n * HW * C >= VAE__PAR_MIN) schedule(static)
#endif
    for (c = 0; c < C; c++) {
        const float mean = rm[c], inv = (float)(1.0 / sqrt((double)rv[c] + l->eps)), k = l->weight[c] * inv;
        double sdy = 0, sdyx = 0;
        int i;
        for (i = 0; i < n; i++) {
            const size_t off = ((size_t)i * C + c) * HW;
            sdy += vae__row_sum(dy + off, HW);
            sdyx += vae__row_dotdev(dy + off, x + off, HW, mean);
            if (dx) vae__row_affine(dx + off, dy + off, HW, 0.0f, k, 0.0f);
        }
        l->dbias[c] = (float)sdy; l->dweight[c] = (float)(sdyx * inv);
    }
#ifndef _OPENMP
    (void)threads;
#endif
}

/* GroupNorm as PyTorch defines it: each image's C channels form `groups` contiguous sets of
   C/groups channels, normalised by their own mean and biased variance in training and eval
   alike, then scaled and shifted per channel. Sums run per channel row in float lanes, rows
   added in double in order, as in batchnorm. (image, group) pairs are split over threads.
   aux keeps each group's mean and 1/std. */
static void vae__gn_forward(const vae_layer *l, float *y, const float *x, int n, int threads)
{
    int G = l->groups, cg = l->c / G, ig;
    size_t HW = (size_t)l->h * l->w, len = (size_t)cg * HW;
#ifdef _OPENMP
#pragma omp parallel for num_threads(threads > 1 ? threads : 1) if (threads > 1 && (size_t)n * G * len >= VAE__PAR_MIN) schedule(static)
#endif
    for (ig = 0; ig < n * G; ig++) {
        int i = ig / G, g = ig % G, c;
        const float *xg = x + (size_t)ig * len;
        float *yg = y + (size_t)ig * len, mean, inv;
        double s = 0, sd = 0, v = 0;
        for (c = 0; c < cg; c++) s += vae__row_sum(xg + (size_t)c * HW, HW);
        mean = (float)(s / (double)len);
        /* two-pass with a correction: the deviations' own sum refines the mean (a large mean
           over a small spread loses digits in float lanes), and takes its square off v */
        for (c = 0; c < cg; c++) {
            float a, b;
            vae__row_dev2(xg + (size_t)c * HW, HW, mean, &a, &b);
            sd += a; v += b;
        }
        sd /= (double)len;
        v = VAE__MAX(v / (double)len - sd * sd, 0.0);
        mean = (float)(mean + sd);
        inv = (float)(1.0 / sqrt(v + l->eps));
        l->aux[(size_t)i * 2 * G + g] = mean; l->aux[(size_t)i * 2 * G + G + g] = inv;
        for (c = 0; c < cg; c++) {
            int ch = g * cg + c;
            float sc = l->weight ? l->weight[ch] * inv : inv, sh = l->bias ? l->bias[ch] : 0.0f;
            vae__row_affine(yg + (size_t)c * HW, xg + (size_t)c * HW, HW, mean, sc, sh);
        }
    }
#ifndef _OPENMP
    (void)threads;
#endif
}

/* With xhat = (x - mean) / std and g = dy * gamma over one group of N values:
   dx = (g - mean(g) - xhat mean(g xhat)) / std; dgamma = sum dy xhat, dbeta = sum dy over
   images and positions. Groups are split over threads, each running its images in order, so
   dgamma and dbeta add the images' row sums in the same order for any thread count. */
static void vae__gn_backward(const vae_layer *l, float *dx, const float *dy, const float *x, int n, int threads)
{
    int G = l->groups, cg = l->c / G, g;
    size_t HW = (size_t)l->h * l->w, len = (size_t)cg * HW;
#ifdef _OPENMP
#pragma omp parallel for num_threads(threads > 1 ? threads : 1) if (threads > 1 && (size_t)n * G * len >= VAE__PAR_MIN) schedule(static)
#endif
    for (g = 0; g < G; g++) {
        int i, c;
        if (l->dweight)
            for (c = 0; c < cg; c++) l->dweight[g * cg + c] = l->dbias[g * cg + c] = 0.0f;
        for (i = 0; i < n; i++) {
            size_t off = ((size_t)i * G + g) * len;
            const float mean = l->aux[(size_t)i * 2 * G + g], inv = l->aux[(size_t)i * 2 * G + G + g];
            double sg = 0, sgx = 0;
            float mg, mgx;
            for (c = 0; c < cg; c++) {
                int ch = g * cg + c;
                const float *dyc = dy + off + (size_t)c * HW;
                float gam = l->weight ? l->weight[ch] : 1.0f;
                float sdy = vae__row_sum(dyc, HW), sdyx = vae__row_dotdev(dyc, x + off + (size_t)c * HW, HW, mean) * inv;
                if (l->dweight) { l->dweight[ch] += sdyx; l->dbias[ch] += sdy; }
                sg += (double)gam * sdy; sgx += (double)gam * sdyx;
            }
            if (!dx) continue;
            /* dx = a dy - b (x - mean) - d with a = gamma / std, b = mgx / std^2, d = mg / std */
            mg = (float)(sg / (double)len); mgx = (float)(sgx / (double)len);
            for (c = 0; c < cg; c++) {
                float gam = l->weight ? l->weight[g * cg + c] : 1.0f;
                vae__row_bn_dx(dx + off + (size_t)c * HW, dy + off + (size_t)c * HW, x + off + (size_t)c * HW, HW,
                               mean, gam * inv, mgx * inv * inv, mg * inv);
            }
        }
    }
#ifndef _OPENMP
    (void)threads;
#endif
}

/* MaxPool2d over k x k windows at stride s. Backward sends each output's gradient to the
   first largest input of its window (found again, so nothing is stored), as PyTorch does. */
static size_t vae__maxpool_argmax(const float *xc, int W, int oh, int ow, int k, int s)
{
    size_t best = (size_t)(oh * s) * W + (size_t)ow * s;
    int a, b;
    for (a = 0; a < k; a++)
        for (b = 0; b < k; b++) {
            size_t q = (size_t)(oh * s + a) * W + (size_t)(ow * s + b);
            if (xc[q] > xc[best] || xc[q] != xc[q]) { best = q; if (xc[q] != xc[q]) return best; }
        }
    return best;
}

static void vae__maxpool_forward(const vae_layer *l, float *y, const float *x, int n)
{
    size_t planes = (size_t)n * l->c, p, in = (size_t)l->in_h * l->in_w, out = (size_t)l->h * l->w;
    int oh, ow;
    for (p = 0; p < planes; p++)
        for (oh = 0; oh < l->h; oh++)
            for (ow = 0; ow < l->w; ow++)
                y[p * out + (size_t)oh * l->w + ow] = x[p * in + vae__maxpool_argmax(x + p * in, l->in_w, oh, ow, l->k, l->stride)];
}

static void vae__maxpool_backward(const vae_layer *l, float *dx, const float *dy, const float *x, int n)
{
    size_t planes = (size_t)n * l->c, p, in = (size_t)l->in_h * l->in_w, out = (size_t)l->h * l->w;
    int oh, ow;
    memset(dx, 0, sizeof(float) * planes * in);
    for (p = 0; p < planes; p++)
        for (oh = 0; oh < l->h; oh++)
            for (ow = 0; ow < l->w; ow++)
                dx[p * in + vae__maxpool_argmax(x + p * in, l->in_w, oh, ow, l->k, l->stride)] += dy[p * out + (size_t)oh * l->w + ow];
}

/* Nearest-neighbour upsampling by an integer factor; backward sums each factor x factor block. */
static void vae__upsample_forward(const vae_layer *l, float *y, const float *x, int n)
{
    size_t planes = (size_t)n * l->c, p;
    int f = l->k, oh, ow;
    for (p = 0; p < planes; p++) {
        const float *xp = x + p * l->in_h * l->in_w;
        float *yp = y + p * l->h * l->w;
        for (oh = 0; oh < l->h; oh++)
            for (ow = 0; ow < l->w; ow++) yp[(size_t)oh * l->w + ow] = xp[(size_t)(oh / f) * l->in_w + ow / f];
    }
}

static void vae__upsample_backward(const vae_layer *l, float *dx, const float *dy, int n)
{
    size_t planes = (size_t)n * l->c, p;
    int f = l->k, oh, ow;
    memset(dx, 0, sizeof(float) * planes * l->in_h * l->in_w);
    for (p = 0; p < planes; p++) {
        float *dxp = dx + p * l->in_h * l->in_w;
        const float *dyp = dy + p * l->h * l->w;
        for (oh = 0; oh < l->h; oh++)
            for (ow = 0; ow < l->w; ow++) dxp[(size_t)(oh / f) * l->in_w + ow / f] += dyp[(size_t)oh * l->w + ow];
    }
}

/* The residual join: y = x + s, or y = w s + b with w (C, S) a 1x1 convolution when the skipped
   tensor s (n, S, h, w) has other channels (add(proj=1)). Backward passes dy on to x; the
   skipped tensor's gradient, dy itself or w^T dy, is left where the skip layer adds it to its
   own input's gradient once the branch between them has been run backwards. */
static void vae__add_forward(const vae__gemm_ctx *g, const vae_layer *l, float *y, const float *x, const float *s, int n, int S)
{
    size_t P = (size_t)l->h * l->w, size = (size_t)l->c * P, j;
    int i;
    for (i = 0; i < n; i++) {
        float *yi = y + (size_t)i * size;
        if (!l->nparams) { const float *si = s + (size_t)i * size; for (j = 0; j < size; j++) yi[j] = x[(size_t)i * size + j] + si[j]; continue; }
        vae__bias_rows(yi, l->bias, l->c, P);
        vae__gemm(g, 0, 0, l->c, (int)P, S, 1.0f, l->weight, S, s + (size_t)i * S * P, (int)P, 1.0f, yi, (int)P);
        for (j = 0; j < size; j++) yi[j] += x[(size_t)i * size + j];
    }
}

static void vae__add_backward(const vae__gemm_ctx *g, const vae_layer *l, float *dx, const float *dy, const float *s, int n, int S)
{
    size_t P = (size_t)l->h * l->w, size = (size_t)l->c * P;
    int i;
    if (dx) memcpy(dx, dy, sizeof(float) * n * size);
    if (!l->nparams) return;   /* the skip reads dy itself */
    if (l->dbias) memset(l->dbias, 0, sizeof(float) * l->c);
    for (i = 0; i < n; i++) {
        const float *dyi = dy + (size_t)i * size;
        vae__gemm(g, 0, 1, l->c, S, (int)P, 1.0f, dyi, (int)P, s + (size_t)i * S * P, (int)P, i ? 1.0f : 0.0f, l->dweight, S);
        if (l->dbias) vae__bias_grad_rows(l->dbias, dyi, l->c, P);
        vae__gemm(g, 1, 0, S, (int)P, l->c, 1.0f, l->weight, S, dyi, (int)P, 0.0f, l->aux + (size_t)i * S * P, (int)P);
    }
}

/* Elementwise activations over `count` values. backward gets x (the input) and y (the output)
   and uses whichever gives the derivative most cheaply. */
static void vae__act_forward(vae_op op, float alpha, float *VAE__RESTRICT y, const float *VAE__RESTRICT x, size_t count)
{
    size_t i;
    int k;
    switch (op) {
    /* (Leaky) ReLU in 8-wide blocks, the shape gcc vectorises at -O2 into compare + mask: a
       plain loop stays scalar there, with a branch per element mispredicted on signed data. */
    case VAE_OP_RELU:
        for (i = 0; i + 8 <= count; i += 8) for (k = 0; k < 8; k++) { float v = x[i + k]; y[i + k] = v > 0 ? v : 0.0f; }
        for (; i < count; i++) y[i] = x[i] > 0 ? x[i] : 0.0f;
        break;
    case VAE_OP_LEAKY_RELU:
        for (i = 0; i + 8 <= count; i += 8) for (k = 0; k < 8; k++) { float v = x[i + k]; y[i + k] = v > 0 ? v : alpha * v; }
        for (; i < count; i++) y[i] = x[i] > 0 ? x[i] : alpha * x[i];
        break;
    case VAE_OP_SIGMOID:    vae__sigmoid_forward(y, x, count); break;
    case VAE_OP_TANH:       vae__tanh_forward(y, x, count); break;
    case VAE_OP_SILU:       vae__silu_forward(y, x, count); break;
    default: VAE_ASSERT(0);
    }
}

static void vae__act_backward(vae_op op, float alpha, float *VAE__RESTRICT dx, const float *VAE__RESTRICT dy,
                              const float *VAE__RESTRICT x, const float *VAE__RESTRICT y, size_t count)
{
    size_t i;
    int k;
    switch (op) {
    case VAE_OP_RELU:
        for (i = 0; i + 8 <= count; i += 8) for (k = 0; k < 8; k++) { float d = dy[i + k]; dx[i + k] = x[i + k] > 0 ? d : 0.0f; }
        for (; i < count; i++) dx[i] = x[i] > 0 ? dy[i] : 0.0f;
        break;
    case VAE_OP_LEAKY_RELU:
        for (i = 0; i + 8 <= count; i += 8) for (k = 0; k < 8; k++) { float d = dy[i + k]; dx[i + k] = x[i + k] > 0 ? d : alpha * d; }
        for (; i < count; i++) dx[i] = x[i] > 0 ? dy[i] : alpha * dy[i];
        break;
    case VAE_OP_SIGMOID:    for (i = 0; i < count; i++) dx[i] = dy[i] * y[i] * (1.0f - y[i]); break;
    case VAE_OP_TANH:       for (i = 0; i < count; i++) dx[i] = dy[i] * (1.0f - y[i] * y[i]); break;
    case VAE_OP_SILU:
        /* sigmoid(x) into dx by the vector kernel, then dx = dy s (1 + x (1 - s)) */
        vae__sigmoid_forward(dx, x, count);
        for (i = 0; i + 8 <= count; i += 8)
            for (k = 0; k < 8; k++) { float sg = dx[i + k]; dx[i + k] = dy[i + k] * sg * (1.0f + x[i + k] * (1.0f - sg)); }
        for (; i < count; i++) { float sg = dx[i]; dx[i] = dy[i] * sg * (1.0f + x[i] * (1.0f - sg)); }
        break;
    default: VAE_ASSERT(0);
    }
}

/* The reparameterisation z = mu + exp(lv/2) * eps.
   x (n, 2, L): each image holds mu then log-variance; z (n, L); eps (n, L).
   clamp > 0 clamps log-variance first (seed 000). eps comes from rng, or is 0 if rng is NULL;
   a fixed noise (n, L) replaces the draws from rng (vae_model.noise). */
static void vae__sample_forward(float *z, float *eps, const float *x, int n, int L, float clamp, vae_rng *rng,
                                const float *noise)
{
    int i, j;
    const size_t nl = (size_t)n * L;
    if (!rng) memset(eps, 0, nl * sizeof(float));
    else if (noise) memcpy(eps, noise, nl * sizeof(float));
    else vae_rng_normals(rng, eps, nl);
    for (i = 0; i < n; i++) {
        const float *mu = x + (size_t)i * 2 * L, *lv = mu + L;
        for (j = 0; j < L; j++) {
            float v = clamp > 0 ? VAE__MIN(VAE__MAX(lv[j], -clamp), clamp) : lv[j];
            z[(size_t)i * L + j] = mu[j] + expf(0.5f * v) * eps[(size_t)i * L + j];
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

/* Where forward stops when a loss follows: the BCE loss computes the final sigmoid itself,
   from the logits, in the same pass. */
static int vae__loss_layers(const vae_model *m) { return m->cfg.loss == VAE_LOSS_BCE ? m->nlayers - 1 : m->nlayers; }

/* Runs layers [from, to) on n images. rng gives the sampling noise (NULL: z = mu); train
   selects batch statistics in batchnorm (and updates its running statistics). */
static void vae__forward(vae_model *m, int from, int to, int n, vae_rng *rng, int train)
{
    vae__gemm_ctx g = vae__gemm_ctx_of(m);
    int i;
    for (i = VAE__MAX(from, 1); i < to; i++) {
        vae_layer *l = &m->layers[i];
        const vae_layer *p = &m->layers[i - 1];
        switch (l->op) {
        case VAE_OP_INPUT: case VAE_OP_FLATTEN: case VAE_OP_RESHAPE: case VAE_OP_SKIP: break;
        case VAE_OP_LINEAR: case VAE_OP_MULV:
            vae__linear_forward(&g, l->y, p->y, l->weight, l->bias, n, (int)vae__layer_size(p), l->c);
            break;
        case VAE_OP_CONV:  vae__conv_forward(&g, l, l->y, p->y, n, m->cols, m->cols_floats); break;
        case VAE_OP_BATCHNORM: vae__bn_forward(l, l->y, p->y, n, train, g.threads); break;
        case VAE_OP_GROUPNORM: vae__gn_forward(l, l->y, p->y, n, g.threads); break;
        case VAE_OP_MAXPOOL: vae__maxpool_forward(l, l->y, p->y, n); break;
        case VAE_OP_UPSAMPLE: vae__upsample_forward(l, l->y, p->y, n); break;
        case VAE_OP_ADD: {
            const vae_layer *sk = &m->layers[l->link];
            vae__add_forward(&g, l, l->y, p->y, sk->y, n, sk->c);
            break;
        }
        case VAE_OP_CONVT: vae__convt_forward(&g, l, l->y, p->y, n, m->cols, m->cols_floats); break;
        case VAE_OP_SAMPLE:
            vae__sample_forward(l->y, l->aux, p->y, n, (int)vae__layer_size(l), l->alpha, rng, m->noise);
            break;
        default:
            VAE__PAR_SLICES((size_t)n * vae__layer_size(l), g.threads,
                            vae__act_forward(l->op, l->alpha, l->y + lo, p->y + lo, hi - lo))
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
            vae__linear_backward(&g, dx, l->dweight, l->dbias, l->dy, p->y, l->weight, n, (int)vae__layer_size(p), l->c);
            break;
        case VAE_OP_CONV:  vae__conv_backward(&g, l, dx, l->dy, p->y, n, m->cols, m->cols_floats); break;
        case VAE_OP_BATCHNORM:
            if (m->cfg.frozen_stats) vae__bn_backward_frozen(l, dx, l->dy, p->y, n, g.threads);
            else vae__bn_backward(l, dx, l->dy, p->y, n, g.threads);
            break;
        case VAE_OP_GROUPNORM: vae__gn_backward(l, dx, l->dy, p->y, n, g.threads); break;
        case VAE_OP_MAXPOOL: if (dx) vae__maxpool_backward(l, dx, l->dy, p->y, n); break;
        case VAE_OP_UPSAMPLE: if (dx) vae__upsample_backward(l, dx, l->dy, n); break;
        case VAE_OP_ADD: {
            const vae_layer *sk = &m->layers[l->link];
            vae__add_backward(&g, l, dx, l->dy, sk->y, n, sk->c);
            break;
        }
        case VAE_OP_SKIP:   /* the branch is done: add the gradient its add left in aux */
            if (l->dy) { size_t j, cnt = (size_t)n * vae__layer_size(l); for (j = 0; j < cnt; j++) l->dy[j] += l->aux[j]; }
            break;
        case VAE_OP_CONVT: vae__convt_backward(&g, l, dx, l->dy, p->y, n, m->cols, m->cols_floats); break;
        case VAE_OP_SAMPLE:
            if (dx) vae__sample_backward(dx, l->dy, p->y, l->aux, n, (int)vae__layer_size(l), l->alpha, m->cfg.logvar_clamp, kl_w);
            break;
        default:
            if (dx) VAE__PAR_SLICES((size_t)n * vae__layer_size(l), g.threads,
                                    vae__act_backward(l->op, l->alpha, dx + lo, l->dy + lo, p->y + lo, l->y + lo, hi - lo))
            break;
        }
    }
}

/* >>loss: negative ELBO = reconstruction + beta * KL */

/* Per image: recon = sum over pixels of BCE(logits, x) or (y - x)^2; KL = the closed form for
   N(mu, sigma^2) against N(0, I). REDUCE_SUM reports both per image (nats per image for BCE);
   REDUCE_MEAN divides recon by the pixel count and KL by the latent count (seed 002).
   With grad, writes d(recon)/d(output) where backward starts. */
static void vae__loss_image(const vae_model *m, const float *t, int i, float rscale, int grad, double *rr, double *kk)
{
    const vae_layer *last = &m->layers[m->nlayers - 1], *smp = &m->layers[m->sample_layer];
    const float *mu = m->layers[m->sample_layer - 1].y + (size_t)i * 2 * m->latent, *lv = mu + m->latent;
    int D = m->in_size, L = m->latent, j, mean = m->cfg.reduce == VAE_REDUCE_MEAN;
    float clamp = smp->alpha, kclamp = m->cfg.logvar_clamp;
    double r = 0, k = 0;
    if (m->cfg.loss == VAE_LOSS_BCE) {
        /* max(l,0) - l*t + log(1 + exp(-|l|)): no log(0) and no overflow for any logit.
           The same pass writes the final sigmoid's output, which forward skipped. */
        const vae_layer *lg = &m->layers[m->nlayers - 2];
        r = vae__bce_logits(lg->y + (size_t)i * D, t, last->y + (size_t)i * D,
                            grad ? lg->dy + (size_t)i * D : NULL, (size_t)D, rscale);
    } else {
        /* the output is compared with each block of O target values: the whole image,
           or, for a one-channel output, every input channel in turn, as PyTorch's
           broadcasting mse_loss does (seed 004) */
        int O = m->out_size, b;
        const float *y = last->y + (size_t)i * O;
        float *dy = grad ? last->dy + (size_t)i * O : NULL;
        if (dy) memset(dy, 0, sizeof(float) * O);
        for (b = 0; b < D; b += O)
            for (j = 0; j < O; j++) {
                float d = y[j] - t[b + j];
                r += (double)(d * d);
                if (dy) dy[j] += 2.0f * d * rscale;
            }
    }
    for (j = 0; j < L; j++) {
        float v = lv[j];
        if (clamp > 0) v = VAE__MIN(VAE__MAX(v, -clamp), clamp);
        if (kclamp > 0) v = VAE__MIN(VAE__MAX(v, -kclamp), kclamp);
        k += -0.5 * (double)(1.0f + v - mu[j] * mu[j] - expf(v));
    }
    *rr = mean ? r / D : r;
    *kk = mean ? k / L : k;
}

/* The batch's loss into st; with grad, returns the layer where backward starts. Images are
   split over threads in blocks of VAE__LOSS_BLOCK, and their sums added in image order, so
   the result is the same for any thread count. */
#define VAE__LOSS_BLOCK 64
static int vae__loss(vae_model *m, const float *x, int n, float beta, vae_stats *st, int grad)
{
    int D = m->in_size, i0, nth = m->cfg.threads;
    float rscale = m->cfg.reduce == VAE_REDUCE_MEAN ? 1.0f / ((float)n * D) : 1.0f / n;
    double recon = 0, kl = 0;
    (void)nth;   /* unused without OpenMP */
    for (i0 = 0; i0 < n; i0 += VAE__LOSS_BLOCK) {
        double rr[VAE__LOSS_BLOCK], kk[VAE__LOSS_BLOCK];
        int i, b = VAE__MIN(VAE__LOSS_BLOCK, n - i0);
#ifdef _OPENMP
#pragma omp parallel for num_threads(nth) if (nth > 1 && (size_t)b * D >= VAE__PAR_MIN) schedule(static)
#endif
        for (i = 0; i < b; i++)
            vae__loss_image(m, x + (size_t)(i0 + i) * D, i0 + i, rscale, grad, &rr[i], &kk[i]);
        for (i = 0; i < b; i++) { recon += rr[i]; kl += kk[i]; }
    }
    st->recon = recon / n;
    st->kl = kl / n;
    st->loss = st->recon + beta * st->kl;
    st->images = n;
    return m->cfg.loss == VAE_LOSS_BCE ? m->nlayers - 2 : m->nlayers - 1;
}

/* >>optim: SGD with momentum, Adam, AdamW, and global gradient-norm clipping.
   The arithmetic follows PyTorch 1.13's single-tensor CPU path step for step, so the two
   libraries agree to float rounding: scalars in double, tensor math in float. */

/* The passes over the parameter block (gradient norm, clipping, update) go slice by slice
   (VAE__PAR_SLICES): the updates are elementwise and the norm adds the slices' sums in slice
   order, so no result depends on the thread count. */

/* Sum of squares of the gradients, in double. */
static double vae__grad_sumsq(vae_model *m)
{
    double part[VAE__SLICES], s = 0;
    int i;
    VAE__PAR_SLICES(m->nparams, m->cfg.threads, part[s_] = vae__sumsq(m->grads + lo, hi - lo))
    for (i = 0; i < VAE__SLICES; i++) s += part[i];
    return s;
}

static void vae__grad_scale(vae_model *m, float coef)
{
    VAE__PAR_SLICES(m->nparams, m->cfg.threads, size_t i; for (i = lo; i < hi; i++) m->grads[i] *= coef)
}

static void vae__optim_step(vae_model *m)
{
    const vae_config *c = &m->cfg;
    double t;
    m->step++;
    t = (double)m->step;
    if (c->optim == VAE_OPTIM_SGD) {
        VAE__PAR_SLICES(m->nparams, m->cfg.threads,
                        vae__sgd_update(m->params + lo, m->grads + lo, m->opt_m ? m->opt_m + lo : NULL, hi - lo,
                                        c->lr, c->weight_decay, c->momentum))
    } else {
        double bc1 = 1.0 - pow((double)c->beta1, t), bc2 = 1.0 - pow((double)c->beta2, t);
        int adamw = c->optim == VAE_OPTIM_ADAMW;
        float step_size = (float)((double)c->lr / bc1), bc2_sqrt = (float)sqrt(bc2);
        float l2 = adamw ? 0.0f : c->weight_decay;
        float decay = adamw ? (float)(1.0 - (double)c->lr * c->weight_decay) : 1.0f;
        VAE__PAR_SLICES(m->nparams, m->cfg.threads,
                        vae__adam_update(m->params + lo, m->grads + lo, m->opt_m + lo, m->opt_v + lo, hi - lo,
                                         c->beta1, c->beta2, step_size, bc2_sqrt, c->eps, l2, decay))
    }
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
        if (t.is_state) continue;
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
   The sampling noise comes from m->rng. Batchnorm uses batch statistics, or with
   cfg.frozen_stats its running statistics, left unchanged (PyTorch's eval mode). */
static vae_result vae__gradients(vae_model *m, const float *x, int n, vae_stats *st)
{
    float beta = vae__beta_at(&m->cfg, m->step), kl_w;
    int start;
    if (x != m->layers[0].y) {
        float *in = m->layers[0].y;
        VAE__PAR_SLICES((size_t)n * m->in_size, m->cfg.threads, memcpy(in + lo, x + lo, sizeof(float) * (hi - lo)))
    }
    vae__forward(m, 1, vae__loss_layers(m), n, &m->rng, !m->cfg.frozen_stats);
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
    norm2 = vae__grad_sumsq(m);
    m->last_grad_norm = (float)sqrt(norm2);
    if (!isfinite(norm2)) {
        char name[2 * VAE_NAME_MAX];
        return vae__fail(m->error, VAE_ERROR_NUMERIC, "step %lld: non-finite gradient in %s; update skipped",
                         (long long)m->step + 1, vae__first_nonfinite(m, m->grads, name, sizeof name));
    }
    if (m->cfg.clip > 0) {
        /* torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e-6) when that is < 1 */
        float coef = (float)(m->cfg.clip / (sqrt(norm2) + 1e-6));
        if (coef < 1.0f) vae__grad_scale(m, coef);
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

/* The loss of k images already in the input layer (targets x), in eval mode, added to acc. */
static void vae__evaluate_batch(vae_model *m, const float *x, int k, vae_rng *rng, vae_stats *acc)
{
    vae_stats st;
    vae__forward(m, 1, vae__loss_layers(m), k, rng, 0);
    vae__loss(m, x, k, m->cfg.beta, &st, 0);
    vae__stats_merge(acc, &st);
}

VAEDEF vae_result vae_model_evaluate(vae_model *m, const float *x, int n, vae_rng *rng, vae_stats *out)
{
    vae_stats acc;
    int done, k;
    vae_result r;
    if ((r = vae__check_batch(m, x, n, "evaluate")) != VAE_OK) return r;
    memset(&acc, 0, sizeof acc);
    for (done = 0; done < n; done += k) {
        k = VAE__MIN(n - done, m->cfg.batch);
        memcpy(m->layers[0].y, x + (size_t)done * m->in_size, sizeof(float) * (size_t)k * m->in_size);
        vae__evaluate_batch(m, x + (size_t)done * m->in_size, k, rng, &acc);
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
        vae__forward(m, 1, m->sample_layer, k, NULL, 0);
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
        vae__forward(m, m->sample_layer + 1, m->nlayers, k, NULL, 0);
        memcpy(out + (size_t)done * m->out_size, m->layers[m->nlayers - 1].y, sizeof(float) * (size_t)k * m->out_size);
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
        vae__forward(m, 1, m->nlayers, k, NULL, 0);
        memcpy(out + (size_t)done * m->out_size, m->layers[m->nlayers - 1].y, sizeof(float) * (size_t)k * m->out_size);
    }
    return VAE_OK;
}

VAEDEF vae_result vae_model_sample(vae_model *m, vae_rng *rng, int n, float *out)
{
    int done, k;
    vae_result r;
    if ((r = vae__check_batch(m, rng, n, "sample")) != VAE_OK) return r;
    if (!out) return vae__fail(m->error, VAE_ERROR_INVALID_ARGUMENT, "sample: NULL output");
    for (done = 0; done < n; done += k) {
        float *z = m->layers[m->sample_layer].y;
        k = VAE__MIN(n - done, m->cfg.batch);
        vae_rng_normals(rng, z, (size_t)k * m->latent);
        vae__forward(m, m->sample_layer + 1, m->nlayers, k, NULL, 0);
        memcpy(out + (size_t)done * m->out_size, m->layers[m->nlayers - 1].y, sizeof(float) * (size_t)k * m->out_size);
    }
    return VAE_OK;
}

/* Tensors in state_dict order: for each layer with parameters, weight then bias; a mulv
   layer is stored as one (2Z, in) block but named as its two heads. */
static int vae__layer_tensors(const vae_layer *l)
{
    if (l->op == VAE_OP_BATCHNORM) return 4;   /* weight, bias, running_mean, running_var */
    if (l->op == VAE_OP_GROUPNORM) return l->nparams ? 2 : 0;
    return l->nparams ? (l->op == VAE_OP_MULV ? 2 : 1) * (l->has_bias ? 2 : 1) : 0;
}

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
        int nt = vae__layer_tensors(l), per = l->has_bias ? 2 : 1, head, isb, rows, in;
        size_t off;
        if (idx >= nt) { idx -= nt; continue; }
        if (l->op == VAE_OP_BATCHNORM && idx >= 2) {
            snprintf(t->name, sizeof t->name, "%s.%s", l->name, idx == 2 ? "running_mean" : "running_var");
            t->layer = i; t->ndim = 1; t->shape[0] = l->c; t->shape[1] = t->shape[2] = t->shape[3] = 1;
            t->data = l->state + (idx - 2) * l->c; t->is_state = 1;
            return 1;
        }
        head = idx / per; isb = idx % per;
        rows = l->op == VAE_OP_MULV ? l->units : l->c;
        in = l->in_c * l->in_h * l->in_w;
        snprintf(t->name, sizeof t->name, "%s.%s", head ? l->name2 : l->name, isb ? "bias" : "weight");
        t->layer = i;
        if (isb) { t->ndim = 1; t->shape[0] = rows; off = (size_t)(l->bias - m->params) + (size_t)head * rows; }
        else if (l->op == VAE_OP_BATCHNORM || l->op == VAE_OP_GROUPNORM) { t->ndim = 1; t->shape[0] = l->c; off = (size_t)(l->weight - m->params); }
        else if (l->op == VAE_OP_CONV || l->op == VAE_OP_CONVT || l->op == VAE_OP_ADD) {
            t->ndim = 4; t->shape[2] = t->shape[3] = l->k;
            t->shape[0] = l->op == VAE_OP_CONVT ? l->in_c : l->c;
            t->shape[1] = l->op == VAE_OP_CONV ? l->in_c : l->op == VAE_OP_ADD ? m->layers[l->link].c : l->c;
            off = (size_t)(l->weight - m->params);
        }
        else { t->ndim = 2; t->shape[0] = rows; t->shape[1] = in; off = (size_t)(l->weight - m->params) + (size_t)head * rows * in; }
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
    char shape[48], name[2 * VAE_NAME_MAX + 2];
    if (i < 0 || i >= m->nlayers) { if (cap) buf[0] = 0; return; }
    l = &m->layers[i];
    if (l->h == 1 && l->w == 1) snprintf(shape, sizeof shape, "%d", l->c);
    else snprintf(shape, sizeof shape, "%dx%dx%d", l->c, l->h, l->w);
    if (l->op == VAE_OP_MULV) snprintf(name, sizeof name, "%s,%s", l->name, l->name2);
    else snprintf(name, sizeof name, "%s", l->nparams ? l->name : "");
    snprintf(buf, cap, "%3d  %-10s %-40s %-14s %10lu", i, vae__op_names[l->op], name, shape, (unsigned long)l->nparams);
}

/* >>train: epochs over a data set */

/* n floats of image data: from values as they are, or from pixels scaled to [0, 1] */
static void vae__data_row(const vae_data *d, size_t at, size_t n, float *o)
{
    size_t j;
    if (d->values) { memcpy(o, d->values + at, sizeof(float) * n); return; }
    for (j = 0; j < n; j++) o[j] = d->pixels[at + j] * (1.0f / 255.0f);
}

VAEDEF void vae_data_batch(const vae_data *d, const uint32_t *idx, int count, float *out)
{
    size_t size = (size_t)d->c * d->h * d->w, j;
    int i, k, y;
    if (!d->src_h) {   /* no padding: one run per image */
        for (i = 0; i < count; i++) vae__data_row(d, (size_t)idx[i] * size, size, out + (size_t)i * size);
        return;
    }
    for (i = 0; i < count; i++) {
        float *o = out + (size_t)i * size;
        for (j = 0; j < size; j++) o[j] = 0.0f;
        for (k = 0; k < d->c; k++)
            for (y = 0; y < d->src_h; y++)
                vae__data_row(d, (((size_t)idx[i] * d->c + k) * d->src_h + y) * d->src_w, (size_t)d->src_w,
                              o + ((size_t)k * d->h + d->top + y) * d->w + d->left);
    }
}

static vae_result vae__data_fits(vae_model *m, const vae_data *d)
{
    if (!d || (!d->pixels && !d->values) || d->n < 1) return vae__fail(m->error, VAE_ERROR_INVALID_ARGUMENT, "data set is empty");
    if (d->c != m->in_c || d->h != m->in_h || d->w != m->in_w)
        return vae__fail(m->error, VAE_ERROR_MISMATCH, "data is %dx%dx%d but the model takes %dx%dx%d",
                         d->c, d->h, d->w, m->in_c, m->in_h, m->in_w);
    return VAE_OK;
}

/* Gathers `count` images straight into the input layer's activation: positions first.. of
   epoch's shuffled order, or file order when epoch < 0. The index list stays small and on
   the stack, so an epoch needs no memory beyond the model's block. */
static void vae__gather(vae_model *m, const vae_data *d, uint32_t first, int count, int epoch)
{
    uint32_t idx[256];
    int done, k, i;
    for (done = 0; done < count; done += k) {
        k = VAE__MIN(count - done, 256);
        for (i = 0; i < k; i++) {
            uint32_t pos = first + (uint32_t)(done + i);
            idx[i] = epoch < 0 ? pos : vae_shuffle_index(m->cfg.seed, epoch, pos, (uint32_t)d->n);
        }
        vae_data_batch(d, idx, k, m->layers[0].y + (size_t)done * m->in_size);
    }
}

VAEDEF vae_result vae_model_train_epoch(vae_model *m, const vae_data *d, vae_progress_fn fn, void *user, vae_stats *out)
{
    vae_progress pr;
    vae_result r;
    int B = m->cfg.batch, s;
    if ((r = vae__data_fits(m, d)) != VAE_OK) return r;
    if (d->n < B) return vae__fail(m->error, VAE_ERROR_INVALID_ARGUMENT, "data set of %d images is smaller than a batch of %d", d->n, B);
    memset(&pr, 0, sizeof pr);
    pr.steps = d->n / B;
    pr.epoch = m->epoch;
    for (s = 0; s < pr.steps; s++) {
        vae_stats st;
        vae__gather(m, d, (uint32_t)s * (uint32_t)B, B, m->epoch);
        if ((r = vae_model_train_step(m, m->layers[0].y, B, &st)) != VAE_OK) return r;
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
    int done, k;
    if ((r = vae__data_fits(m, d)) != VAE_OK) return r;
    vae_rng_seed(&rng, seed);
    memset(&acc, 0, sizeof acc);
    for (done = 0; done < d->n; done += k) {
        k = VAE__MIN(d->n - done, m->cfg.batch);
        vae__gather(m, d, (uint32_t)done, k, -1);
        vae__evaluate_batch(m, m->layers[0].y, k, &rng, &acc);
    }
    if (out) *out = acc;
    return VAE_OK;
}

#ifndef VAE_NO_STDIO
/* ---------------------------------------------------------------------------------------------
   >>ckpt  safetensors reader / writer and atomic file output

   Checkpoints use the safetensors layout (see CHECKPOINTS.md):
       bytes 0..7        N, header length, u64 little-endian (includes padding)
       bytes 8..8+N      UTF-8 JSON object: {"__metadata__":{"k":"v",..}, "name":{"dtype":"F32",
                         "shape":[..], "data_offsets":[BEGIN,END]}, ..}
       bytes 8+N..       tensor data, little-endian, row-major; offsets relative to 8+N, END exclusive

   Internal API (everything static, nothing allocated outside VAE_MALLOC, no global state):

     enum { VAE__DT_F32 = 1, VAE__DT_I64, VAE__DT_U8 };
     vae__st_tensor { name, dtype, ndim, shape[8], begin, end, data }
     vae__st        { t, n, meta_key, meta_val, nmeta, mem }

     int  vae__st_parse(vae__st *st, const unsigned char *file, size_t size, char *err);
          0 = ok. Validates everything the format promises (list below). On error st is zeroed
          and holds nothing to free. On success:
            - st->t[0..n) is sorted by (begin, end, name); t[i].data points into `file`
              (file + 8 + N + begin), so the caller keeps `file` alive; data is NOT aligned:
              consumers memcpy. Names, keys and values are NUL-terminated, JSON-unescaped UTF-8.
            - meta_key/meta_val[0..nmeta) are sorted by key (strcmp).
            - every pointer lives in the single block st->mem.
          Rules enforced: file >= 8 bytes; N <= 100,000,000 and N <= size-8 (checked before any
          allocation); the header is valid UTF-8 and valid JSON with JSON whitespace allowed
          around the object; the top level is an object; "__metadata__" (at most once) is an
          object of string -> string with unique keys; every other key is a tensor entry, an
          object with exactly the keys dtype (F32|I64|U8), shape (array of at most 8 integers)
          and data_offsets (array of exactly 2 integers); integers are plain JSON integers in
          [0, 2^64-1] (no sign, fraction, exponent, leading zero or quotes); unknown keys inside
          an entry are errors; tensor names are unique after unescaping; the product of the
          nonzero dims times the element size fits in 64 bits and equals END-BEGIN; sorted by
          (BEGIN,END) the entries tile [0, size-8-N) exactly (BEGIN == running cursor, END >=
          BEGIN), which rules out holes, overlaps, truncation and trailing bytes.
          Deliberate restrictions beyond the format: strings may not contain U+0000 (our API
          uses C strings, and "a\u0000b" would otherwise alias "a"); nesting deeper than the
          schema is rejected at the first unexpected '[' or '{', so there is no recursion and
          depth is bounded by construction.
          Memory: the header is decoded twice (count, then fill) through a scratch of N+1
          bytes; the result block is n*sizeof(vae__st_tensor) + 2*nmeta pointers + the decoded
          string bytes, i.e. a small multiple of N, itself capped by the file size.
     void vae__st_free(vae__st *st);                       safe on a zeroed or freed st
     const vae__st_tensor *vae__st_find(const vae__st *st, const char *name);   linear scan
     const char *vae__st_meta(const vae__st *st, const char *key);  NULL if absent (bsearch)

     int  vae__file_read(const char *path, unsigned char **buf, size_t *size, char *err);
          Reads a whole file into a VAE_MALLOC'd buffer (caller VAE_FREEs). Rejects files larger
          than VAE__FILE_MAX (4 GiB on 64-bit hosts, SIZE_MAX-1 on 32-bit; may be predefined),
          non-seekable files (fseek/ftell fail: pipes, ttys), directories (fread fails, or ftell
          reports an absurd size), and files that change size while being read.
          Without POSIX stat() "regular file" is enforced through those checks. ftell returns
          long, so on LLP64 (Windows) files >= 2 GiB are rejected.

     vae__st_out { name, dtype, ndim, shape[8], data }   data: dtype elements, row-major, in
          host byte order; big-endian hosts are byte-swapped while writing.
     int  vae__st_save(const char *path, const vae__st_out *t, int n, const char *const *meta_key,
                       const char *const *meta_val, int nmeta, char *err);
     int  vae__st_save_ex(..same.., long long fail_at_byte, char *err);
          Header: '{', "__metadata__" first when nmeta > 0, then the entries in the given order
          with contiguous offsets, JSON-escaped strings, padded with spaces so 8+N % 8 == 0.
          Everything (names valid UTF-8 and unique, not "__metadata__", dtypes, ranks, byte
          sizes, offsets, N <= the reader's cap) is checked with overflow checks before the
          disk is touched; the file always re-parses with vae__st_parse.
     int  vae__file_write_atomic(const char *path, const void *data, size_t size, char *err);
     int  vae__file_write_atomic_ex(..same.., long long fail_at_byte, char *err);
          Atomic replacement, shared by every file vae.h writes (checkpoints, PNGs):
          write path + ".tmp" + 8 hex digits in the same directory (so rename never crosses a
          filesystem), check every fwrite, fflush, ferror, fsync (POSIX) / _commit (Windows),
          fclose, then rename over path; on POSIX also fsync the directory, best effort. On any
          failure the temp file is removed, path is untouched, and nonzero is returned.
          fail_at_byte >= 0 is a test hook: the write that would cross byte k writes the first
          k bytes and then fails like a full disk. Public entry points pass -1 (never).
          Windows: MSVCRT rename() refuses to replace an existing file, so after a failed
          rename we remove the target and rename again; a crash in that window leaves no
          target but a complete temp file. Temp names mix the path with stack/heap addresses
          (ASLR) and skip names that exist; two processes saving the same path at the same
          instant are not supported. The new file gets default permissions (0666 & ~umask on
          POSIX), and a symlink at path is replaced by the file, not followed.
     Entry points are marked VAE__MAYBE_UNUSED (GCC/Clang attribute) so a build that never
     calls one of them stays warning-free under -Wall.

   fsync under -std=c99: glibc hides fileno() (other libcs may hide fsync() too) unless a POSIX feature
   macro was defined before the *first* libc #include, which a header pasted after the user's
   includes cannot control. The prototypes are fixed by POSIX, so in strict C without feature
   macros we declare them ourselves (a compatible redeclaration is legal C); the names are
   parenthesised so a libc that defines fileno() as a function-like macro (BSD) does not
   expand them. C++ compilers predefine _GNU_SOURCE, so there <unistd.h> is enough.
   --------------------------------------------------------------------------------------------- */

#if defined(__unix__) || defined(__APPLE__)
#  if !defined(__cplusplus) && defined(__STRICT_ANSI__) && !defined(_POSIX_C_SOURCE) && \
      !defined(_XOPEN_SOURCE) && !defined(_GNU_SOURCE) && !defined(_DEFAULT_SOURCE) && \
      !defined(_BSD_SOURCE) && !defined(__APPLE__)
extern int (fileno)(FILE *);
extern int (fsync)(int);
#  else
#    include <unistd.h>
#  endif
#  define VAE__HAVE_FSYNC 1
#elif defined(_WIN32)
#  include <io.h> /* _commit, _fileno: flush the OS cache like fsync */
#endif

enum { VAE__DT_F32 = 1, VAE__DT_I64, VAE__DT_U8 };


#define VAE__ST_MAX_DIMS 8
#define VAE__ST_MAX_HEADER 100000000u /* the reference loader's cap */

#ifndef VAE__FILE_MAX
#  if SIZE_MAX > 0xFFFFFFFFu
#    define VAE__FILE_MAX ((size_t)1 << 32)
#  else
#    define VAE__FILE_MAX (SIZE_MAX - 1) /* one byte of slack for the +1 allocation */
#  endif
#endif

typedef struct vae__st_tensor {
    const char *name;
    int dtype;                          /* VAE__DT_* */
    int ndim;                           /* 0..8; 0 is a scalar */
    uint64_t shape[VAE__ST_MAX_DIMS];
    uint64_t begin, end;                /* relative to the data section, end exclusive */
    const unsigned char *data;          /* into the caller's file buffer; unaligned */
} vae__st_tensor;

typedef struct vae__st {
    vae__st_tensor *t;
    int n;
    const char **meta_key;
    const char **meta_val;
    int nmeta;
    void *mem; /* the one allocation that t, meta_* and all strings live in */
} vae__st;

typedef struct vae__st_out {
    const char *name;
    int dtype;
    int ndim;
    uint64_t shape[VAE__ST_MAX_DIMS];
    const void *data;
} vae__st_out;

static size_t vae__st_dtype_size(int dt)
{
    return dt == VAE__DT_F32 ? 4 : dt == VAE__DT_I64 ? 8 : dt == VAE__DT_U8 ? 1 : 0;
}

static const char *vae__st_dtype_name(int dt)
{
    return dt == VAE__DT_F32 ? "F32" : dt == VAE__DT_I64 ? "I64" : dt == VAE__DT_U8 ? "U8" : "?";
}

/* Byte size of a tensor. The product of the nonzero dims must fit in 64 bits even when a zero
   dim makes the true size 0, so consumers may multiply any subset of dims without checking. */
static int vae__st_nbytes(int dtype, int ndim, const uint64_t *shape, uint64_t *out)
{
    uint64_t p = vae__st_dtype_size(dtype);
    int i, zero = 0;
    for (i = 0; i < ndim; i++) {
        if (shape[i] == 0) { zero = 1; continue; }
        if (p > UINT64_MAX / shape[i]) return 1;
        p *= shape[i];
    }
    *out = zero ? 0 : p;
    return 0;
}

/* Length of the well-formed UTF-8 sequence at p (1..4), 0 if ill-formed: rejects overlongs
   (C0, C1, E0 80..9F, F0 80..8F), UTF-16 surrogates (ED A0..BF) and code points > U+10FFFF. */
static size_t vae__utf8_seq(const unsigned char *p, size_t avail)
{
    unsigned c = p[0];
    unsigned lo = 0x80, hi = 0xBF;
    size_t n, i;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else return 0;
    if (avail < n) return 0;
    if (p[1] < lo || p[1] > hi) return 0;
    for (i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xBF) return 0;
    return n;
}

static int vae__utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t left = strlen(s), k;
    while (left) {
        k = vae__utf8_seq(p, left);
        if (!k) return 0;
        p += k;
        left -= k;
    }
    return 1;
}

/* Quote an untrusted name for an error message: at most 48 bytes cut on a UTF-8 boundary,
   control bytes shown as '?', so a hostile name cannot flood or garble the 256-byte message.
   q must hold 64 bytes. */
static const char *vae__st_q(char *q, const char *s)
{
    size_t i = 0, k, left = strlen(s);
    const unsigned char *p = (const unsigned char *)s;
    while (left && i < 48) {
        k = vae__utf8_seq(p, left);
        if (k == 0) k = 1;
        if (i + k > 48) break;
        if (k == 1) q[i++] = (char)((p[0] < 0x20 || p[0] == 0x7F || p[0] >= 0x80) ? '?' : p[0]);
        else { memcpy(q + i, p, k); i += k; }
        p += k;
        left -= k;
    }
    if (left) { memcpy(q + i, "...", 3); i += 3; }
    q[i] = 0;
    return q;
}

/* ---- header JSON parser ---------------------------------------------------------------------
   Schema-directed and iterative: the only containers are the top object, the __metadata__
   object, tensor entry objects and integer arrays, so any other nesting is a type error at its
   first byte and 100,000 '[' cost one comparison. Runs twice over the same bytes: pass 1
   (store == 0) validates, counts entries and measures persistent string bytes; pass 2 fills
   the block sized from those counts. Decoded strings are never longer than their JSON form
   (an escape of k bytes decodes to < k bytes, and the closing quote pays for the NUL). */
typedef struct vae__jp {
    const unsigned char *s, *p, *e; /* header start, cursor, end */
    uint64_t data_len;              /* bytes after the header */
    char *err;
    char *sb;                       /* decoded strings */
    size_t scap, slen, shigh;       /* shigh: high-water mark, incl. rewound scratch strings */
    int store;
    vae__st_tensor *t;
    const char **mk;
    int n, nmeta;
} vae__jp;

static void vae__jp_ws(vae__jp *j)
{
    while (j->p < j->e && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) j->p++;
}

static int vae__jp_unexpected(vae__jp *j, const char *expected)
{
    unsigned long off = (unsigned long)(j->p - j->s);
    if (j->p >= j->e)
        vae__errf(j->err, "header byte %lu: unexpected end of header, expected %s", off, expected);
    else if (*j->p >= 0x20 && *j->p < 0x7F)
        vae__errf(j->err, "header byte %lu: unexpected '%c', expected %s", off, *j->p, expected);
    else
        vae__errf(j->err, "header byte %lu: unexpected byte 0x%02X, expected %s", off, *j->p, expected);
    return 1;
}

static int vae__jp_expect(vae__jp *j, int c, const char *expected)
{
    vae__jp_ws(j);
    if (j->p >= j->e || *j->p != c) return vae__jp_unexpected(j, expected);
    j->p++;
    return 0;
}

static int vae__jp_put(vae__jp *j, const unsigned char *b, size_t n)
{
    if (n > j->scap - j->slen) { /* unreachable given the bound above; kept as a guard */
        vae__errf(j->err, "header: internal string buffer overflow");
        return 1;
    }
    memcpy(j->sb + j->slen, b, n);
    j->slen += n;
    if (j->slen > j->shigh) j->shigh = j->slen;
    return 0;
}

static long vae__jp_hex4(const unsigned char *p)
{
    long v = 0;
    int i, d;
    for (i = 0; i < 4; i++) {
        unsigned c = p[i];
        if (c >= '0' && c <= '9') d = (int)(c - '0');
        else if (c >= 'a' && c <= 'f') d = (int)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') d = (int)(c - 'A' + 10);
        else return -1;
        v = v * 16 + d;
    }
    return v;
}

/* Decode the JSON string at the cursor into j->sb (NUL-terminated); *out points at it. */
static int vae__jp_str(vae__jp *j, const char **out)
{
    size_t start = j->slen;
    unsigned char u[4];
    vae__jp_ws(j);
    if (j->p >= j->e || *j->p != '"') return vae__jp_unexpected(j, "a string");
    j->p++;
    for (;;) {
        unsigned c;
        unsigned long off = (unsigned long)(j->p - j->s);
        if (j->p >= j->e) {
            vae__errf(j->err, "header byte %lu: unterminated string", off);
            return 1;
        }
        c = *j->p;
        if (c == '"') { j->p++; break; }
        if (c < 0x20) {
            vae__errf(j->err, "header byte %lu: raw control byte 0x%02X in a string", off, c);
            return 1;
        }
        if (c == '\\') {
            long cp, lo;
            size_t k;
            if (j->e - j->p < 2) {
                vae__errf(j->err, "header byte %lu: unterminated string", off);
                return 1;
            }
            c = j->p[1];
            j->p += 2;
            switch (c) {
            case '"': case '\\': case '/': u[0] = (unsigned char)c; break;
            case 'b': u[0] = 8; break;
            case 'f': u[0] = 12; break;
            case 'n': u[0] = 10; break;
            case 'r': u[0] = 13; break;
            case 't': u[0] = 9; break;
            case 'u':
                if (j->e - j->p < 4 || (cp = vae__jp_hex4(j->p)) < 0) {
                    vae__errf(j->err, "header byte %lu: bad \\u escape (need 4 hex digits)", off);
                    return 1;
                }
                j->p += 4;
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    if (j->e - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u' ||
                        (lo = vae__jp_hex4(j->p + 2)) < 0xDC00 || lo > 0xDFFF) {
                        vae__errf(j->err, "header byte %lu: high surrogate \\u%04lX not followed by a low surrogate", off, (unsigned long)cp);
                        return 1;
                    }
                    j->p += 6;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    vae__errf(j->err, "header byte %lu: lone low surrogate \\u%04lX", off, (unsigned long)cp);
                    return 1;
                }
                if (cp == 0) {
                    vae__errf(j->err, "header byte %lu: \\u0000 in a string is not supported", off);
                    return 1;
                }
                if (cp < 0x80) { u[0] = (unsigned char)cp; k = 1; }
                else if (cp < 0x800) {
                    u[0] = (unsigned char)(0xC0 | (cp >> 6));
                    u[1] = (unsigned char)(0x80 | (cp & 63)); k = 2;
                } else if (cp < 0x10000) {
                    u[0] = (unsigned char)(0xE0 | (cp >> 12));
                    u[1] = (unsigned char)(0x80 | ((cp >> 6) & 63));
                    u[2] = (unsigned char)(0x80 | (cp & 63)); k = 3;
                } else {
                    u[0] = (unsigned char)(0xF0 | (cp >> 18));
                    u[1] = (unsigned char)(0x80 | ((cp >> 12) & 63));
                    u[2] = (unsigned char)(0x80 | ((cp >> 6) & 63));
                    u[3] = (unsigned char)(0x80 | (cp & 63)); k = 4;
                }
                if (vae__jp_put(j, u, k)) return 1;
                continue;
            default:
                vae__errf(j->err, "header byte %lu: invalid escape in a string", off);
                return 1;
            }
            if (vae__jp_put(j, u, 1)) return 1;
        } else {
            size_t k = vae__utf8_seq(j->p, (size_t)(j->e - j->p));
            if (!k) {
                vae__errf(j->err, "header byte %lu: invalid UTF-8 (byte 0x%02X)", off, c);
                return 1;
            }
            if (vae__jp_put(j, j->p, k)) return 1;
            j->p += k;
        }
    }
    u[0] = 0;
    if (vae__jp_put(j, u, 1)) return 1;
    *out = j->sb + start;
    return 0;
}

/* A JSON number that must be a plain integer in [0, 2^64-1]; ctx names it in errors. */
static int vae__jp_u64(vae__jp *j, uint64_t *v, const char *ctx)
{
    uint64_t x = 0;
    unsigned c;
    vae__jp_ws(j);
    if (j->p >= j->e) return vae__jp_unexpected(j, "an integer");
    c = *j->p;
    if (c == '-') { vae__errf(j->err, "%s is negative", ctx); return 1; }
    if (c == '"') { vae__errf(j->err, "%s is a string, expected an integer", ctx); return 1; }
    if (c < '0' || c > '9') {
        vae__errf(j->err, "%s is not an integer", ctx);
        return 1;
    }
    if (c == '0' && j->e - j->p > 1 && j->p[1] >= '0' && j->p[1] <= '9') {
        vae__errf(j->err, "%s has a leading zero (invalid JSON)", ctx);
        return 1;
    }
    while (j->p < j->e && *j->p >= '0' && *j->p <= '9') {
        unsigned d = (unsigned)(*j->p - '0');
        if (x > (UINT64_MAX - d) / 10) {
            vae__errf(j->err, "%s exceeds 2^64-1", ctx);
            return 1;
        }
        x = x * 10 + d;
        j->p++;
    }
    if (j->p < j->e && *j->p == '.') { vae__errf(j->err, "%s has a fraction, expected an integer", ctx); return 1; }
    if (j->p < j->e && (*j->p == 'e' || *j->p == 'E')) {
        vae__errf(j->err, "%s has an exponent, expected a plain integer", ctx);
        return 1;
    }
    *v = x;
    return 0;
}

/* '[' integers ']' with at most maxn entries. */
static int vae__jp_uarr(vae__jp *j, const char *qn, const char *field, uint64_t *out, int maxn, int *count)
{
    char ctx[128];
    int k = 0;
    vae__jp_ws(j);
    if (j->p >= j->e || *j->p != '[') {
        vae__errf(j->err, "tensor '%s': %s must be an array of integers", qn, field);
        return 1;
    }
    j->p++;
    vae__jp_ws(j);
    if (j->p < j->e && *j->p == ']') { j->p++; *count = 0; return 0; }
    for (;;) {
        if (k == maxn) {
            if (maxn == 2) vae__errf(j->err, "tensor '%s': data_offsets must have exactly 2 entries (got more)", qn);
            else vae__errf(j->err, "tensor '%s': %s has more than %d dimensions", qn, field, maxn);
            return 1;
        }
        snprintf(ctx, sizeof ctx, "tensor '%s': %s[%d]", qn, field, k);
        if (vae__jp_u64(j, &out[k], ctx)) return 1;
        k++;
        vae__jp_ws(j);
        if (j->p < j->e && *j->p == ',') { j->p++; continue; }
        if (j->p < j->e && *j->p == ']') { j->p++; break; }
        return vae__jp_unexpected(j, "',' or ']' in an integer array");
    }
    *count = k;
    return 0;
}

static int vae__jp_tensor(vae__jp *j, const char *name)
{
    char q[64], q2[64];
    int have = 0, dtype = 0, ndim = 0, noff = 0;
    uint64_t shape[VAE__ST_MAX_DIMS] = {0}, off[2] = {0, 0}, nb = 0;
    vae__st_q(q, name);
    vae__jp_ws(j);
    if (j->p >= j->e || *j->p != '{') {
        vae__errf(j->err, "tensor '%s': entry must be a JSON object", q);
        return 1;
    }
    j->p++;
    vae__jp_ws(j);
    if (j->p < j->e && *j->p == '}') j->p++;
    else for (;;) {
        const char *key, *val;
        size_t mark = j->slen; /* keys and dtype strings are scratch: rewind after use */
        int bit;
        if (vae__jp_str(j, &key)) return 1;
        if (vae__jp_expect(j, ':', "':'")) return 1;
        bit = !strcmp(key, "dtype") ? 1 : !strcmp(key, "shape") ? 2 : !strcmp(key, "data_offsets") ? 4 : 0;
        if (!bit) {
            vae__errf(j->err, "tensor '%s': unknown key '%s'", q, vae__st_q(q2, key));
            return 1;
        }
        if (have & bit) {
            vae__errf(j->err, "tensor '%s': duplicate key '%s'", q, key);
            return 1;
        }
        have |= bit;
        if (bit == 1) {
            vae__jp_ws(j);
            if (j->p >= j->e || *j->p != '"') {
                vae__errf(j->err, "tensor '%s': dtype must be a string", q);
                return 1;
            }
            if (vae__jp_str(j, &val)) return 1;
            dtype = !strcmp(val, "F32") ? VAE__DT_F32 : !strcmp(val, "I64") ? VAE__DT_I64
                  : !strcmp(val, "U8") ? VAE__DT_U8 : 0;
            if (!dtype) {
                vae__errf(j->err, "tensor '%s': unsupported dtype '%s' (vae.h reads F32, I64, U8)", q, vae__st_q(q2, val));
                return 1;
            }
        } else if (bit == 2) {
            if (vae__jp_uarr(j, q, "shape", shape, VAE__ST_MAX_DIMS, &ndim)) return 1;
        } else {
            if (vae__jp_uarr(j, q, "data_offsets", off, 2, &noff)) return 1;
            if (noff != 2) {
                vae__errf(j->err, "tensor '%s': data_offsets must have exactly 2 entries (got %d)", q, noff);
                return 1;
            }
        }
        j->slen = mark;
        vae__jp_ws(j);
        if (j->p < j->e && *j->p == ',') { j->p++; continue; }
        if (j->p < j->e && *j->p == '}') { j->p++; break; }
        return vae__jp_unexpected(j, "',' or '}' in a tensor entry");
    }
    if (have != 7) {
        vae__errf(j->err, "tensor '%s': missing %s", q,
                  !(have & 1) ? "dtype" : !(have & 2) ? "shape" : "data_offsets");
        return 1;
    }
    if (off[1] < off[0]) {
        vae__errf(j->err, "tensor '%s': data_offsets end %llu < begin %llu", q,
                  (unsigned long long)off[1], (unsigned long long)off[0]);
        return 1;
    }
    if (off[1] > j->data_len) {
        vae__errf(j->err, "tensor '%s': data_offsets end %llu is past the end of the file (data section is %llu bytes)",
                  q, (unsigned long long)off[1], (unsigned long long)j->data_len);
        return 1;
    }
    if (vae__st_nbytes(dtype, ndim, shape, &nb)) {
        vae__errf(j->err, "tensor '%s': shape is too large (byte size overflows 64 bits)", q);
        return 1;
    }
    if (nb != off[1] - off[0]) {
        vae__errf(j->err, "tensor '%s': shape and dtype %s need %llu bytes but data_offsets span %llu", q,
                  vae__st_dtype_name(dtype), (unsigned long long)nb, (unsigned long long)(off[1] - off[0]));
        return 1;
    }
    if (j->n == INT_MAX) { vae__errf(j->err, "header: too many tensors"); return 1; }
    if (j->store) {
        vae__st_tensor *t = &j->t[j->n];
        t->name = name;
        t->dtype = dtype;
        t->ndim = ndim;
        memset(t->shape, 0, sizeof t->shape);
        if (ndim) memcpy(t->shape, shape, (size_t)ndim * sizeof shape[0]);
        t->begin = off[0];
        t->end = off[1];
        t->data = NULL;
    }
    j->n++;
    return 0;
}

static int vae__jp_meta(vae__jp *j)
{
    char q[64];
    vae__jp_ws(j);
    if (j->p >= j->e || *j->p != '{') {
        vae__errf(j->err, "__metadata__ must be a JSON object of string values (a tensor may not be named __metadata__)");
        return 1;
    }
    j->p++;
    vae__jp_ws(j);
    if (j->p < j->e && *j->p == '}') { j->p++; return 0; }
    for (;;) {
        const char *key, *val;
        if (vae__jp_str(j, &key)) return 1;
        if (vae__jp_expect(j, ':', "':'")) return 1;
        vae__jp_ws(j);
        if (j->p >= j->e || *j->p != '"') {
            vae__errf(j->err, "__metadata__ key '%s': value must be a string (__metadata__ maps strings to strings; no tensor may be named __metadata__)", vae__st_q(q, key));
            return 1;
        }
        /* the value is decoded right after the key's NUL; vae__st_parse relies on that to
           re-pair keys and values after sorting the keys alone */
        if (vae__jp_str(j, &val)) return 1;
        if (j->nmeta == INT_MAX) { vae__errf(j->err, "header: too many metadata entries"); return 1; }
        if (j->store) j->mk[j->nmeta] = key;
        j->nmeta++;
        vae__jp_ws(j);
        if (j->p < j->e && *j->p == ',') { j->p++; continue; }
        if (j->p < j->e && *j->p == '}') { j->p++; return 0; }
        return vae__jp_unexpected(j, "',' or '}' in __metadata__");
    }
}

static int vae__jp_header(vae__jp *j)
{
    int seen_meta = 0;
    vae__jp_ws(j);
    if (j->p >= j->e) { vae__errf(j->err, "header is empty (expected a JSON object)"); return 1; }
    if (*j->p != '{') return vae__jp_unexpected(j, "'{' (the header must be a JSON object)");
    j->p++;
    vae__jp_ws(j);
    if (j->p < j->e && *j->p == '}') j->p++;
    else for (;;) {
        const char *key;
        size_t mark = j->slen;
        if (vae__jp_str(j, &key)) return 1;
        if (vae__jp_expect(j, ':', "':'")) return 1;
        if (!strcmp(key, "__metadata__")) {
            if (seen_meta) { vae__errf(j->err, "header: duplicate __metadata__"); return 1; }
            seen_meta = 1;
            j->slen = mark;
            if (vae__jp_meta(j)) return 1;
        } else if (vae__jp_tensor(j, key)) return 1;
        vae__jp_ws(j);
        if (j->p < j->e && *j->p == ',') { j->p++; continue; }
        if (j->p < j->e && *j->p == '}') { j->p++; break; }
        return vae__jp_unexpected(j, "',' or '}' in the header object");
    }
    vae__jp_ws(j);
    if (j->p < j->e) return vae__jp_unexpected(j, "only whitespace after the closing '}'");
    return 0;
}

static int vae__st_cmp_name(const void *a, const void *b)
{
    return strcmp(((const vae__st_tensor *)a)->name, ((const vae__st_tensor *)b)->name);
}

static int vae__st_cmp_off(const void *a, const void *b)
{
    const vae__st_tensor *x = (const vae__st_tensor *)a, *y = (const vae__st_tensor *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return strcmp(x->name, y->name); /* unique names make the order total, hence deterministic */
}

static int vae__st_cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

VAE__MAYBE_UNUSED static void vae__st_free(vae__st *st)
{
    if (!st) return;
    VAE_FREE(st->mem);
    memset(st, 0, sizeof *st);
}

VAE__MAYBE_UNUSED static int vae__st_parse(vae__st *st, const unsigned char *file, size_t size, char *err)
{
    char q[64], q2[64];
    vae__jp j;
    uint64_t hlen, cursor;
    size_t tbytes, pbytes, total;
    char *scratch;
    unsigned char *mem;
    int i;
    memset(st, 0, sizeof *st);
    if (size < 8) {
        vae__errf(err, "file is %lu bytes, too short for the 8-byte header length", (unsigned long)size);
        return 1;
    }
    hlen = 0;
    for (i = 7; i >= 0; i--) hlen = (hlen << 8) | file[i];
    if (hlen > VAE__ST_MAX_HEADER) {
        vae__errf(err, "header length %llu exceeds the %lu-byte limit", (unsigned long long)hlen,
                  (unsigned long)VAE__ST_MAX_HEADER);
        return 1;
    }
    if (hlen > (uint64_t)(size - 8)) {
        vae__errf(err, "header length %llu runs past the end of the %lu-byte file",
                  (unsigned long long)hlen, (unsigned long)size);
        return 1;
    }
    memset(&j, 0, sizeof j);
    j.s = j.p = file + 8;
    j.e = j.s + (size_t)hlen;
    j.data_len = (uint64_t)(size - 8 - (size_t)hlen);
    j.err = err;
    j.scap = (size_t)hlen + 1;
    scratch = (char *)VAE_MALLOC(j.scap);
    if (!scratch) { vae__errf(err, "out of memory (%lu bytes for the header)", (unsigned long)j.scap); return 1; }
    j.sb = scratch;
    if (vae__jp_header(&j)) { VAE_FREE(scratch); return 1; }
    VAE_FREE(scratch);

    /* both counts are < hlen <= 1e8, so only 32-bit size_t can overflow here */
    if ((size_t)j.n > SIZE_MAX / sizeof(vae__st_tensor) || (size_t)j.nmeta > SIZE_MAX / (2 * sizeof(char *))) {
        vae__errf(err, "header: too many entries for this address space");
        return 1;
    }
    tbytes = (size_t)j.n * sizeof(vae__st_tensor);
    pbytes = (size_t)j.nmeta * 2 * sizeof(char *);
    /* pass 2 must also hold the keys and dtype strings that are decoded and then rewound */
    if (pbytes > SIZE_MAX - tbytes || j.shigh > SIZE_MAX - tbytes - pbytes - 1) {
        vae__errf(err, "header: too many entries for this address space");
        return 1;
    }
    total = tbytes + pbytes + j.shigh + 1;
    mem = (unsigned char *)VAE_MALLOC(total);
    if (!mem) { vae__errf(err, "out of memory (%lu bytes for the tensor table)", (unsigned long)total); return 1; }
    j.t = (vae__st_tensor *)(void *)mem;
    j.mk = (const char **)(void *)(mem + tbytes);
    j.sb = (char *)(mem + tbytes + pbytes);
    j.scap = j.shigh + 1;
    j.slen = 0;
    j.p = j.s;
    j.n = j.nmeta = 0;
    j.store = 1;
    if (vae__jp_header(&j)) { VAE_FREE(mem); return 1; } /* cannot happen: same bytes as pass 1 */

    st->mem = mem;
    st->t = j.t;
    st->n = j.n;
    st->meta_key = j.mk;
    st->meta_val = j.mk + j.nmeta;
    st->nmeta = j.nmeta;

    if (st->n > 1) {
        qsort(st->t, (size_t)st->n, sizeof *st->t, vae__st_cmp_name);
        for (i = 1; i < st->n; i++)
            if (!strcmp(st->t[i - 1].name, st->t[i].name)) {
                vae__errf(err, "duplicate tensor name '%s'", vae__st_q(q, st->t[i].name));
                vae__st_free(st);
                return 1;
            }
    }
    if (st->nmeta > 1) {
        qsort(st->meta_key, (size_t)st->nmeta, sizeof(char *), vae__st_cmp_str);
        for (i = 1; i < st->nmeta; i++)
            if (!strcmp(st->meta_key[i - 1], st->meta_key[i])) {
                vae__errf(err, "__metadata__: duplicate key '%s'", vae__st_q(q, st->meta_key[i]));
                vae__st_free(st);
                return 1;
            }
    }
    for (i = 0; i < st->nmeta; i++) st->meta_val[i] = st->meta_key[i] + strlen(st->meta_key[i]) + 1;

    if (st->n > 1) qsort(st->t, (size_t)st->n, sizeof *st->t, vae__st_cmp_off);
    cursor = 0;
    for (i = 0; i < st->n; i++) {
        vae__st_tensor *t = &st->t[i];
        if (t->begin > cursor) {
            vae__errf(err, "tensor '%s': data_offsets begin %llu leaves a gap (expected %llu)",
                      vae__st_q(q, t->name), (unsigned long long)t->begin, (unsigned long long)cursor);
            vae__st_free(st);
            return 1;
        }
        if (t->begin < cursor) {
            vae__errf(err, "tensor '%s': data_offsets [%llu,%llu] overlap tensor '%s' (ends at %llu)",
                      vae__st_q(q, t->name), (unsigned long long)t->begin, (unsigned long long)t->end,
                      vae__st_q(q2, st->t[i - 1].name), (unsigned long long)cursor);
            vae__st_free(st);
            return 1;
        }
        cursor = t->end;
        t->data = file + 8 + (size_t)hlen + (size_t)t->begin;
    }
    if (cursor != j.data_len) {
        vae__errf(err, "file has %llu trailing bytes after the last tensor's data",
                  (unsigned long long)(j.data_len - cursor));
        vae__st_free(st);
        return 1;
    }
    return 0;
}

VAE__MAYBE_UNUSED static const vae__st_tensor *vae__st_find(const vae__st *st, const char *name)
{
    int i;
    for (i = 0; i < st->n; i++)
        if (!strcmp(st->t[i].name, name)) return &st->t[i];
    return NULL;
}

VAE__MAYBE_UNUSED static const char *vae__st_meta(const vae__st *st, const char *key)
{
    int lo = 0, hi = st->nmeta - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2, c = strcmp(st->meta_key[mid], key);
        if (!c) return st->meta_val[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return NULL;
}

VAE__MAYBE_UNUSED static int vae__file_read(const char *path, unsigned char **buf, size_t *size, char *err)
{
    char q[64];
    FILE *f;
    long len;
    size_t n, got;
    unsigned char *b;
    *buf = NULL;
    *size = 0;
    f = fopen(path, "rb");
    if (!f) { vae__errf(err, "cannot open '%s' for reading", vae__st_q(q, path)); return 1; }
    if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        vae__errf(err, "'%s': cannot determine the size (not a seekable regular file?)", vae__st_q(q, path));
        fclose(f);
        return 1;
    }
    if ((unsigned long long)len > (unsigned long long)VAE__FILE_MAX) {
        vae__errf(err, "'%s': %llu bytes is larger than the %llu-byte limit", vae__st_q(q, path),
                  (unsigned long long)len, (unsigned long long)VAE__FILE_MAX);
        fclose(f);
        return 1;
    }
    n = (size_t)len;
    b = (unsigned char *)VAE_MALLOC(n + 1); /* +1: malloc(0) may return NULL */
    if (!b) {
        vae__errf(err, "'%s': out of memory (%lu bytes)", vae__st_q(q, path), (unsigned long)n);
        fclose(f);
        return 1;
    }
    got = fread(b, 1, n, f);
    if (got != n || ferror(f)) {
        vae__errf(err, "'%s': read error after %lu of %lu bytes", vae__st_q(q, path), (unsigned long)got, (unsigned long)n);
        VAE_FREE(b);
        fclose(f);
        return 1;
    }
    if (fgetc(f) != EOF) {
        vae__errf(err, "'%s': file grew while being read", vae__st_q(q, path));
        VAE_FREE(b);
        fclose(f);
        return 1;
    }
    fclose(f); /* read-only stream: nothing buffered that could be lost */
    *buf = b;
    *size = n;
    return 0;
}

/* ---- atomic file output -------------------------------------------------------------------- */
typedef struct vae__afile {
    FILE *f;
    char *tmp;          /* path + ".tmp" + 8 hex digits; VAE_MALLOC'd */
    const char *path;
    uint64_t written;
    long long fail_at;  /* test hook, -1 = never */
} vae__afile;

static void vae__afile_abort(vae__afile *a)
{
    if (a->f) { fclose(a->f); a->f = NULL; }
    if (a->tmp) { remove(a->tmp); VAE_FREE(a->tmp); a->tmp = NULL; }
}

static int vae__afile_open(vae__afile *a, const char *path, long long fail_at, char *err)
{
    static const char hex[] = "0123456789abcdef";
    char q[64];
    size_t plen = strlen(path);
    uint32_t h = 2166136261u;
    uintptr_t addr;
    int attempt;
    size_t i;
    memset(a, 0, sizeof *a);
    a->path = path;
    a->fail_at = fail_at;
    if (plen > SIZE_MAX - 16) { vae__errf(err, "path too long"); return 1; }
    a->tmp = (char *)VAE_MALLOC(plen + 16);
    if (!a->tmp) { vae__errf(err, "out of memory"); return 1; }
    /* No global counter allowed: mix the path with a stack and a heap address, which ASLR
       varies per process, and step on collisions with an existing file. */
    for (i = 0; i < plen; i++) h = (h ^ (unsigned char)path[i]) * 16777619u;
    addr = (uintptr_t)(void *)&h ^ ((uintptr_t)(void *)a->tmp << 7);
    for (i = 0; i < sizeof addr; i++) h = (h ^ (uint32_t)((addr >> (8 * i)) & 255)) * 16777619u;
    memcpy(a->tmp, path, plen);
    memcpy(a->tmp + plen, ".tmp", 4);
    for (attempt = 0; attempt < 64; attempt++) {
        FILE *probe;
        uint32_t x = h + (uint32_t)attempt * 0x9E3779B9u;
        x ^= x >> 15; x *= 0x2C1B3C6Du; x ^= x >> 12;
        for (i = 0; i < 8; i++) a->tmp[plen + 4 + i] = hex[(x >> (28 - 4 * i)) & 15];
        a->tmp[plen + 12] = 0;
        probe = fopen(a->tmp, "rb");
        if (probe) { fclose(probe); continue; }
        a->f = fopen(a->tmp, "wb");
        if (!a->f) {
            vae__errf(err, "cannot create temporary file next to '%s'", vae__st_q(q, path));
            VAE_FREE(a->tmp);
            a->tmp = NULL; /* nothing was created, so nothing to remove */
            return 1;
        }
        return 0;
    }
    vae__errf(err, "cannot find an unused temporary name next to '%s'", vae__st_q(q, path));
    VAE_FREE(a->tmp);
    a->tmp = NULL;
    return 1;
}

/* On failure the temp file is already removed. */
static int vae__afile_write(vae__afile *a, const void *p, size_t n, char *err)
{
    char q[64];
    if (a->fail_at >= 0 && (uint64_t)n > (uint64_t)a->fail_at - a->written) {
        size_t k = (size_t)((uint64_t)a->fail_at - a->written);
        if (k) fwrite(p, 1, k, a->f);
        vae__errf(err, "writing '%s': simulated write failure at byte %lld", vae__st_q(q, a->path), a->fail_at);
        vae__afile_abort(a);
        return 1;
    }
    if (n && fwrite(p, 1, n, a->f) != n) {
        vae__errf(err, "writing '%s': write failed after %llu bytes (disk full?)", vae__st_q(q, a->path),
                  (unsigned long long)a->written);
        vae__afile_abort(a);
        return 1;
    }
    a->written += n;
    return 0;
}

static int vae__afile_commit(vae__afile *a, char *err)
{
    char q[64];
    int rc;
    if (fflush(a->f) != 0 || ferror(a->f)) {
        vae__errf(err, "writing '%s': flush failed (disk full?)", vae__st_q(q, a->path));
        vae__afile_abort(a);
        return 1;
    }
#if defined(VAE__HAVE_FSYNC)
    if (fsync(fileno(a->f)) != 0) {
        vae__errf(err, "writing '%s': fsync failed", vae__st_q(q, a->path));
        vae__afile_abort(a);
        return 1;
    }
#elif defined(_WIN32)
    if (_commit(_fileno(a->f)) != 0) {
        vae__errf(err, "writing '%s': _commit failed", vae__st_q(q, a->path));
        vae__afile_abort(a);
        return 1;
    }
#endif
    rc = fclose(a->f);
    a->f = NULL; /* closed even when fclose fails: never fclose twice */
    if (rc != 0) {
        vae__errf(err, "writing '%s': close failed (disk full?)", vae__st_q(q, a->path));
        vae__afile_abort(a);
        return 1;
    }
    rc = rename(a->tmp, a->path);
#if defined(_WIN32)
    if (rc != 0) rc = (remove(a->path) != 0) || rename(a->tmp, a->path) != 0;
#endif
    if (rc != 0) {
        vae__errf(err, "cannot rename the temporary file over '%s'", vae__st_q(q, a->path));
        vae__afile_abort(a);
        return 1;
    }
#if defined(VAE__HAVE_FSYNC)
    {
        /* Make the rename itself durable. Best effort: the new file is already in place, so a
           failure here must not be reported as "target untouched". */
        char *d = a->tmp;
        char *slash = strrchr(strcpy(d, a->path), '/');
        FILE *df;
        if (!slash) strcpy(d, ".");
        else if (slash == d) d[1] = 0;
        else *slash = 0;
        df = fopen(d, "r");
        if (df) { (void)fsync(fileno(df)); fclose(df); }
    }
#endif
    VAE_FREE(a->tmp);
    a->tmp = NULL;
    return 0;
}

VAE__MAYBE_UNUSED static int vae__file_write_atomic_ex(const char *path, const void *data, size_t size, long long fail_at, char *err)
{
    vae__afile a;
    if (vae__afile_open(&a, path, fail_at, err)) return 1;
    if (vae__afile_write(&a, data, size, err)) return 1;
    return vae__afile_commit(&a, err);
}

VAE__MAYBE_UNUSED static int vae__file_write_atomic(const char *path, const void *data, size_t size, char *err)
{
    return vae__file_write_atomic_ex(path, data, size, -1, err);
}

/* ---- safetensors writer -------------------------------------------------------------------- */
typedef struct vae__sbuf { char *b; size_t n; int ovf; } vae__sbuf; /* b == NULL: measure only */

static void vae__sb_putn(vae__sbuf *s, const char *p, size_t n)
{
    if (s->ovf) return;
    if (n > SIZE_MAX - s->n) { s->ovf = 1; return; }
    if (s->b) memcpy(s->b + s->n, p, n);
    s->n += n;
}

static void vae__sb_puts(vae__sbuf *s, const char *p) { vae__sb_putn(s, p, strlen(p)); }

static void vae__sb_u64(vae__sbuf *s, uint64_t v)
{
    char d[20];
    int i = 20;
    do { d[--i] = (char)('0' + (int)(v % 10)); v /= 10; } while (v);
    vae__sb_putn(s, d + i, (size_t)(20 - i));
}

static void vae__sb_jstr(vae__sbuf *s, const char *str)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)str;
    vae__sb_putn(s, "\"", 1);
    for (; *p; p++) {
        char e[7];
        if (*p == '"' || *p == '\\') { e[0] = '\\'; e[1] = (char)*p; vae__sb_putn(s, e, 2); }
        else if (*p == '\n') vae__sb_putn(s, "\\n", 2);
        else if (*p == '\t') vae__sb_putn(s, "\\t", 2);
        else if (*p == '\r') vae__sb_putn(s, "\\r", 2);
        else if (*p < 0x20) {
            memcpy(e, "\\u00", 4);
            e[4] = hex[*p >> 4];
            e[5] = hex[*p & 15];
            vae__sb_putn(s, e, 6);
        } else vae__sb_putn(s, (const char *)p, 1); /* UTF-8 passes through: validated before */
    }
    vae__sb_putn(s, "\"", 1);
}

/* Emits the JSON header without padding; the caller measures first (s->b == NULL). */
static void vae__st_emit(vae__sbuf *s, const vae__st_out *t, int n, const char *const *mk,
                         const char *const *mv, int nmeta)
{
    uint64_t cursor = 0, nb = 0;
    int i, d;
    vae__sb_putn(s, "{", 1);
    if (nmeta > 0) {
        vae__sb_puts(s, "\"__metadata__\":{");
        for (i = 0; i < nmeta; i++) {
            if (i) vae__sb_putn(s, ",", 1);
            vae__sb_jstr(s, mk[i]);
            vae__sb_putn(s, ":", 1);
            vae__sb_jstr(s, mv[i]);
        }
        vae__sb_putn(s, "}", 1);
    }
    for (i = 0; i < n; i++) {
        if (i || nmeta > 0) vae__sb_putn(s, ",", 1);
        vae__sb_jstr(s, t[i].name);
        vae__sb_puts(s, ":{\"dtype\":\"");
        vae__sb_puts(s, vae__st_dtype_name(t[i].dtype));
        vae__sb_puts(s, "\",\"shape\":[");
        for (d = 0; d < t[i].ndim; d++) {
            if (d) vae__sb_putn(s, ",", 1);
            vae__sb_u64(s, t[i].shape[d]);
        }
        vae__sb_puts(s, "],\"data_offsets\":[");
        (void)vae__st_nbytes(t[i].dtype, t[i].ndim, t[i].shape, &nb); /* validated by the caller */
        vae__sb_u64(s, cursor);
        vae__sb_putn(s, ",", 1);
        cursor += nb;
        vae__sb_u64(s, cursor);
        vae__sb_puts(s, "]}");
    }
    vae__sb_putn(s, "}", 1);
}

static int vae__is_big_endian(void)
{
    const uint32_t one = 1;
    unsigned char c;
    memcpy(&c, &one, 1);
    return c == 0;
}

VAE__MAYBE_UNUSED static int vae__st_save_ex(const char *path, const vae__st_out *t, int n, const char *const *mk,
                           const char *const *mv, int nmeta, long long fail_at, char *err)
{
    char q[64];
    uint64_t data_total = 0, nb = 0, hlen;
    size_t hsize, pad, cnt;
    const char **sorted;
    vae__sbuf sb;
    vae__afile a;
    unsigned char *hdr;
    int i, k;
    if (n < 0 || nmeta < 0 || (n > 0 && !t) || (nmeta > 0 && (!mk || !mv)) || !path) {
        vae__errf(err, "vae__st_save: invalid arguments");
        return 1;
    }
    for (i = 0; i < n; i++) {
        if (!t[i].name) { vae__errf(err, "tensor #%d has no name", i); return 1; }
        vae__st_q(q, t[i].name);
        if (!vae__utf8_valid(t[i].name)) { vae__errf(err, "tensor '%s': name is not valid UTF-8", q); return 1; }
        if (!strcmp(t[i].name, "__metadata__")) { vae__errf(err, "a tensor may not be named __metadata__"); return 1; }
        if (!vae__st_dtype_size(t[i].dtype)) { vae__errf(err, "tensor '%s': unknown dtype %d", q, t[i].dtype); return 1; }
        if (t[i].ndim < 0 || t[i].ndim > VAE__ST_MAX_DIMS) {
            vae__errf(err, "tensor '%s': rank %d is outside 0..%d", q, t[i].ndim, VAE__ST_MAX_DIMS);
            return 1;
        }
        if (vae__st_nbytes(t[i].dtype, t[i].ndim, t[i].shape, &nb) || nb > (uint64_t)SIZE_MAX ||
            nb > UINT64_MAX - data_total) {
            vae__errf(err, "tensor '%s': byte size overflows", q);
            return 1;
        }
        if (nb && !t[i].data) { vae__errf(err, "tensor '%s': data is NULL", q); return 1; }
        data_total += nb;
    }
    for (i = 0; i < nmeta; i++) {
        if (!mk[i] || !mv[i]) { vae__errf(err, "metadata entry #%d is NULL", i); return 1; }
        if (!vae__utf8_valid(mk[i]) || !vae__utf8_valid(mv[i])) {
            vae__errf(err, "metadata '%s': not valid UTF-8", vae__st_q(q, mk[i]));
            return 1;
        }
    }
    /* Duplicates: sort copies of the names (the reference loader would silently keep the last). */
    cnt = (size_t)(n > nmeta ? n : nmeta);
    if (cnt > 1) {
        if (cnt > SIZE_MAX / sizeof(char *)) { vae__errf(err, "too many tensors"); return 1; }
        sorted = (const char **)VAE_MALLOC(cnt * sizeof(char *));
        if (!sorted) { vae__errf(err, "out of memory"); return 1; }
        for (k = 0; k < 2; k++) {
            int m = k ? nmeta : n;
            for (i = 0; i < m; i++) sorted[i] = k ? mk[i] : t[i].name;
            if (m > 1) qsort((void *)sorted, (size_t)m, sizeof(char *), vae__st_cmp_str);
            for (i = 1; i < m; i++)
                if (!strcmp(sorted[i - 1], sorted[i])) {
                    vae__errf(err, k ? "duplicate metadata key '%s'" : "duplicate tensor name '%s'",
                              vae__st_q(q, sorted[i]));
                    VAE_FREE((void *)sorted);
                    return 1;
                }
        }
        VAE_FREE((void *)sorted);
    }
    memset(&sb, 0, sizeof sb);
    vae__st_emit(&sb, t, n, mk, mv, nmeta);
    if (sb.ovf) { vae__errf(err, "header size overflows"); return 1; }
    pad = (8 - sb.n % 8) % 8; /* 8 + N is then a multiple of 8: aligned data for mmap readers */
    if (sb.n > VAE__ST_MAX_HEADER - pad) {
        vae__errf(err, "header would be %lu bytes, above the %lu-byte limit readers enforce",
                  (unsigned long)sb.n, (unsigned long)VAE__ST_MAX_HEADER);
        return 1;
    }
    hsize = sb.n + pad;
    hlen = (uint64_t)hsize;
    if (data_total > UINT64_MAX - 8 - hlen) { vae__errf(err, "file size overflows"); return 1; }
    hdr = (unsigned char *)VAE_MALLOC(8 + hsize);
    if (!hdr) { vae__errf(err, "out of memory (%lu-byte header)", (unsigned long)(8 + hsize)); return 1; }
    for (i = 0; i < 8; i++) hdr[i] = (unsigned char)(hlen >> (8 * i));
    sb.b = (char *)hdr + 8;
    sb.n = 0;
    vae__st_emit(&sb, t, n, mk, mv, nmeta);
    memset(hdr + 8 + sb.n, ' ', pad);

    if (vae__afile_open(&a, path, fail_at, err)) { VAE_FREE(hdr); return 1; }
    if (vae__afile_write(&a, hdr, 8 + hsize, err)) { VAE_FREE(hdr); return 1; }
    VAE_FREE(hdr);
    for (i = 0; i < n; i++) {
        size_t es = vae__st_dtype_size(t[i].dtype), len;
        (void)vae__st_nbytes(t[i].dtype, t[i].ndim, t[i].shape, &nb);
        len = (size_t)nb;
        if (es == 1 || !vae__is_big_endian()) {
            if (vae__afile_write(&a, t[i].data, len, err)) return 1;
        } else {
            /* big-endian host: swap each element through a bounce buffer (es divides 4096) */
            unsigned char tmp[4096];
            const unsigned char *src = (const unsigned char *)t[i].data;
            size_t off = 0, c, e, b;
            while (off < len) {
                c = len - off < sizeof tmp ? len - off : sizeof tmp;
                for (e = 0; e < c; e += es)
                    for (b = 0; b < es; b++) tmp[e + b] = src[off + e + es - 1 - b];
                if (vae__afile_write(&a, tmp, c, err)) return 1;
                off += c;
            }
        }
    }
    return vae__afile_commit(&a, err);
}

VAE__MAYBE_UNUSED static int vae__st_save(const char *path, const vae__st_out *t, int n, const char *const *meta_key,
                        const char *const *meta_val, int nmeta, char *err)
{
    return vae__st_save_ex(path, t, n, meta_key, meta_val, nmeta, -1, err);
}
#endif /* VAE_NO_STDIO */

/* >>ckpt: models to and from safetensors files */

#ifndef VAE_NO_STDIO

#define VAE__FORMAT_NAME    "vae.h"
#define VAE__FORMAT_VERSION "1"

static const char *vae__loss_names[] = { "default", "bce", "mse" };
static const char *vae__reduce_names[] = { "default", "sum", "mean" };
static const char *vae__optim_names[] = { "default", "adam", "adamw", "sgd" };
VAE__STATIC_ASSERT(loss_names, VAE__COUNTOF(vae__loss_names) == VAE_LOSS_COUNT);
VAE__STATIC_ASSERT(reduce_names, VAE__COUNTOF(vae__reduce_names) == VAE_REDUCE_COUNT);
VAE__STATIC_ASSERT(optim_names, VAE__COUNTOF(vae__optim_names) == VAE_OPTIM_COUNT);

/* Metadata is string -> string. Floats are written with 9 significant digits, which
   round-trips every float exactly through strtod. */
enum { VAE__META_MAX = 24, VAE__META_VAL = 48 };
typedef struct vae__meta {
    const char *key[VAE__META_MAX];
    const char *val[VAE__META_MAX];
    char        buf[VAE__META_MAX][VAE__META_VAL];
    int         n;
} vae__meta;

static int vae__hex32(const char *s, uint32_t *out)
{
    uint32_t v = 0;
    int i;
    for (i = 0; i < 8; i++) {
        char ch = s[i];
        int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
        if (d < 0) return -1;
        v = v << 4 | (uint32_t)d;
    }
    *out = v;
    return 0;
}

static void vae__meta_str(vae__meta *mt, const char *k, const char *v) { mt->key[mt->n] = k; mt->val[mt->n] = v; mt->n++; }
static void vae__meta_fmt(vae__meta *mt, const char *k, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(mt->buf[mt->n], VAE__META_VAL, fmt, ap);
    va_end(ap);
    vae__meta_str(mt, k, mt->buf[mt->n]);
}

static void vae__meta_build(const vae_model *m, int state, vae__meta *mt)
{
    const vae_config *c = &m->cfg;
    mt->n = 0;
    vae__meta_str(mt, "format", VAE__FORMAT_NAME);
    vae__meta_str(mt, "format_version", VAE__FORMAT_VERSION);
    vae__meta_str(mt, "arch", m->arch);
    vae__meta_str(mt, "loss", vae__loss_names[c->loss]);
    vae__meta_str(mt, "reduce", vae__reduce_names[c->reduce]);
    vae__meta_str(mt, "optim", vae__optim_names[c->optim]);
    vae__meta_fmt(mt, "beta", "%.9g", c->beta);
    vae__meta_fmt(mt, "beta_warmup", "%d", c->beta_warmup);
    vae__meta_fmt(mt, "logvar_clamp", "%.9g", c->logvar_clamp);
    vae__meta_fmt(mt, "lr", "%.9g", c->lr);
    vae__meta_fmt(mt, "beta1", "%.9g", c->beta1);
    vae__meta_fmt(mt, "beta2", "%.9g", c->beta2);
    vae__meta_fmt(mt, "eps", "%.9g", c->eps);
    vae__meta_fmt(mt, "momentum", "%.9g", c->momentum);
    vae__meta_fmt(mt, "weight_decay", "%.9g", c->weight_decay);
    vae__meta_fmt(mt, "clip", "%.9g", c->clip);
    vae__meta_fmt(mt, "batch", "%d", c->batch);
    vae__meta_fmt(mt, "seed", "%llu", (unsigned long long)c->seed);
    vae__meta_fmt(mt, "frozen_stats", "%d", c->frozen_stats);
    if (state) {
        vae__meta_fmt(mt, "step", "%lld", (long long)m->step);
        vae__meta_fmt(mt, "epoch", "%d", m->epoch);
        vae__meta_fmt(mt, "rng", "%08lx%08lx%08lx%08lx", (unsigned long)m->rng.s[0], (unsigned long)m->rng.s[1],
                      (unsigned long)m->rng.s[2], (unsigned long)m->rng.s[3]);
    }
}

/* The checksum makes corruption anywhere in a checkpoint an error instead of a silently
   different model: CRC-32 over the metadata (sorted by key, without "checksum" itself, as
   key NUL value NUL) and then over the tensor data. Names, shapes and offsets need no
   cover: a change there already fails the layout rules or the model's shape checks. */
static uint32_t vae__ckpt_crc(const char *const *key, const char *const *val, int n,
                              const vae__st_out *t, int nt, const unsigned char *data, size_t data_len)
{
    uint32_t crc = 0;
    int i, j, done = 0;
    const char *last = "";
    /* metadata in key order, without sorting in place: pick the next-larger key each time */
    for (;;) {
        int at = -1;
        for (j = 0; j < n; j++)
            if (strcmp(key[j], "checksum") != 0 && (done == 0 || strcmp(key[j], last) > 0) &&
                (at < 0 || strcmp(key[j], key[at]) < 0))
                at = j;
        if (at < 0) break;
        crc = vae__crc32(crc, (const unsigned char *)key[at], strlen(key[at]) + 1);
        crc = vae__crc32(crc, (const unsigned char *)val[at], strlen(val[at]) + 1);
        last = key[at]; done = 1;
    }
    for (i = 0; i < nt; i++) {
        size_t bytes = vae__st_dtype_size(t[i].dtype);
        for (j = 0; j < t[i].ndim; j++) bytes *= (size_t)t[i].shape[j];
        crc = vae__crc32(crc, (const unsigned char *)t[i].data, bytes);
    }
    if (data) crc = vae__crc32(crc, data, data_len);
    return crc;
}

VAEDEF vae_result vae_model_save(vae_model *m, const char *path, unsigned flags)
{
    int state = (flags & VAE_TRAINING_STATE) != 0, nt, ntot, i, k, n, copies;
    vae__st_out *out;
    char *names;
    vae__meta mt;
    vae_result r = VAE_OK;
    if (!m || !m->layers || !path) return m ? vae__fail(m->error, VAE_ERROR_INVALID_ARGUMENT, "save: no model or path") : VAE_ERROR_INVALID_ARGUMENT;
    if (state && !m->grads) return vae__fail(m->error, VAE_ERROR_INVALID_ARGUMENT, "save: an inference-only model has no training state");
    {   /* never write NaN weights: the previous checkpoint stays the last good one */
        char name[2 * VAE_NAME_MAX];
        size_t j;
        for (j = 0; j < m->nparams; j++)
            if (!isfinite(m->params[j]))
                return vae__fail(m->error, VAE_ERROR_NUMERIC, "save: tensor %s holds NaN or Inf; not saved",
                                 vae__first_nonfinite(m, m->params, name, sizeof name));
    }
    nt = vae_model_tensor_count(m);
    copies = 1 + (state && m->opt_m ? 1 : 0) + (state && m->opt_v ? 1 : 0);
    ntot = nt * copies + m->nlayers;   /* an upper bound: moments exist only for trained
                                          tensors; one num_batches_tracked per batchnorm */
    out = (vae__st_out *)VAE_MALLOC(sizeof(vae__st_out) * (size_t)ntot + 1);
    names = (char *)VAE_MALLOC((size_t)ntot * (2 * VAE_NAME_MAX + 16) + 1);
    if (!out || !names) {
        VAE_FREE(out); VAE_FREE(names);
        return vae__fail(m->error, VAE_ERROR_OUT_OF_MEMORY, "save: out of memory");
    }
    for (k = 0, n = 0; k < copies; k++) {
        const float *block = k == 0 ? m->params : (k == 1 && m->opt_m) ? m->opt_m : m->opt_v;
        const char *prefix = k == 0 ? "" : block == m->opt_m ? "optim.m." : "optim.v.";
        for (i = 0; i < nt; i++) {
            vae_tensor_info t;
            vae__st_out *o = &out[n];
            char *nm = names + (size_t)n * (2 * VAE_NAME_MAX + 16);
            int d;
            vae_model_tensor(m, i, &t);
            if (k && t.is_state) continue;
            snprintf(nm, 2 * VAE_NAME_MAX + 16, "%s%s", prefix, t.name);
            memset(o, 0, sizeof *o);
            o->name = nm; o->dtype = VAE__DT_F32; o->ndim = t.ndim;
            for (d = 0; d < t.ndim; d++) o->shape[d] = (uint64_t)t.shape[d];
            o->data = t.is_state ? t.data : block + (t.data - m->params);
            n++;
            if (!k && t.is_state && m->layers[t.layer].op == VAE_OP_BATCHNORM && t.data != m->layers[t.layer].state) {
                /* after running_var: PyTorch's num_batches_tracked (I64, shape []), which its
                   strict load_state_dict requires. vae.h counts optimizer steps, not forward
                   passes per layer: m->step (0 for a model that was never trained here). */
                o = &out[n];
                nm = names + (size_t)n * (2 * VAE_NAME_MAX + 16);
                snprintf(nm, 2 * VAE_NAME_MAX + 16, "%s.num_batches_tracked", m->layers[t.layer].name);
                memset(o, 0, sizeof *o);
                o->name = nm; o->dtype = VAE__DT_I64; o->ndim = 0; o->data = &m->step;
                n++;
            }
        }
    }
    ntot = n;
    vae__meta_build(m, state, &mt);
    vae__meta_fmt(&mt, "checksum", "crc32:%08lx", (unsigned long)vae__ckpt_crc(mt.key, mt.val, mt.n, out, ntot, NULL, 0));
    if (vae__st_save(path, out, ntot, mt.key, mt.val, mt.n, m->error) != 0) r = VAE_ERROR_IO;
    VAE_FREE(out); VAE_FREE(names);
    return r;
}

/* Strict numbers from metadata: the whole string must parse, and lie in [lo, hi]. */
static int vae__meta_num(const vae__st *st, const char *key, double lo, double hi, double *out, char *err)
{
    const char *v = vae__st_meta(st, key);
    char *end;
    double x;
    if (!v) { vae__errf(err, "checkpoint: metadata '%s' is missing", key); return -1; }
    x = strtod(v, &end);
    if (end == v || *end || !(x >= lo && x <= hi)) {
        vae__errf(err, "checkpoint: metadata '%s' = '%.40s' is not a number in [%g, %g]", key, v, lo, hi);
        return -1;
    }
    *out = x;
    return 0;
}

static int vae__meta_enum(const vae__st *st, const char *key, const char **names, int count, int *out, char *err)
{
    const char *v = vae__st_meta(st, key);
    int i;
    if (!v) { vae__errf(err, "checkpoint: metadata '%s' is missing", key); return -1; }
    for (i = 1; i < count; i++) if (strcmp(v, names[i]) == 0) { *out = i; return 0; }
    vae__errf(err, "checkpoint: metadata '%s' = '%.40s' is not a known value", key, v);
    return -1;
}

static int vae__meta_config(const vae__st *st, vae_config *c, char *err)
{
    double x[12];
    int e[3];
    static const char *keys[12] = { "beta", "beta_warmup", "logvar_clamp", "lr", "beta1", "beta2", "eps",
                                    "momentum", "weight_decay", "clip", "batch", "seed" };
    static const double hi[12] = { 1e6, 2e9, 1e4, 1e6, 1, 1, 1, 1, 1e3, 1e30, 1048576, 18446744073709551615.0 };
    int i;
    for (i = 0; i < 12; i++) if (vae__meta_num(st, keys[i], 0, hi[i], &x[i], err)) return -1;
    if (vae__meta_enum(st, "loss", vae__loss_names, VAE_LOSS_COUNT, &e[0], err) ||
        vae__meta_enum(st, "reduce", vae__reduce_names, VAE_REDUCE_COUNT, &e[1], err) ||
        vae__meta_enum(st, "optim", vae__optim_names, VAE_OPTIM_COUNT, &e[2], err))
        return -1;
    memset(c, 0, sizeof *c);
    c->beta = (float)x[0]; c->beta_warmup = (int)x[1]; c->logvar_clamp = (float)x[2]; c->lr = (float)x[3];
    c->beta1 = (float)x[4]; c->beta2 = (float)x[5]; c->eps = (float)x[6]; c->momentum = (float)x[7];
    c->weight_decay = (float)x[8]; c->clip = (float)x[9]; c->batch = (int)x[10];
    c->seed = strtoull(vae__st_meta(st, "seed"), NULL, 10);
    c->loss = (vae_loss)e[0]; c->reduce = (vae_reduce)e[1]; c->optim = (vae_optim)e[2];
    c->threads = 1;
    if (vae__st_meta(st, "frozen_stats")) {   /* older checkpoints lack it: 0 */
        double fz;
        if (vae__meta_num(st, "frozen_stats", 0, 1, &fz, err)) return -1;
        c->frozen_stats = (int)fz;
    }
    return 0;
}

/* Copies one model tensor (or optimizer moment) out of the file, checking dtype and shape.
   With dst NULL it only checks (dtype, shape, finite values). */
static vae_result vae__tensor_take(vae_model *m, const vae__st *st, const char *name, const vae_tensor_info *t, float *dst)
{
    const vae__st_tensor *f = vae__st_find(st, name);
    int d, ok;
    size_t n = 1, i;
    if (!f) return vae__fail(m->error, VAE_ERROR_MISMATCH, "checkpoint: tensor '%s' is missing", name);
    if (f->dtype != VAE__DT_F32) return vae__fail(m->error, VAE_ERROR_MISMATCH, "checkpoint: tensor '%s' is not F32", name);
    ok = f->ndim == t->ndim;
    for (d = 0; ok && d < t->ndim; d++) { ok = f->shape[d] == (uint64_t)t->shape[d]; n *= (size_t)t->shape[d]; }
    if (!ok) {
        char got[96], want[96];
        int at = 0;
        for (d = 0; d < f->ndim && at < 80; d++) at += snprintf(got + at, sizeof got - at, "%s%llu", d ? "," : "", (unsigned long long)f->shape[d]);
        if (!f->ndim) got[0] = 0;
        at = 0; want[0] = 0;
        for (d = 0; d < t->ndim; d++) at += snprintf(want + at, sizeof want - at, "%s%d", d ? "," : "", t->shape[d]);
        return vae__fail(m->error, VAE_ERROR_MISMATCH, "checkpoint: tensor '%s' has shape [%s], the model needs [%s]", name, got, want);
    }
    if (!dst) {
        for (i = 0; i < n; i++) {
            unsigned char b[4];
            float v;
            int k;
            for (k = 0; k < 4; k++) b[k] = f->data[4 * i + (vae__is_big_endian() ? 3 - k : k)];
            memcpy(&v, b, 4);
            if (!isfinite(v)) return vae__fail(m->error, VAE_ERROR_FORMAT, "checkpoint: tensor '%s' holds NaN or Inf", name);
        }
        return VAE_OK;
    }
    memcpy(dst, f->data, n * sizeof(float));
    if (vae__is_big_endian()) {   /* the file is little-endian */
        unsigned char *b = (unsigned char *)dst, t;
        for (i = 0; i < n; i++, b += 4) { t = b[0]; b[0] = b[3]; b[3] = t; t = b[1]; b[1] = b[2]; b[2] = t; }
    }
    for (i = 0; i < n; i++)
        if (!isfinite(dst[i])) return vae__fail(m->error, VAE_ERROR_FORMAT, "checkpoint: tensor '%s' holds NaN or Inf", name);
    return VAE_OK;
}

/* Is name one of the model's tensors (or, with state, one of its optimizer moments)? */
static int vae__model_has_tensor(const vae_model *m, const char *name, int state)
{
    int i, nt = vae_model_tensor_count(m);
    if (state && strncmp(name, "optim.", 6) == 0 && name[7] == '.' &&
        ((name[6] == 'm' && m->opt_m) || (name[6] == 'v' && m->opt_v)))
        name += 8;
    else if (!state && strncmp(name, "optim.", 6) == 0)
        return 1;
    for (i = 0; i < nt; i++) {
        vae_tensor_info t;
        vae_model_tensor(m, i, &t);
        if (strcmp(name, t.name) == 0) return 1;
    }
    return 0;
}

/* Is name "<batchnorm layer>.num_batches_tracked"? PyTorch's BatchNorm saves that counter. */
static int vae__is_nbt(const vae_model *m, const char *name)
{
    static const char sfx[] = ".num_batches_tracked";
    size_t len = strlen(name), k = sizeof sfx - 1;
    int i;
    if (len <= k || strcmp(name + len - k, sfx) != 0) return 0;
    for (i = 0; i < m->nlayers; i++)
        if (m->layers[i].op == VAE_OP_BATCHNORM && strlen(m->layers[i].name) == len - k &&
            strncmp(m->layers[i].name, name, len - k) == 0)
            return 1;
    return 0;
}

/* num_batches_tracked must be I64 with shape [] (PyTorch) or [1], and not negative. Its value
   is not used: vae.h writes its optimizer step count there. */
static vae_result vae__nbt_check(vae_model *m, const vae__st_tensor *f)
{
    unsigned char b[8];
    if (f->dtype != VAE__DT_I64 || !(f->ndim == 0 || (f->ndim == 1 && f->shape[0] == 1)))
        return vae__fail(m->error, VAE_ERROR_MISMATCH, "checkpoint: tensor '%s' must be I64 of shape [] or [1] (a %s of %d dims)",
                         f->name, vae__st_dtype_name(f->dtype), f->ndim);
    memcpy(b, f->data, 8);
    if (b[7] & 0x80) return vae__fail(m->error, VAE_ERROR_FORMAT, "checkpoint: tensor '%s' is negative", f->name);
    return VAE_OK;
}

/* The metadata "checksum" of a vae.h checkpoint against the file's metadata and data. */
static vae_result vae__ckpt_verify(vae_model *m, const vae__st *st)
{
    const char *sum = vae__st_meta(st, "checksum");
    uint32_t want, got;
    const unsigned char *data = st->n ? st->t[0].data : NULL;   /* t[] is sorted by offset */
    size_t len = st->n ? (size_t)(st->t[st->n - 1].end - st->t[0].begin) : 0;
    if (!sum || strncmp(sum, "crc32:", 6) != 0 || strlen(sum) != 14 || vae__hex32(sum + 6, &want))
        return vae__fail(m->error, VAE_ERROR_FORMAT, "checkpoint: metadata 'checksum' is missing or malformed");
    got = vae__ckpt_crc(st->meta_key, st->meta_val, st->nmeta, NULL, 0, data, len);
    if (got != want)
        return vae__fail(m->error, VAE_ERROR_FORMAT, "checkpoint: checksum mismatch (file corrupt): stored %08lx, computed %08lx",
                         (unsigned long)want, (unsigned long)got);
    return VAE_OK;
}

static vae_result vae__load_from(vae_model *m, const vae__st *st, size_t file_size, int batch, int threads, unsigned flags)
{
    char err[VAE_ERROR_SIZE];
    const char *fmt = vae__st_meta(st, "format"), *ver = vae__st_meta(st, "format_version"), *arch = vae__st_meta(st, "arch");
    int state = (flags & VAE_TRAINING_STATE) != 0, nt, i, k, matched = 0;
    vae_config c;
    vae__plan pl;
    vae_result r;
    err[0] = 0;
    if (!fmt || strcmp(fmt, VAE__FORMAT_NAME) != 0)
        return vae__fail(m->error, VAE_ERROR_FORMAT, "checkpoint: not a vae.h checkpoint (metadata 'format' is not \"vae.h\")");
    if (!ver || strcmp(ver, VAE__FORMAT_VERSION) != 0)
        return vae__fail(m->error, VAE_ERROR_FORMAT, "checkpoint: format version '%.20s' is not supported (this is %s)", ver ? ver : "", VAE__FORMAT_VERSION);
    if (!arch) return vae__fail(m->error, VAE_ERROR_FORMAT, "checkpoint: metadata 'arch' is missing");
    if ((r = vae__ckpt_verify(m, st)) != VAE_OK) return r;
    if (vae__meta_config(st, &c, err)) return vae__fail(m->error, VAE_ERROR_FORMAT, "%s", err);
    if (state && !vae__st_meta(st, "step"))
        return vae__fail(m->error, VAE_ERROR_MISMATCH, "checkpoint: it was saved without its training state, so it cannot resume training");
    if (batch > 0) c.batch = batch;
    if (threads > 0) c.threads = threads;
    /* Fail before allocating: the architecture's parameters must all be in the file. */
    if ((r = vae__arch_parse(arch, NULL, &pl, err)) != VAE_OK) return vae__fail(m->error, VAE_ERROR_FORMAT, "checkpoint: %s", err);
    if (pl.nparams > file_size / sizeof(float))
        return vae__fail(m->error, VAE_ERROR_FORMAT, "checkpoint: the architecture needs %lu parameters but the file holds %lu bytes",
                         (unsigned long)pl.nparams, (unsigned long)file_size);
    if ((r = vae_model_init(m, arch, &c, state ? 0 : (flags & VAE_INFERENCE))) != VAE_OK) {
        memcpy(err, m->error, sizeof err);
        return vae__fail(m->error, r == VAE_ERROR_OUT_OF_MEMORY ? r : VAE_ERROR_FORMAT, "checkpoint: %s", err);
    }
    nt = vae_model_tensor_count(m);
    for (k = 0; k < 3; k++) {
        float *block = k == 0 ? m->params : k == 1 ? m->opt_m : m->opt_v;
        const char *prefix = k == 0 ? "" : k == 1 ? "optim.m." : "optim.v.";
        if (k && (!state || !block)) continue;
        for (i = 0; i < nt; i++) {
            vae_tensor_info t;
            char name[2 * VAE_NAME_MAX + 16];
            vae_model_tensor(m, i, &t);
            if (k && t.is_state) continue;
            snprintf(name, sizeof name, "%s%s", prefix, t.name);
            if ((r = vae__tensor_take(m, st, name, &t, t.is_state ? t.data : block + (t.data - m->params))) != VAE_OK) return r;
            matched++;
        }
    }
    /* Every file tensor was matched, unless it is training state we were not asked for or
       BatchNorm's num_batches_tracked (checkpoints before it was written lack it). */
    for (i = 0, k = 0; i < st->n; i++) {
        if (!state && strncmp(st->t[i].name, "optim.", 6) == 0) k++;
        else if (vae__is_nbt(m, st->t[i].name)) {
            if ((r = vae__nbt_check(m, &st->t[i])) != VAE_OK) return r;
            k++;
        }
    }
    if (st->n != matched + k) {
        for (i = 0; i < st->n; i++)
            if (!vae__model_has_tensor(m, st->t[i].name, state) && !vae__is_nbt(m, st->t[i].name))
                return vae__fail(m->error, VAE_ERROR_MISMATCH, "checkpoint: unexpected tensor '%s'", st->t[i].name);
    }
    if (state) {
        double step, epoch;
        const char *rs = vae__st_meta(st, "rng");
        if (vae__meta_num(st, "step", 0, 9e15, &step, err) || vae__meta_num(st, "epoch", 0, 2e9, &epoch, err))
            return vae__fail(m->error, VAE_ERROR_FORMAT, "%s (resuming needs a checkpoint saved with its training state)", err);
        if (step != floor(step) || epoch != floor(epoch)) return vae__fail(m->error, VAE_ERROR_FORMAT, "checkpoint: step and epoch must be integers");
        if (!rs || strlen(rs) != 32 || vae__hex32(rs, &m->rng.s[0]) || vae__hex32(rs + 8, &m->rng.s[1]) ||
            vae__hex32(rs + 16, &m->rng.s[2]) || vae__hex32(rs + 24, &m->rng.s[3]) ||
            !(m->rng.s[0] | m->rng.s[1] | m->rng.s[2] | m->rng.s[3]))
            return vae__fail(m->error, VAE_ERROR_FORMAT, "checkpoint: metadata 'rng' must be 32 hex digits, not all zero");
        m->step = (int64_t)step; m->epoch = (int)epoch;
    }
    return VAE_OK;
}

/* Reads and parses the safetensors file at path into *buf and st (the caller frees both with
   vae__st_free and VAE_FREE). On failure nothing stays allocated and msg says why. */
static vae_result vae__st_open(const char *path, unsigned char **buf, size_t *size, vae__st *st, char *msg)
{
    char e[VAE_ERROR_SIZE];
    *buf = NULL; *size = 0;
    if (vae__file_read(path, buf, size, e) != 0) return vae__fail(msg, VAE_ERROR_IO, "%s", e);
    if (vae__st_parse(st, *buf, *size, e) != 0) {
        VAE_FREE(*buf);
        *buf = NULL;
        return vae__fail(msg, VAE_ERROR_FORMAT, "%s: %s", path, e);
    }
    return VAE_OK;
}

VAEDEF vae_result vae_model_load(vae_model *m, const char *path, int batch, int threads, unsigned flags)
{
    unsigned char *buf;
    size_t size;
    vae__st st;
    vae_result r;
    char err[VAE_ERROR_SIZE];
    if (!m) return VAE_ERROR_INVALID_ARGUMENT;
    memset(m, 0, sizeof *m);
    if (!path) return vae__fail(m->error, VAE_ERROR_INVALID_ARGUMENT, "load: no path");
    if ((r = vae__st_open(path, &buf, &size, &st, m->error)) != VAE_OK) return r;
    r = vae__load_from(m, &st, size, batch, threads, flags);
    if (r != VAE_OK) {
        memcpy(err, m->error, sizeof err);
        vae_model_free(m);
        vae__fail(m->error, r, "%s: %s", path, err);
    }
    vae__st_free(&st);
    VAE_FREE(buf);
    return r;
}

/* Checks everything first and copies only then, so a refused file leaves the model as it was. */
static vae_result vae__weights_from(vae_model *m, const vae__st *st)
{
    const char *fmt = vae__st_meta(st, "format");
    int ours = fmt && strcmp(fmt, VAE__FORMAT_NAME) == 0, nt = vae_model_tensor_count(m), i, pass;
    vae_result r;
    if (ours && (r = vae__ckpt_verify(m, st)) != VAE_OK) return r;
    for (i = 0; i < st->n; i++) {
        const char *nm = st->t[i].name;
        if (strncmp(nm, "optim.", 6) == 0) {
            if (ours) continue;   /* a vae.h checkpoint's optimizer moments */
        } else if (vae__is_nbt(m, nm)) {
            if ((r = vae__nbt_check(m, &st->t[i])) != VAE_OK) return r;
            continue;
        } else if (vae__model_has_tensor(m, nm, 0)) {
            continue;
        }
        return vae__fail(m->error, VAE_ERROR_MISMATCH, "weights: unexpected tensor '%s' (the model has no tensor of that name)", nm);
    }
    for (pass = 0; pass < 2; pass++)
        for (i = 0; i < nt; i++) {
            vae_tensor_info t;
            vae_model_tensor(m, i, &t);
            if ((r = vae__tensor_take(m, st, t.name, &t, pass ? t.data : NULL)) != VAE_OK) return r;
        }
    return VAE_OK;
}

VAEDEF vae_result vae_model_load_weights(vae_model *m, const char *path)
{
    unsigned char *buf;
    size_t size;
    vae__st st;
    vae_result r;
    char err[VAE_ERROR_SIZE];
    if (!m) return VAE_ERROR_INVALID_ARGUMENT;
    if (!m->layers) return vae__fail(m->error, VAE_ERROR_INVALID_ARGUMENT, "load_weights: model not initialised");
    if (!path) return vae__fail(m->error, VAE_ERROR_INVALID_ARGUMENT, "load_weights: no path");
    if ((r = vae__st_open(path, &buf, &size, &st, m->error)) != VAE_OK) return r;
    r = vae__weights_from(m, &st);
    if (r != VAE_OK) {
        memcpy(err, m->error, sizeof err);
        vae__fail(m->error, r, "%s: %s", path, err);
    }
    vae__st_free(&st);
    VAE_FREE(buf);
    return r;
}

VAEDEF vae_result vae_tensors_save(const char *path, const vae_tensor_info *t, int n, char *err)
{
    vae__st_out *o;
    int i, d;
    vae_result r = VAE_OK;
    if (!path || n < 0 || (n > 0 && !t)) return vae__fail(err, VAE_ERROR_INVALID_ARGUMENT, "tensors_save: no path or tensors");
    o = (vae__st_out *)VAE_MALLOC(sizeof(vae__st_out) * (size_t)n + 1);
    if (!o) return vae__fail(err, VAE_ERROR_OUT_OF_MEMORY, "tensors_save: out of memory");
    for (i = 0; i < n; i++) {
        memset(&o[i], 0, sizeof o[i]);
        if (t[i].ndim < 0 || t[i].ndim > 4) { r = vae__fail(err, VAE_ERROR_INVALID_ARGUMENT, "tensors_save: '%s' has %d dims", t[i].name, t[i].ndim); break; }
        o[i].name = t[i].name; o[i].dtype = VAE__DT_F32; o[i].ndim = t[i].ndim; o[i].data = t[i].data;
        for (d = 0; d < t[i].ndim; d++) {
            if (t[i].shape[d] < 0) { r = vae__fail(err, VAE_ERROR_INVALID_ARGUMENT, "tensors_save: '%s' has a negative dim", t[i].name); break; }
            o[i].shape[d] = (uint64_t)t[i].shape[d];
        }
        if (r != VAE_OK) break;
    }
    if (r == VAE_OK && vae__st_save(path, o, n, NULL, NULL, 0, err) != 0) r = VAE_ERROR_IO;
    VAE_FREE(o);
    return r;
}

VAEDEF vae_result vae_data_load_safetensors(vae_data *d, const char *path, const char *name)
{
    unsigned char *buf;
    size_t size, cnt, i;
    vae__st st;
    const vae__st_tensor *f;
    vae_result r;
    uint64_t dim[4] = { 0, 0, 0, 0 };
    if (!d) return VAE_ERROR_INVALID_ARGUMENT;
    memset(d, 0, sizeof *d);
    if (!path) return vae__fail(d->error, VAE_ERROR_INVALID_ARGUMENT, "data: no path");
    if (!name) name = "images";
    if ((r = vae__st_open(path, &buf, &size, &st, d->error)) != VAE_OK) return r;
    f = vae__st_find(&st, name);
    if (!f)
        r = vae__fail(d->error, VAE_ERROR_MISMATCH, "%s: no tensor '%s' (a U8 or F32 tensor N x C x H x W)", path, name);
    else if (!(f->ndim == 4 || (f->ndim == 2 && strcmp(name, "images") != 0)))
        r = vae__fail(d->error, VAE_ERROR_MISMATCH, "%s: tensor '%s' has %d dims; it must be N x C x H x W%s", path, name, f->ndim,
                      strcmp(name, "images") ? " or N x C" : "");
    else if (f->dtype != VAE__DT_U8 && f->dtype != VAE__DT_F32)
        r = vae__fail(d->error, VAE_ERROR_MISMATCH, "%s: tensor '%s' is %s; it must be U8 (0..255) or F32", path, name,
                      vae__st_dtype_name(f->dtype));
    else {
        dim[0] = f->shape[0]; dim[1] = f->shape[1];
        dim[2] = f->ndim == 4 ? f->shape[2] : 1; dim[3] = f->ndim == 4 ? f->shape[3] : 1;
        if (dim[0] < 1 || dim[0] > 0x7FFFFFFF || dim[1] < 1 || dim[2] < 1 || dim[3] < 1 || dim[1] > VAE__MAX_DIM ||
            dim[2] > VAE__MAX_DIM || dim[3] > VAE__MAX_DIM || dim[1] * dim[2] * dim[3] > VAE__MAX_ELEMS)
            r = vae__fail(d->error, VAE_ERROR_MISMATCH, "%s: tensor '%s' of shape [%llu,%llu,%llu,%llu] is empty or too large", path, name,
                          (unsigned long long)dim[0], (unsigned long long)dim[1], (unsigned long long)dim[2], (unsigned long long)dim[3]);
    }
    if (r == VAE_OK) {
        cnt = (size_t)(dim[0] * dim[1] * dim[2] * dim[3]);   /* the file holds them: no overflow */
        if (f->dtype == VAE__DT_U8) {
            d->pixels = (unsigned char *)VAE_MALLOC(cnt);
            if (d->pixels) memcpy(d->pixels, f->data, cnt);
        } else {
            d->values = (float *)VAE_MALLOC(cnt * sizeof(float));
            if (d->values) {
                memcpy(d->values, f->data, cnt * sizeof(float));
                if (vae__is_big_endian()) {
                    unsigned char *b = (unsigned char *)d->values, t;
                    for (i = 0; i < cnt; i++, b += 4) { t = b[0]; b[0] = b[3]; b[3] = t; t = b[1]; b[1] = b[2]; b[2] = t; }
                }
                for (i = 0; i < cnt && isfinite(d->values[i]); i++) {}
                if (i < cnt) {
                    vae_data_free(d);
                    r = vae__fail(d->error, VAE_ERROR_FORMAT, "%s: tensor '%s' holds NaN or Inf (element %lu)", path, name, (unsigned long)i);
                }
            }
        }
        if (r == VAE_OK && !d->pixels && !d->values)
            r = vae__fail(d->error, VAE_ERROR_OUT_OF_MEMORY, "%s: cannot allocate %lu values", path, (unsigned long)cnt);
        if (r == VAE_OK) { d->n = (int)dim[0]; d->c = (int)dim[1]; d->h = (int)dim[2]; d->w = (int)dim[3]; }
    }
    vae__st_free(&st);
    VAE_FREE(buf);
    return r;
}

#endif /* VAE_NO_STDIO */

/* >>data */

VAEDEF void vae_data_free(vae_data *d)
{
    if (!d) return;
    if (d->pixels) VAE_FREE(d->pixels);
    if (d->values) VAE_FREE(d->values);
    if (d->labels) VAE_FREE(d->labels);
    memset(d, 0, sizeof *d);
}

/* ---- raw DEFLATE decoder (RFC 1951) -------------------------------------- */

#define VAE__INFLATE_OK   0
#define VAE__INFLATE_ERR  1   /* malformed or truncated stream */
#define VAE__INFLATE_FULL 2   /* stream is fine so far but needs more than dstcap bytes */

/* Huffman codes are looked up with a VAE__ZFAST-bit table indexed by the next
 * input bits (codes are stored bit-reversed in the stream, so the table is
 * indexed by the reversed code). Codes longer than that (rare: 11..15 bits)
 * fall back to a canonical-code search over lengths, which is still O(15). */
#define VAE__ZFAST 10
#define VAE__ZFAST_MASK ((1u << VAE__ZFAST) - 1u)

typedef struct vae__zhuff {
    uint16_t fast[1u << VAE__ZFAST]; /* (len << 9) | symbol; 0 = not resolvable in VAE__ZFAST bits */
    uint16_t count[16];  /* number of codes of each bit length */
    uint16_t first[16];  /* first canonical code (MSB-first value) of each length */
    uint16_t index[16];  /* position in sym[] of the first symbol of each length */
    uint16_t sym[288];   /* symbols sorted by (code length, symbol value) */
} vae__zhuff;

typedef struct vae__zin {
    const unsigned char *src;
    size_t srclen, pos;
    uint64_t bitbuf;     /* next input bits, LSB first */
    int bitcnt;
} vae__zin;

/* Keep the bit buffer at >= 57 bits while input lasts: enough for the worst
 * case of one length/distance pair (15+5+15+13 = 48 bits) without refilling
 * in between. Past the end of input the missing bits read as zero and every
 * consumer checks bitcnt, so truncation is detected, never over-read. */
static void vae__zin_fill(vae__zin *z)
{
    while (z->bitcnt <= 56 && z->pos < z->srclen) {
        z->bitbuf |= (uint64_t)z->src[z->pos++] << z->bitcnt;
        z->bitcnt += 8;
    }
}

/* Returns the value of n (<= 16) bits, or -1 if the input ends first. */
static int vae__zin_bits(vae__zin *z, int n)
{
    int v;
    if (z->bitcnt < n) vae__zin_fill(z);
    if (z->bitcnt < n) return -1;
    v = (int)(z->bitbuf & ((1u << n) - 1u));
    z->bitbuf >>= n;
    z->bitcnt -= n;
    return v;
}

/* Builds decoding tables from code lengths (each 0..15).
 * Returns 0 on success, 1 if the code is over-subscribed, 2 if it is
 * incomplete and not one of the incomplete shapes RFC 1951 permits (a lone
 * code of length 1 when allow_single, or no codes at all when allow_empty). */
static int vae__zhuff_build(vae__zhuff *h, const unsigned char *lens, int n,
                            int allow_single, int allow_empty)
{
    uint16_t next[16];
    int i, l, ncodes = 0;
    long left = 1;
    memset(h->count, 0, sizeof(h->count));
    memset(h->fast, 0, sizeof(h->fast));
    for (i = 0; i < n; i++) h->count[lens[i]]++;
    h->count[0] = 0;
    for (l = 1; l <= 15; l++) {
        left = left * 2 - (long)h->count[l];
        if (left < 0) return 1;
        ncodes += h->count[l];
    }
    if (left > 0) {
        int ok = (ncodes == 0 && allow_empty) ||
                 (ncodes == 1 && h->count[1] == 1 && allow_single);
        if (!ok) return 2;
    }
    {
        unsigned code = 0;
        uint16_t idx = 0;
        for (l = 1; l <= 15; l++) {
            code = (code + h->count[l - 1]) << 1;
            h->first[l] = (uint16_t)code;
            h->index[l] = idx;
            next[l] = idx;
            idx = (uint16_t)(idx + h->count[l]);
        }
        h->first[0] = 0;
        h->index[0] = 0;
    }
    for (i = 0; i < n; i++)
        if (lens[i]) h->sym[next[lens[i]]++] = (uint16_t)i;
    for (l = 1; l <= VAE__ZFAST; l++) {
        unsigned k;
        for (k = 0; k < h->count[l]; k++) {
            unsigned code = h->first[l] + k, rev = 0, j;
            int b;
            uint16_t entry = (uint16_t)((l << 9) | h->sym[h->index[l] + k]);
            for (b = 0; b < l; b++) rev |= ((code >> b) & 1u) << (l - 1 - b);
            for (j = rev; j < (1u << VAE__ZFAST); j += 1u << l) h->fast[j] = entry;
        }
    }
    return 0;
}

/* Decodes one symbol. Returns it, -1 for a bit pattern that is no code,
 * -2 if the input ends inside the code. */
static int vae__zdecode(vae__zin *z, const vae__zhuff *h)
{
    unsigned e, rev;
    int l;
    if (z->bitcnt < 15) vae__zin_fill(z);
    e = h->fast[z->bitbuf & VAE__ZFAST_MASK];
    if (e) {
        int len = (int)(e >> 9);
        if (len > z->bitcnt) return -2;
        z->bitbuf >>= len;
        z->bitcnt -= len;
        return (int)(e & 511u);
    }
    rev = 0;
    for (l = 0; l < 15; l++) rev = (rev << 1) | (unsigned)((z->bitbuf >> l) & 1u);
    for (l = VAE__ZFAST + 1; l <= 15; l++) {
        long d = (long)(rev >> (15 - l)) - (long)h->first[l];
        if (d >= 0 && d < (long)h->count[l]) {
            if (l > z->bitcnt) return -2;
            z->bitbuf >>= l;
            z->bitcnt -= l;
            return h->sym[h->index[l] + d];
        }
    }
    return -1;
}

static const uint16_t vae__zlen_base[29] = {
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31,
    35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258 };
static const unsigned char vae__zlen_extra[29] = {
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2,
    3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0 };
static const uint16_t vae__zdist_base[30] = {
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193,
    257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577 };
static const unsigned char vae__zdist_extra[30] = {
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6,
    7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13 };
/* Order in which code-length code lengths are transmitted (RFC 1951 3.2.7). */
static const unsigned char vae__zclen_order[19] = {
    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15 };

/* Reads the dynamic-block header and builds both trees. 0 ok, else err set. */
static int vae__zdynamic(vae__zin *z, vae__zhuff *lit, vae__zhuff *dist,
                         vae__zhuff *tmp, char *err)
{
    unsigned char lens[286 + 30], clens[19];
    int hlit, hdist, hclen, i, n, r;
    hlit = vae__zin_bits(z, 5);
    hdist = vae__zin_bits(z, 5);
    hclen = vae__zin_bits(z, 4);
    if (hclen < 0) { vae__errf(err, "deflate: truncated input (in dynamic block header)"); return 1; }
    hlit += 257;
    hdist += 1;
    hclen += 4;
    /* 5-bit fields can say 288/32, but only 286/30 symbols exist. */
    if (hlit > 286 || hdist > 30) {
        vae__errf(err, "deflate: invalid dynamic block header (HLIT=%d, HDIST=%d)", hlit, hdist);
        return 1;
    }
    memset(clens, 0, sizeof(clens));
    for (i = 0; i < hclen; i++) {
        int v = vae__zin_bits(z, 3);
        if (v < 0) { vae__errf(err, "deflate: truncated input (in code length codes)"); return 1; }
        clens[vae__zclen_order[i]] = (unsigned char)v;
    }
    if (vae__zhuff_build(tmp, clens, 19, 0, 0) != 0) {
        vae__errf(err, "deflate: invalid code-length code (over-subscribed or incomplete)");
        return 1;
    }
    n = hlit + hdist;
    i = 0;
    while (i < n) {
        int sym = vae__zdecode(z, tmp), rep = 0, val = 0;
        if (sym == -2) { vae__errf(err, "deflate: truncated input (in code lengths)"); return 1; }
        if (sym < 0) { vae__errf(err, "deflate: invalid code-length symbol"); return 1; }
        if (sym < 16) {
            lens[i++] = (unsigned char)sym;
            continue;
        }
        if (sym == 16) {
            if (i == 0) { vae__errf(err, "deflate: repeat code with no previous length"); return 1; }
            val = lens[i - 1];
            rep = vae__zin_bits(z, 2);
            if (rep >= 0) rep += 3;
        } else if (sym == 17) {
            rep = vae__zin_bits(z, 3);
            if (rep >= 0) rep += 3;
        } else {
            rep = vae__zin_bits(z, 7);
            if (rep >= 0) rep += 11;
        }
        if (rep < 0) { vae__errf(err, "deflate: truncated input (in code lengths)"); return 1; }
        if (rep > n - i) { vae__errf(err, "deflate: code length repeat overruns HLIT+HDIST"); return 1; }
        while (rep-- > 0) lens[i++] = (unsigned char)val;
    }
    if (lens[256] == 0) { vae__errf(err, "deflate: dynamic block has no end-of-block code"); return 1; }
    r = vae__zhuff_build(lit, lens, hlit, 1, 0);
    if (r != 0) {
        vae__errf(err, "deflate: invalid literal/length code (%s)", r == 1 ? "over-subscribed" : "incomplete");
        return 1;
    }
    r = vae__zhuff_build(dist, lens + hlit, hdist, 1, 1);
    if (r != 0) {
        vae__errf(err, "deflate: invalid distance code (%s)", r == 1 ? "over-subscribed" : "incomplete");
        return 1;
    }
    return 0;
}

/* Decodes one raw DEFLATE stream (no zlib/gzip wrapper) from src into dst.
 * On return *consumed is the number of input bytes used up to the end of the
 * final block (rounded up to a whole byte) and *dstlen the bytes written.
 * Back-references may only reach bytes written by this call (dst[0..]).
 * Returns VAE__INFLATE_OK, VAE__INFLATE_ERR (err set) or VAE__INFLATE_FULL
 * (err set; the output would exceed dstcap, caller may retry larger).
 * The three Huffman tables (~7 KB) live in one VAE_MALLOC block so the
 * function is safe on small stacks. */
static int vae__inflate(const unsigned char *src, size_t srclen, size_t *consumed,
                        unsigned char *dst, size_t dstcap, size_t *dstlen, char *err)
{
    vae__zin z;
    vae__zhuff *t;
    size_t out = 0;
    int final = 0, rc = VAE__INFLATE_OK, fixed_built = 0;

    if (consumed) *consumed = 0;
    if (dstlen) *dstlen = 0;
    if (!src && srclen) { vae__errf(err, "deflate: NULL input"); return VAE__INFLATE_ERR; }
    if (!dst && dstcap) { vae__errf(err, "deflate: NULL output"); return VAE__INFLATE_ERR; }
    /* t[0], t[1]: current lit/len + distance trees; t[2]: code-length tree;
     * t[3], t[4]: fixed trees, built only if a fixed block appears. */
    t = (vae__zhuff *)VAE_MALLOC(5 * sizeof(vae__zhuff));
    if (!t) { vae__errf(err, "deflate: out of memory"); return VAE__INFLATE_ERR; }
    z.src = src;
    z.srclen = srclen;
    z.pos = 0;
    z.bitbuf = 0;
    z.bitcnt = 0;

    while (!final) {
        int hdr = vae__zin_bits(&z, 3);
        const vae__zhuff *lit, *dist;
        if (hdr < 0) { vae__errf(err, "deflate: truncated input (missing block header)"); rc = VAE__INFLATE_ERR; break; }
        final = hdr & 1;
        hdr >>= 1;
        if (hdr == 0) {
            /* Stored block: skip to a byte boundary, then hand the whole bytes
             * still buffered back to the byte stream (they came from src in
             * order, so rewinding pos is exact) and copy straight from src. */
            size_t len, nlen;
            z.bitbuf >>= (z.bitcnt & 7);
            z.bitcnt -= z.bitcnt & 7;
            z.pos -= (size_t)(z.bitcnt >> 3);
            z.bitbuf = 0;
            z.bitcnt = 0;
            if (z.srclen - z.pos < 4) { vae__errf(err, "deflate: truncated input (stored block header)"); rc = VAE__INFLATE_ERR; break; }
            len = (size_t)z.src[z.pos] | ((size_t)z.src[z.pos + 1] << 8);
            nlen = (size_t)z.src[z.pos + 2] | ((size_t)z.src[z.pos + 3] << 8);
            z.pos += 4;
            if ((len ^ 0xFFFFu) != nlen) { vae__errf(err, "deflate: stored block length check failed (LEN/NLEN mismatch)"); rc = VAE__INFLATE_ERR; break; }
            if (len > z.srclen - z.pos) { vae__errf(err, "deflate: truncated input (inside stored block)"); rc = VAE__INFLATE_ERR; break; }
            if (len > dstcap - out) { vae__errf(err, "deflate: output exceeds buffer of %lu bytes", (unsigned long)dstcap); rc = VAE__INFLATE_FULL; break; }
            if (len) memcpy(dst + out, z.src + z.pos, len);
            out += len;
            z.pos += len;
            continue;
        } else if (hdr == 1) {
            if (!fixed_built) {
                unsigned char lens[288];
                int i;
                for (i = 0; i < 144; i++) lens[i] = 8;
                for (; i < 256; i++) lens[i] = 9;
                for (; i < 280; i++) lens[i] = 7;
                for (; i < 288; i++) lens[i] = 8;
                (void)vae__zhuff_build(&t[3], lens, 288, 0, 0);
                /* 32 five-bit codes keep the tree complete; codes 30/31 are
                 * rejected when decoded. */
                for (i = 0; i < 32; i++) lens[i] = 5;
                (void)vae__zhuff_build(&t[4], lens, 32, 0, 0);
                fixed_built = 1;
            }
            lit = &t[3];
            dist = &t[4];
        } else if (hdr == 2) {
            if (vae__zdynamic(&z, &t[0], &t[1], &t[2], err) != 0) { rc = VAE__INFLATE_ERR; break; }
            lit = &t[0];
            dist = &t[1];
        } else {
            vae__errf(err, "deflate: invalid block type 3");
            rc = VAE__INFLATE_ERR;
            break;
        }

        for (;;) {
            int sym = vae__zdecode(&z, lit), e, d;
            size_t len, dd;
            if (sym < 256) {
                if (sym < 0) {
                    vae__errf(err, sym == -2 ? "deflate: truncated input (inside compressed block)"
                                             : "deflate: invalid literal/length code");
                    rc = VAE__INFLATE_ERR;
                    break;
                }
                if (out >= dstcap) { vae__errf(err, "deflate: output exceeds buffer of %lu bytes", (unsigned long)dstcap); rc = VAE__INFLATE_FULL; break; }
                dst[out++] = (unsigned char)sym;
                continue;
            }
            if (sym == 256) break;
            sym -= 257;
            if (sym >= 29) { vae__errf(err, "deflate: invalid length symbol %d", sym + 257); rc = VAE__INFLATE_ERR; break; }
            e = vae__zin_bits(&z, vae__zlen_extra[sym]);
            d = vae__zdecode(&z, dist);
            if (e < 0 || d == -2) { vae__errf(err, "deflate: truncated input (inside compressed block)"); rc = VAE__INFLATE_ERR; break; }
            if (d < 0 || d >= 30) { vae__errf(err, "deflate: invalid distance code"); rc = VAE__INFLATE_ERR; break; }
            len = (size_t)vae__zlen_base[sym] + (size_t)e;
            e = vae__zin_bits(&z, vae__zdist_extra[d]);
            if (e < 0) { vae__errf(err, "deflate: truncated input (inside compressed block)"); rc = VAE__INFLATE_ERR; break; }
            dd = (size_t)vae__zdist_base[d] + (size_t)e;
            if (dd > out) { vae__errf(err, "deflate: invalid distance %lu (only %lu bytes written so far)", (unsigned long)dd, (unsigned long)out); rc = VAE__INFLATE_ERR; break; }
            if (len > dstcap - out) { vae__errf(err, "deflate: output exceeds buffer of %lu bytes", (unsigned long)dstcap); rc = VAE__INFLATE_FULL; break; }
            {
                unsigned char *o = dst + out;
                const unsigned char *s = o - dd;
                out += len;
                if (dd >= len) {
                    memcpy(o, s, len);
                } else {
                    /* Overlapping copy is the run-length case: must go byte by byte. */
                    while (len--) *o++ = *s++;
                }
            }
        }
        if (rc != VAE__INFLATE_OK) break;
    }
    VAE_FREE(t);
    if (dstlen) *dstlen = out;
    if (rc == VAE__INFLATE_OK && consumed) *consumed = z.pos - (size_t)(z.bitcnt >> 3);
    return rc;
}

/* ---- gzip (RFC 1952) ------------------------------------------------------ */

/* Parses one member header; on success *hdrlen is its size in bytes. */
static int vae__gz_header(const unsigned char *p, size_t n, size_t *hdrlen, char *err)
{
    size_t pos = 10;
    unsigned flg;
    if (n < 2 || p[0] != 0x1F || p[1] != 0x8B) { vae__errf(err, "gzip: not a gzip file (bad magic bytes)"); return 1; }
    if (n < 10) { vae__errf(err, "gzip: truncated (incomplete member header)"); return 1; }
    if (p[2] != 8) { vae__errf(err, "gzip: unsupported compression method %d (only 8 = deflate exists)", (int)p[2]); return 1; }
    flg = p[3];
    if (flg & 0xE0u) { vae__errf(err, "gzip: reserved header flag bits set (FLG=0x%02x)", flg); return 1; }
    if (flg & 4u) { /* FEXTRA */
        size_t xlen;
        if (n - pos < 2) { vae__errf(err, "gzip: truncated (in FEXTRA field)"); return 1; }
        xlen = (size_t)p[pos] | ((size_t)p[pos + 1] << 8);
        pos += 2;
        if (n - pos < xlen) { vae__errf(err, "gzip: truncated (in FEXTRA field)"); return 1; }
        pos += xlen;
    }
    if (flg & 8u) { /* FNAME, zero terminated */
        while (pos < n && p[pos] != 0) pos++;
        if (pos >= n) { vae__errf(err, "gzip: truncated (in file name field)"); return 1; }
        pos++;
    }
    if (flg & 16u) { /* FCOMMENT, zero terminated */
        while (pos < n && p[pos] != 0) pos++;
        if (pos >= n) { vae__errf(err, "gzip: truncated (in comment field)"); return 1; }
        pos++;
    }
    if (flg & 2u) { /* FHCRC: low 16 bits of the CRC-32 of the header so far */
        unsigned want;
        if (n - pos < 2) { vae__errf(err, "gzip: truncated (in header CRC)"); return 1; }
        want = (unsigned)p[pos] | ((unsigned)p[pos + 1] << 8);
        if ((vae__crc32(0, p, pos) & 0xFFFFu) != want) { vae__errf(err, "gzip: header CRC mismatch (file corrupt)"); return 1; }
        pos += 2;
    }
    /* FTEXT (bit 0) is only a hint and needs no handling. */
    *hdrlen = pos;
    return 0;
}

/* Decompresses a whole .gz buffer (one or more concatenated members; a tail
 * of zero bytes, as left by some tape/block tools, is ignored). *out receives
 * a VAE_MALLOC'd buffer (free with VAE_FREE, always non-NULL on success, even
 * for empty output) of *outlen bytes. maxout is a hard limit on the total
 * decompressed size; the ISIZE trailer is only used as an allocation hint,
 * clamped by maxout and by DEFLATE's maximum ratio (~1032:1), so a lying
 * ISIZE can neither force a huge allocation nor an overflow. */
VAE__MAYBE_UNUSED static int vae__gunzip(const unsigned char *src, size_t n, unsigned char **out,
                       size_t *outlen, size_t maxout, char *err)
{
    unsigned char *buf;
    size_t cap, total = 0, pos = 0;
    char ierr[VAE__ERR_SIZE];
    if (!out || !outlen) { vae__errf(err, "gzip: NULL output argument"); return 1; }
    *out = NULL;
    *outlen = 0;
    if (!src && n) { vae__errf(err, "gzip: NULL input"); return 1; }
    if (n < 2 || src[0] != 0x1F || src[1] != 0x8B) { vae__errf(err, "gzip: not a gzip file (bad magic bytes)"); return 1; }
    if (n < 18) { vae__errf(err, "gzip: truncated (%lu bytes; a gzip member needs at least 18)", (unsigned long)n); return 1; }
    {
        size_t hint = (size_t)src[n - 4] | ((size_t)src[n - 3] << 8) |
                      ((size_t)src[n - 2] << 16) | ((size_t)src[n - 1] << 24);
        size_t ratio = n < ((size_t)-1 - 1024) / 1032 ? n * 1032 + 1024 : (size_t)-1;
        cap = hint;
        if (cap > ratio) cap = ratio;
        if (cap > maxout) cap = maxout;
        if (cap < 64) cap = maxout < 64 ? maxout : 64;
    }
    buf = (unsigned char *)VAE_MALLOC(cap ? cap : 1);
    if (!buf) { vae__errf(err, "gzip: out of memory (%lu bytes)", (unsigned long)cap); return 1; }

    for (;;) {
        size_t hdr, used = 0, got = 0;
        uint32_t crc, isize;
        int r;
        if (vae__gz_header(src + pos, n - pos, &hdr, err) != 0) goto fail;
        pos += hdr;
        for (;;) {
            r = vae__inflate(src + pos, n - pos, &used, buf + total, cap - total, &got, ierr);
            if (r != VAE__INFLATE_FULL) break;
            if (cap >= maxout) {
                vae__errf(err, "gzip: decompressed data exceeds the limit of %lu bytes", (unsigned long)maxout);
                goto fail;
            } else {
                /* Grow geometrically and decode the member again: simpler and
                 * safer than resuming, and rare since ISIZE is usually right. */
                size_t ncap = cap > maxout / 2 ? maxout : cap * 2;
                if (ncap <= cap) ncap = maxout; /* cap == 0 cannot double */
                unsigned char *nb = (unsigned char *)VAE_MALLOC(ncap);
                if (!nb) { vae__errf(err, "gzip: out of memory (%lu bytes)", (unsigned long)ncap); goto fail; }
                if (total) memcpy(nb, buf, total);
                VAE_FREE(buf);
                buf = nb;
                cap = ncap;
            }
        }
        if (r != VAE__INFLATE_OK) {
            if (strstr(ierr, "truncated"))
                vae__errf(err, "gzip: truncated (%s)", ierr);
            else
                vae__errf(err, "gzip: corrupt compressed data (%s)", ierr);
            goto fail;
        }
        pos += used;
        if (n - pos < 8) { vae__errf(err, "gzip: truncated (missing CRC32/ISIZE trailer)"); goto fail; }
        crc = (uint32_t)src[pos] | ((uint32_t)src[pos + 1] << 8) |
              ((uint32_t)src[pos + 2] << 16) | ((uint32_t)src[pos + 3] << 24);
        isize = (uint32_t)src[pos + 4] | ((uint32_t)src[pos + 5] << 8) |
                ((uint32_t)src[pos + 6] << 16) | ((uint32_t)src[pos + 7] << 24);
        pos += 8;
        if (vae__crc32(0, buf + total, got) != crc) { vae__errf(err, "gzip: CRC mismatch (file corrupt)"); goto fail; }
        if ((uint32_t)(got & 0xFFFFFFFFu) != isize) {
            vae__errf(err, "gzip: ISIZE mismatch (trailer says %lu bytes mod 2^32, got %lu; file corrupt)",
                      (unsigned long)isize, (unsigned long)got);
            goto fail;
        }
        total += got;
        if (pos == n) break;
        {
            size_t k = pos;
            while (k < n && src[k] == 0) k++;
            if (k == n) break;
        }
        if (n - pos < 2 || src[pos] != 0x1F || src[pos + 1] != 0x8B) {
            vae__errf(err, "gzip: trailing garbage after member (%lu bytes)", (unsigned long)(n - pos));
            goto fail;
        }
    }
    *out = buf;
    *outlen = total;
    return 0;
fail:
    VAE_FREE(buf);
    return 1;
}

/* ---- IDX (MNIST) ---------------------------------------------------------- */

/* Parses an in-memory IDX file of unsigned bytes. *data points into buf. */
VAE__MAYBE_UNUSED static int vae__idx_parse(const unsigned char *buf, size_t n, int *ndims, uint32_t dims[4],
                          const unsigned char **data, char *err)
{
    int nd, i;
    size_t hdr, total = 1;
    if (!buf || !ndims || !dims || !data) { vae__errf(err, "idx: NULL argument"); return 1; }
    if (n < 4) { vae__errf(err, "idx: truncated (%lu bytes, header needs at least 4)", (unsigned long)n); return 1; }
    if (buf[0] != 0 || buf[1] != 0) { vae__errf(err, "idx: bad magic (first two bytes must be 0; not an IDX file?)"); return 1; }
    if (buf[2] != 0x08) {
        vae__errf(err, "idx: unsupported element type 0x%02x (only 0x08 = unsigned byte)", (unsigned)buf[2]);
        return 1;
    }
    nd = buf[3];
    if (nd < 1 || nd > 4) { vae__errf(err, "idx: unsupported number of dimensions %d (1..4)", nd); return 1; }
    hdr = 4 + 4 * (size_t)nd;
    if (n < hdr) { vae__errf(err, "idx: truncated header (%lu bytes, need %lu)", (unsigned long)n, (unsigned long)hdr); return 1; }
    for (i = 0; i < nd; i++) {
        const unsigned char *q = buf + 4 + 4 * i;
        uint32_t d = ((uint32_t)q[0] << 24) | ((uint32_t)q[1] << 16) | ((uint32_t)q[2] << 8) | (uint32_t)q[3];
        dims[i] = d;
        if (d != 0 && total > ((size_t)-1) / d) { vae__errf(err, "idx: dimensions overflow size_t"); return 1; }
        total *= d;
    }
    for (i = nd; i < 4; i++) dims[i] = 1;
    if (n - hdr != total) {
        vae__errf(err, "idx: size mismatch: dimensions need %lu data bytes but file has %lu (%s)",
                  (unsigned long)total, (unsigned long)(n - hdr),
                  n - hdr < total ? "truncated" : "trailing garbage");
        return 1;
    }
    *ndims = nd;
    *data = buf + hdr;
    return 0;
}

/* ---- netpbm: PGM and PPM ---------------------------------------------------- */

static int vae__pnm_space(unsigned char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\v' || ch == '\f' || ch == '\r';
}

/* Moves *i past whitespace and comments ('#' to the end of the line). */
static void vae__pnm_skip(const unsigned char *p, size_t n, size_t *i)
{
    while (*i < n) {
        if (p[*i] == '#') {
            while (*i < n && p[*i] != '\n' && p[*i] != '\r') ++*i;
        } else if (vae__pnm_space(p[*i])) {
            ++*i;
        } else {
            break;
        }
    }
}

/* Reads a decimal number after whitespace and comments; it must end at whitespace, a comment
   or the end of the buffer. Returns it, -1 if there is none (or junk follows), -2 if > max. */
static long vae__pnm_number(const unsigned char *p, size_t n, size_t *i, long max)
{
    size_t start;
    long v = 0;
    vae__pnm_skip(p, n, i);
    start = *i;
    for (; *i < n && p[*i] >= '0' && p[*i] <= '9'; ++*i)
        if (v <= max) v = v * 10 + (p[*i] - '0');   /* stops growing past max: no overflow */
    if (*i == start || (*i < n && !vae__pnm_space(p[*i]) && p[*i] != '#')) return -1;
    return v > max ? -2 : v;
}

VAEDEF vae_result vae_pnm_decode(const unsigned char *buf, size_t size, unsigned char *out, size_t cap,
                                 int *w, int *h, int *c, char *err)
{
    static const char *const field[3] = { "width", "height", "maxval" };
    long v[3];
    size_t i = 2, count, need, k;
    int ascii, ch, f, ovf = 0;
    if (!buf || !w || !h || !c) return vae__fail(err, VAE_ERROR_INVALID_ARGUMENT, "pnm: NULL argument");
    *w = *h = *c = 0;
    if (size < 3 || buf[0] != 'P' || (buf[1] != '2' && buf[1] != '3' && buf[1] != '5' && buf[1] != '6') ||
        (!vae__pnm_space(buf[2]) && buf[2] != '#')) {
        if (size >= 2 && buf[0] == 'P' && buf[1] >= '1' && buf[1] <= '7')
            return vae__fail(err, VAE_ERROR_FORMAT, "pnm: P%c (%s) is not supported, only PGM (P2, P5) and PPM (P3, P6)",
                             buf[1], buf[1] == '1' || buf[1] == '4' ? "PBM bitmap" : buf[1] == '7' ? "PAM" : "bad magic");
        return vae__fail(err, VAE_ERROR_FORMAT, "pnm: not a PGM or PPM image (it must start with P2, P3, P5 or P6)");
    }
    ascii = buf[1] == '2' || buf[1] == '3';
    ch = buf[1] == '2' || buf[1] == '5' ? 1 : 3;
    for (f = 0; f < 3; f++) {
        v[f] = vae__pnm_number(buf, size, &i, f < 2 ? VAE__MAX_DIM : 65535);
        if (v[f] == -2) return vae__fail(err, VAE_ERROR_FORMAT, "pnm: %s above the limit of %d", field[f], f < 2 ? VAE__MAX_DIM : 65535);
        if (v[f] < 0) return vae__fail(err, VAE_ERROR_FORMAT, "pnm: %s", i >= size ? "truncated header" : "malformed header (expected a number)");
        if (v[f] == 0) return vae__fail(err, VAE_ERROR_FORMAT, "pnm: %s is 0", field[f]);
    }
    /* Exactly one whitespace character ends the header; a comment before it runs to it. */
    if (i < size && buf[i] == '#')
        while (i < size && buf[i] != '\n' && buf[i] != '\r') i++;
    i = i < size ? i + 1 : size;
    count = vae__mul(vae__mul((size_t)v[0], (size_t)v[1], &ovf), (size_t)ch, &ovf);
    /* An ASCII sample takes a digit and a separator, a binary one 1 or 2 bytes. */
    need = ascii ? vae__mul(count, 2, &ovf) - 1 : vae__mul(count, v[2] > 255 ? 2 : 1, &ovf);
    if (ovf) return vae__fail(err, VAE_ERROR_FORMAT, "pnm: %ldx%ld image is too large", v[0], v[1]);
    if (size - i < need)
        return vae__fail(err, VAE_ERROR_FORMAT, "pnm: truncated: a %ldx%ld image needs %s%lu bytes of samples, the file has %lu",
                         v[0], v[1], ascii ? "at least " : "", (unsigned long)need, (unsigned long)(size - i));
    if (out && cap < count)
        return vae__fail(err, VAE_ERROR_INVALID_ARGUMENT, "pnm: output of %lu bytes is too small for %lu", (unsigned long)cap, (unsigned long)count);
    *w = (int)v[0]; *h = (int)v[1]; *c = ch;
    for (k = 0; out && k < count; k++) {
        long s;
        if (ascii) {
            s = vae__pnm_number(buf, size, &i, 65535);
            if (s < 0) return vae__fail(err, VAE_ERROR_FORMAT, "pnm: sample %lu is %s", (unsigned long)k, i >= size ? "missing (truncated)" : "not a number");
        } else if (v[2] > 255) {
            s = (long)buf[i] << 8 | buf[i + 1];
            i += 2;
        } else {
            s = buf[i++];
        }
        if (s > v[2]) return vae__fail(err, VAE_ERROR_FORMAT, "pnm: sample %lu is %ld, above maxval %ld", (unsigned long)k, s, v[2]);
        out[k] = (unsigned char)(v[2] == 255 ? s : (s * 255 + v[2] / 2) / v[2]);
    }
    return VAE_OK;
}

/* ---- DEFLATE compressor (for PNG) ------------------------------------------ */

typedef struct vae__zout {
    unsigned char *buf;
    size_t cap, len;
    uint64_t acc;
    int nacc;
    int overflow;
} vae__zout;

/* Appends n (<= 32) bits LSB first. */
static void vae__zout_bits(vae__zout *o, uint32_t v, int n)
{
    o->acc |= (uint64_t)v << o->nacc;
    o->nacc += n;
    while (o->nacc >= 8) {
        if (o->len < o->cap) o->buf[o->len++] = (unsigned char)(o->acc & 0xFFu);
        else o->overflow = 1;
        o->acc >>= 8;
        o->nacc -= 8;
    }
}

/* Huffman codes go out MSB first, so they are bit-reversed before appending. */
static void vae__zout_code(vae__zout *o, uint32_t code, int n)
{
    uint32_t rev = 0;
    int i;
    for (i = 0; i < n; i++) rev |= ((code >> i) & 1u) << (n - 1 - i);
    vae__zout_bits(o, rev, n);
}

static void vae__zout_fixed_lit(vae__zout *o, int sym)
{
    if (sym < 144) vae__zout_code(o, 0x30u + (uint32_t)sym, 8);
    else if (sym < 256) vae__zout_code(o, 0x190u + (uint32_t)(sym - 144), 9);
    else if (sym < 280) vae__zout_code(o, (uint32_t)(sym - 256), 7);
    else vae__zout_code(o, 0xC0u + (uint32_t)(sym - 280), 8);
}

#define VAE__LZ_HASH_BITS 15
#define VAE__LZ_WINDOW 32768
#define VAE__LZ_MAX_CHAIN 48
#ifndef VAE__LZ_REBASE
#define VAE__LZ_REBASE (1L << 30) /* overridable only so tests can exercise it */
#endif

/* One final fixed-Huffman block with greedy hash-chain LZ77 matching; falls
 * back to stored blocks when that would be smaller (noise-like data), so the
 * output is never more than ~0.01% + 5 bytes larger than the input.
 * Returns 0 ok (*out VAE_MALLOC'd), 1 error. */
static int vae__deflate(const unsigned char *src, size_t n, unsigned char **out, size_t *outlen, char *err)
{
    vae__zout o;
    int32_t *head = NULL, *prev = NULL;
    size_t i, fixed_bound, stored_size, nblocks;
    *out = NULL;
    *outlen = 0;
    nblocks = n / 65535 + 1;
    /* Fixed codes spend at most 9 bits per literal, and a match (>= 3 bytes)
     * at most 31 bits, so 9/8 per input byte plus block framing bounds it. */
    if (n > ((size_t)-1 - 64) / 9 * 8 || nblocks > ((size_t)-1 - n) / 5 - 16) {
        vae__errf(err, "deflate: input too large");
        return 1;
    }
    fixed_bound = n / 8 * 9 + (n % 8) * 2 + 16;
    stored_size = n + 5 * nblocks;
    o.cap = fixed_bound;
    o.len = 0;
    o.acc = 0;
    o.nacc = 0;
    o.overflow = 0;
    o.buf = (unsigned char *)VAE_MALLOC(o.cap);
    head = (int32_t *)VAE_MALLOC(sizeof(int32_t) << VAE__LZ_HASH_BITS);
    prev = (int32_t *)VAE_MALLOC(sizeof(int32_t) * VAE__LZ_WINDOW);
    if (!o.buf || !head || !prev) {
        VAE_FREE(o.buf);
        VAE_FREE(head);
        VAE_FREE(prev);
        vae__errf(err, "deflate: out of memory");
        return 1;
    }
    for (i = 0; i < ((size_t)1 << VAE__LZ_HASH_BITS); i++) head[i] = -1;

    /* Positions are kept as int32 offsets relative to a sliding base so that
     * inputs beyond 2 GB work: every VAE__LZ_REBASE bytes the base moves and
     * all stored positions are shifted (entries that fall out become -1). */
    {
        size_t base = 0;
        vae__zout_bits(&o, 1u | (1u << 1), 3); /* BFINAL=1, BTYPE=01 (fixed) */
        i = 0;
        while (i < n) {
            size_t best = 0, bestd = 0;
            if (i - base >= (size_t)VAE__LZ_REBASE) {
                /* shift is a multiple of the window so ring slots stay valid */
                size_t k, shift = (i - base - VAE__LZ_WINDOW) & ~(size_t)(VAE__LZ_WINDOW - 1);
                for (k = 0; k < ((size_t)1 << VAE__LZ_HASH_BITS); k++)
                    head[k] = head[k] >= (int32_t)shift ? (int32_t)(head[k] - (int32_t)shift) : -1;
                for (k = 0; k < VAE__LZ_WINDOW; k++)
                    prev[k] = prev[k] >= (int32_t)shift ? (int32_t)(prev[k] - (int32_t)shift) : -1;
                base += shift;
            }
            if (n - i >= 3) {
                uint32_t h = (((uint32_t)src[i] << 16) | ((uint32_t)src[i + 1] << 8) | src[i + 2]) * 2654435761u;
                int32_t cand, cur = (int32_t)(i - base);
                int chain = 0;
                size_t maxlen = n - i < 258 ? n - i : 258;
                h >>= 32 - VAE__LZ_HASH_BITS;
                cand = head[h];
                while (cand >= 0 && cand < cur && cur - cand <= VAE__LZ_WINDOW && chain++ < VAE__LZ_MAX_CHAIN) {
                    const unsigned char *a = src + base + (size_t)cand, *b = src + i;
                    size_t l = 0;
                    int32_t nxt;
                    if (a[best] == b[best]) {
                        while (l < maxlen && a[l] == b[l]) l++;
                        if (l > best) {
                            best = l;
                            bestd = (size_t)(cur - cand);
                            if (l == maxlen) break;
                        }
                    }
                    nxt = prev[(size_t)cand & (VAE__LZ_WINDOW - 1)];
                    if (nxt >= cand) break;
                    cand = nxt;
                }
            }
            if (best < 3) best = 0;
            {
                /* Insert every position covered by this step into the chains. */
                size_t step = best ? best : 1, k;
                for (k = i; k < i + step && n - k >= 3; k++) {
                    uint32_t h = (((uint32_t)src[k] << 16) | ((uint32_t)src[k + 1] << 8) | src[k + 2]) * 2654435761u;
                    h >>= 32 - VAE__LZ_HASH_BITS;
                    prev[(k - base) & (VAE__LZ_WINDOW - 1)] = head[h];
                    head[h] = (int32_t)(k - base);
                }
            }
            if (best) {
                int c = 28, dc = 29;
                while (vae__zlen_base[c] > best) c--;
                vae__zout_fixed_lit(&o, 257 + c);
                if (vae__zlen_extra[c]) vae__zout_bits(&o, (uint32_t)(best - vae__zlen_base[c]), vae__zlen_extra[c]);
                while (vae__zdist_base[dc] > bestd) dc--;
                vae__zout_code(&o, (uint32_t)dc, 5);
                if (vae__zdist_extra[dc]) vae__zout_bits(&o, (uint32_t)(bestd - vae__zdist_base[dc]), vae__zdist_extra[dc]);
                i += best;
            } else {
                vae__zout_fixed_lit(&o, src[i]);
                i++;
            }
        }
        vae__zout_fixed_lit(&o, 256);
        if (o.nacc > 0) vae__zout_bits(&o, 0, 8 - o.nacc);
    }
    VAE_FREE(head);
    VAE_FREE(prev);
    if (o.overflow || o.len >= stored_size) {
        /* Stored blocks: header bits 000/001, byte-aligned LEN, NLEN, data. */
        size_t p = 0, b = 0;
        VAE_FREE(o.buf);
        o.buf = (unsigned char *)VAE_MALLOC(stored_size);
        if (!o.buf) { vae__errf(err, "deflate: out of memory"); return 1; }
        do {
            size_t len = n - p < 65535 ? n - p : 65535;
            o.buf[b++] = (unsigned char)(p + len == n ? 1 : 0);
            o.buf[b++] = (unsigned char)(len & 0xFFu);
            o.buf[b++] = (unsigned char)(len >> 8);
            o.buf[b++] = (unsigned char)(~len & 0xFFu);
            o.buf[b++] = (unsigned char)((~len >> 8) & 0xFFu);
            if (len) memcpy(o.buf + b, src + p, len);
            b += len;
            p += len;
        } while (p < n);
        o.len = b;
    }
    *out = o.buf;
    *outlen = o.len;
    return 0;
}

/* ---- PNG encoder ------------------------------------------------------------ */

static void vae__png_put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* Writes a chunk (length, type, data, CRC over type+data) at p; returns bytes. */
static size_t vae__png_chunk(unsigned char *p, const char *type, const unsigned char *data, size_t len)
{
    vae__png_put_be32(p, (uint32_t)len);
    memcpy(p + 4, type, 4);
    if (len) memcpy(p + 8, data, len);
    vae__png_put_be32(p + 8 + len, vae__crc32(0, p + 4, len + 4));
    return len + 12;
}

static int vae__png_paeth(int a, int b, int c)
{
    int p = a + b - c, pa = p > a ? p - a : a - p, pb = p > b ? p - b : b - p, pc = p > c ? p - c : c - p;
    if (pa <= pb && pa <= pc) return a;
    return pb <= pc ? b : c;
}

/* 8-bit PNG of w x h pixels, channels 1 (gray), 3 (RGB) or 4 (RGBA), rows top
 * to bottom, interleaved. Each row gets the filter (of the five PNG filters)
 * with the smallest sum of |signed residual| - the usual cheap heuristic. */
VAE__MAYBE_UNUSED static int vae__png_encode(const unsigned char *pixels, int w, int h, int channels,
                           unsigned char **out, size_t *outlen, char *err)
{
    static const unsigned char sig[8] = { 137, 80, 78, 71, 13, 10, 26, 10 };
    unsigned char ihdr[13], *raw, *z, *png, *cand;
    size_t stride, rawlen, zlen, zsize, pngsize, nchunks, p, y, off;
    const size_t maxchunk = (size_t)1 << 30; /* PNG chunk length must be < 2^31 */
    uint32_t adler;
    if (!out || !outlen) { vae__errf(err, "png: NULL output argument"); return 1; }
    *out = NULL;
    *outlen = 0;
    if (!pixels) { vae__errf(err, "png: NULL pixels"); return 1; }
    if (w <= 0 || h <= 0) { vae__errf(err, "png: invalid size %dx%d", w, h); return 1; }
    if (channels != 1 && channels != 3 && channels != 4) { vae__errf(err, "png: channels must be 1, 3 or 4 (got %d)", channels); return 1; }
    if ((size_t)w > ((size_t)-1 - 1) / (size_t)channels) { vae__errf(err, "png: image too large"); return 1; }
    stride = (size_t)w * (size_t)channels;
    if ((size_t)h > ((size_t)-1 / 2) / (stride + 1)) { vae__errf(err, "png: image too large"); return 1; }
    rawlen = (size_t)h * (stride + 1);
    raw = (unsigned char *)VAE_MALLOC(rawlen);
    cand = (unsigned char *)VAE_MALLOC(5 * stride);
    if (!raw || !cand) {
        VAE_FREE(raw);
        VAE_FREE(cand);
        vae__errf(err, "png: out of memory");
        return 1;
    }
    for (y = 0; y < (size_t)h; y++) {
        const unsigned char *row = pixels + y * stride, *up = y ? row - stride : NULL;
        size_t x, bestsum = (size_t)-1;
        int f, best = 0;
        for (f = 0; f < 5; f++) {
            unsigned char *c = cand + (size_t)f * stride;
            size_t sum = 0;
            for (x = 0; x < stride; x++) {
                int a = x >= (size_t)channels ? row[x - (size_t)channels] : 0;
                int b = up ? up[x] : 0;
                int cc = (up && x >= (size_t)channels) ? up[x - (size_t)channels] : 0;
                int pred = f == 0 ? 0 : f == 1 ? a : f == 2 ? b : f == 3 ? (a + b) / 2 : vae__png_paeth(a, b, cc);
                unsigned char r = (unsigned char)((row[x] - pred) & 0xFF);
                c[x] = r;
                sum += r < 128 ? r : 256u - r;
            }
            if (sum < bestsum) {
                bestsum = sum;
                best = f;
            }
        }
        raw[y * (stride + 1)] = (unsigned char)best;
        memcpy(raw + y * (stride + 1) + 1, cand + (size_t)best * stride, stride);
    }
    VAE_FREE(cand);
    adler = vae__adler32(1, raw, rawlen);
    if (vae__deflate(raw, rawlen, &z, &zlen, err) != 0) {
        VAE_FREE(raw);
        return 1;
    }
    VAE_FREE(raw);
    /* zlib stream = 2-byte header (CM=8, 32K window, FCHECK so that the
     * 16-bit value is a multiple of 31) + deflate data + big-endian Adler-32. */
    zsize = zlen + 6;
    nchunks = zsize / maxchunk + 1;
    if (zsize < zlen || nchunks > ((size_t)-1 - zsize - 64) / 12) {
        VAE_FREE(z);
        vae__errf(err, "png: image too large");
        return 1;
    }
    pngsize = 8 + 25 + zsize + 12 * nchunks + 12;
    png = (unsigned char *)VAE_MALLOC(pngsize);
    if (!png) {
        VAE_FREE(z);
        vae__errf(err, "png: out of memory");
        return 1;
    }
    memcpy(png, sig, 8);
    p = 8;
    vae__png_put_be32(ihdr, (uint32_t)w);
    vae__png_put_be32(ihdr + 4, (uint32_t)h);
    ihdr[8] = 8;                                           /* bit depth */
    ihdr[9] = (unsigned char)(channels == 1 ? 0 : channels == 3 ? 2 : 6); /* colour type */
    ihdr[10] = 0;                                          /* deflate */
    ihdr[11] = 0;                                          /* adaptive filtering */
    ihdr[12] = 0;                                          /* no interlace */
    p += vae__png_chunk(png + p, "IHDR", ihdr, 13);
    {
        /* Assemble the whole zlib stream contiguously first so it can be cut
         * into IDAT chunks at arbitrary byte offsets. */
        unsigned char *zs = (unsigned char *)VAE_MALLOC(zsize);
        if (!zs) {
            VAE_FREE(z);
            VAE_FREE(png);
            vae__errf(err, "png: out of memory");
            return 1;
        }
        zs[0] = 0x78;
        zs[1] = 0x01;
        memcpy(zs + 2, z, zlen);
        vae__png_put_be32(zs + 2 + zlen, adler);
        VAE_FREE(z);
        for (off = 0; off < zsize; off += maxchunk) {
            size_t len = zsize - off < maxchunk ? zsize - off : maxchunk;
            p += vae__png_chunk(png + p, "IDAT", zs + off, len);
        }
        VAE_FREE(zs);
    }
    p += vae__png_chunk(png + p, "IEND", NULL, 0);
    *out = png;
    *outlen = p;
    return 0;
}

#ifndef VAE_NO_STDIO
/* Encodes and writes atomically (temporary file + rename, via the I/O layer). */
VAEDEF vae_result vae_png_write(const char *path, const unsigned char *pixels, int w, int h,
                                int channels, char *err)
{
    unsigned char *png;
    size_t len;
    int r;
    if (!path) return vae__fail(err, VAE_ERROR_INVALID_ARGUMENT, "png: NULL path");
    if (vae__png_encode(pixels, w, h, channels, &png, &len, err) != 0) return VAE_ERROR_INVALID_ARGUMENT;
    r = vae__file_write_atomic(path, png, len, err);
    VAE_FREE(png);
    return r ? VAE_ERROR_IO : VAE_OK;
}
#endif

/* ---- procedural "shapes" data set ------------------------------------------ */

#define VAE__SHAPES_CLASSES 7
#define VAE__SHAPES_DEFAULT_SIZE 28

/* sin(2*pi*i/64) * 16384, rounded; cos(i) = sin(i + 16). Computed offline. */
static const int32_t vae__shapes_sin64[64] = {
         0,   1606,   3196,   4756,   6270,   7723,   9102,  10394,
     11585,  12665,  13623,  14449,  15137,  15679,  16069,  16305,
     16384,  16305,  16069,  15679,  15137,  14449,  13623,  12665,
     11585,  10394,   9102,   7723,   6270,   4756,   3196,   1606,
         0,  -1606,  -3196,  -4756,  -6270,  -7723,  -9102, -10394,
    -11585, -12665, -13623, -14449, -15137, -15679, -16069, -16305,
    -16384, -16305, -16069, -15679, -15137, -14449, -13623, -12665,
    -11585, -10394,  -9102,  -7723,  -6270,  -4756,  -3196,  -1606 };

/* 5-pointed star, outer radius 1, inner radius 0.45, first tip at -y; Q14.
 * Computed offline as round(r * (cos, sin)(-pi/2 + k*pi/5) * 16384). */
static const int32_t vae__shapes_star[10][2] = {
    {0, -16384}, {4334, -5965}, {15582, -5063}, {7012, 2278}, {9630, 13255},
    {0, 7373}, {-9630, 13255}, {-7012, 2278}, {-15582, -5063}, {-4334, -5965} };

/* Shape labels (also the value returned by vae__shapes_image). */
#define VAE__SHAPE_CIRCLE   0
#define VAE__SHAPE_RING     1
#define VAE__SHAPE_SQUARE   2
#define VAE__SHAPE_TRIANGLE 3
#define VAE__SHAPE_PLUS     4
#define VAE__SHAPE_ELLIPSE  5
#define VAE__SHAPE_STAR     6

/* floor(x / 2^s) for |x| < 2^50 without a 64-bit division (slow) and
 * without right-shifting a negative value (implementation-defined in C):
 * bias to non-negative, shift as unsigned, remove the bias. */
#define VAE__SHAPES_FLOOR_SHIFT(x, s) \
    ((int64_t)((uint64_t)((x) + ((int64_t)1 << 50)) >> (s)) - ((int64_t)1 << (50 - (s))))

/* Renders image `index` of the data set defined by `seed` into img[size*size]
 * (row-major, 0 = black background, up to 255) and returns its label
 * 0..VAE__SHAPES_CLASSES-1, or -1 for bad arguments (size must be 8..1024).
 *
 * Portability: everything is integer arithmetic (coordinates in 1/256 pixel,
 * rotations in Q14 from a literal table), so the bytes are identical on every
 * platform and compiler; floats were avoided because compilers may contract
 * a*b+c into FMA (GCC does by default on aarch64) or use x87 excess precision,
 * which changes rounding at shape edges. The few remaining divisions have
 * operands whose truncation C99 defines. Anti-aliasing is 4x4 supersampling. */
static int vae__shapes_image(unsigned char *img, int size, uint64_t seed, uint64_t index)
{
    uint64_t st = seed;
    int64_t S, r, rmin, rmax, lo, hi, cx, cy, cs, sn, b, inner2, half, arm, ext, inv_a, inv_b;
    int64_t sv[10][2];
    int kind, orient, ang, inten, px, py, x0, x1, y0, y1, k;
    if (!img || size < 8 || size > 1024) return -1;
    /* Decorrelate (seed, index) pairs: splitmix64's output is a bijection of
     * its state, and state = f(seed) ^ index*odd is a bijection of index. */
    st = vae__splitmix64(&st) ^ (index * 0xD1B54A32D192ED03ULL);
    (void)vae__splitmix64(&st);
    kind = (int)(vae__splitmix64(&st) % VAE__SHAPES_CLASSES);
    S = (int64_t)size * 256;
    rmin = S * 20 / 100;
    rmax = S * 38 / 100;
    r = rmin + (int64_t)(vae__splitmix64(&st) % (uint64_t)(rmax - rmin + 1));
    /* Keep the whole shape (all fit in radius ~1.05 r) plus one pixel inside. */
    lo = r * 21 / 20 + 256;
    hi = S - lo;
    if (hi < lo) lo = hi = S / 2;
    cx = lo + (int64_t)(vae__splitmix64(&st) % (uint64_t)(hi - lo + 1));
    cy = lo + (int64_t)(vae__splitmix64(&st) % (uint64_t)(hi - lo + 1));
    ang = (int)(vae__splitmix64(&st) % 64);
    inten = 170 + (int)(vae__splitmix64(&st) % 86);
    b = r * (40 + (int64_t)(vae__splitmix64(&st) % 21)) / 100; /* ellipse minor semi-axis */
    sn = vae__shapes_sin64[ang];
    cs = vae__shapes_sin64[(ang + 16) & 63];
    inner2 = (r * 3 / 5) * (r * 3 / 5);
    half = r * 7 / 10;
    arm = r * 3 / 10;
    /* Ellipse test in normalised coordinates, with reciprocals (Q24) instead
     * of per-sample divisions; r >= 409 here, so u * inv_a stays < 2^46. */
    inv_a = ((int64_t)4096 << 24) / r;
    inv_b = ((int64_t)4096 << 24) / b;
    for (k = 0; k < 10; k++) {
        sv[k][0] = r * vae__shapes_star[k][0] / 16384;
        sv[k][1] = r * vae__shapes_star[k][1] / 16384;
    }
    /* Side of each star edge on which the centre lies (same for all edges). */
    orient = (sv[1][0] - sv[0][0]) * (0 - sv[0][1]) - (sv[1][1] - sv[0][1]) * (0 - sv[0][0]) >= 0;
    memset(img, 0, (size_t)size * (size_t)size);
    ext = r * 11 / 10 + 256;
    x0 = cx - ext < 0 ? 0 : (int)((cx - ext) / 256);
    y0 = cy - ext < 0 ? 0 : (int)((cy - ext) / 256);
    x1 = (cx + ext) / 256 >= size ? size - 1 : (int)((cx + ext) / 256);
    y1 = (cy + ext) / 256 >= size ? size - 1 : (int)((cy + ext) / 256);
    for (py = y0; py <= y1; py++) {
        for (px = x0; px <= x1; px++) {
            int cov = 0, sx, sy;
            for (sy = 0; sy < 4; sy++) {
                for (sx = 0; sx < 4; sx++) {
                    int64_t dx = (int64_t)px * 256 + sx * 64 + 32 - cx;
                    int64_t dy = (int64_t)py * 256 + sy * 64 + 32 - cy;
                    int64_t u = VAE__SHAPES_FLOOR_SHIFT(dx * cs + dy * sn, 14);
                    int64_t v = VAE__SHAPES_FLOOR_SHIFT(dy * cs - dx * sn, 14);
                    int64_t au = u < 0 ? -u : u, av = v < 0 ? -v : v, d2 = u * u + v * v;
                    int in = 0;
                    switch (kind) {
                    case VAE__SHAPE_CIRCLE: in = d2 <= r * r; break;
                    case VAE__SHAPE_RING: in = d2 <= r * r && d2 >= inner2; break;
                    case VAE__SHAPE_SQUARE: in = au <= half && av <= half; break;
                    case VAE__SHAPE_TRIANGLE:
                        /* Equilateral, circumradius r: three half-planes at
                         * inradius r/2; 28378 = sqrt(3) in Q14. */
                        in = 2 * v <= r && 28378 * u - 16384 * v <= 16384 * r &&
                             -28378 * u - 16384 * v <= 16384 * r;
                        break;
                    case VAE__SHAPE_PLUS: in = (au <= r && av <= arm) || (av <= r && au <= arm); break;
                    case VAE__SHAPE_ELLIPSE: {
                        int64_t nu = VAE__SHAPES_FLOOR_SHIFT(u * inv_a, 24);
                        int64_t nv = VAE__SHAPES_FLOOR_SHIFT(v * inv_b, 24);
                        in = nu * nu + nv * nv <= (int64_t)4096 * 4096;
                        break;
                    }
                    default:
                        /* Star: the tip with the largest dot product owns the
                         * 72-degree wedge containing the point; within it the
                         * star is the convex kite (centre, inner, tip, inner),
                         * so only the two edges at that tip need testing. */
                        if (d2 <= r * r) {
                            int best = 0, t;
                            int64_t bd = u * sv[0][0] + v * sv[0][1];
                            for (t = 1; t < 5; t++) {
                                int64_t dt = u * sv[2 * t][0] + v * sv[2 * t][1];
                                if (dt > bd) { bd = dt; best = t; }
                            }
                            {
                                const int64_t *pa = sv[(2 * best + 9) % 10], *pb = sv[2 * best], *pc = sv[2 * best + 1];
                                int64_t c1 = (pb[0] - pa[0]) * (v - pa[1]) - (pb[1] - pa[1]) * (u - pa[0]);
                                int64_t c2 = (pc[0] - pb[0]) * (v - pb[1]) - (pc[1] - pb[1]) * (u - pb[0]);
                                in = orient ? (c1 >= 0 && c2 >= 0) : (c1 <= 0 && c2 <= 0);
                            }
                        }
                        break;
                    }
                    cov += in;
                }
            }
            img[(size_t)py * (size_t)size + (size_t)px] = (unsigned char)((cov * inten + 8) / 16);
        }
    }
    return kind;
}

/* ---- data sets ------------------------------------------------------------- */

/* Allocates n images of c x h x w (and n labels if asked) in an empty d; the sizes are checked. */
static vae_result vae__data_alloc(vae_data *d, int n, int c, int h, int w, int labels, const char *what)
{
    int ovf = 0;
    size_t size = vae__mul(vae__mul(vae__mul((size_t)n, (size_t)c, &ovf), (size_t)h, &ovf), (size_t)w, &ovf);
    if (n < 1 || c < 1 || h < 1 || w < 1 || ovf)
        return vae__fail(d->error, VAE_ERROR_INVALID_ARGUMENT, "%s: cannot hold %d images of %dx%dx%d", what, n, c, h, w);
    d->pixels = (unsigned char *)VAE_MALLOC(size);
    d->labels = labels ? (unsigned char *)VAE_MALLOC((size_t)n) : NULL;
    if (!d->pixels || (labels && !d->labels)) {
        vae_data_free(d);
        return vae__fail(d->error, VAE_ERROR_OUT_OF_MEMORY, "%s: out of memory for %d images of %dx%dx%d", what, n, c, h, w);
    }
    d->n = n; d->c = c; d->h = h; d->w = w;
    return VAE_OK;
}

VAEDEF vae_result vae_data_shapes(vae_data *d, int n, int size, uint64_t seed, vae_split split)
{
    int i;
    size_t img;
    vae_result r;
    if (!d) return VAE_ERROR_INVALID_ARGUMENT;
    memset(d, 0, sizeof *d);
    if (n < 1 || n > (1 << 24) || size < 8 || size > 1024 || (int)split < 0 || split >= VAE_SPLIT_COUNT)
        return vae__fail(d->error, VAE_ERROR_INVALID_ARGUMENT, "shapes: need 1 <= n <= 2^24 images of 8..1024 pixels");
    if ((r = vae__data_alloc(d, n, 1, size, size, 1, "shapes")) != VAE_OK) return r;
    img = (size_t)size * size;
    /* The test split draws from indices 2^40 on, so the two splits never share an image. */
    for (i = 0; i < n; i++) {
        uint64_t index = (split == VAE_SPLIT_TEST ? (uint64_t)1 << 40 : 0) + (uint64_t)i;
        d->labels[i] = (unsigned char)vae__shapes_image(d->pixels + img * i, size, seed, index);
    }
    return VAE_OK;
}

VAEDEF vae_result vae_data_pad(vae_data *d, int h, int w)
{
    if (!d || (!d->pixels && !d->values)) return d ? vae__fail(d->error, VAE_ERROR_INVALID_ARGUMENT, "pad: empty data set") : VAE_ERROR_INVALID_ARGUMENT;
    if (h < d->h || w < d->w || h > VAE__MAX_DIM || w > VAE__MAX_DIM)
        return vae__fail(d->error, VAE_ERROR_INVALID_ARGUMENT, "pad: cannot pad %dx%d images to %dx%d", d->h, d->w, h, w);
    if (h == d->h && w == d->w) return VAE_OK;
    if (!d->src_h) { d->src_h = d->h; d->src_w = d->w; d->top = d->left = 0; }
    /* padding twice places the images as padding the padded images would */
    d->top += (h - d->h) / 2;
    d->left += (w - d->w) / 2;
    d->h = h; d->w = w;
    return VAE_OK;
}

#ifndef VAE_NO_STDIO
/* Reads a whole file, inflating it if it starts with the gzip magic bytes. */
static vae_result vae__file_bytes(const char *path, unsigned char **buf, size_t *n, char *err)
{
    char e[VAE_ERROR_SIZE];
    if (vae__file_read(path, buf, n, e) != 0) return vae__fail(err, VAE_ERROR_IO, "%s", e);
    if (*n >= 2 && (*buf)[0] == 0x1f && (*buf)[1] == 0x8b) {
        unsigned char *out;
        size_t len;
        int r = vae__gunzip(*buf, *n, &out, &len, (size_t)1 << 31, e);
        VAE_FREE(*buf);
        *buf = NULL;
        if (r != 0) return vae__fail(err, VAE_ERROR_FORMAT, "%s: %s", path, e);
        *buf = out; *n = len;
    }
    return VAE_OK;
}

VAEDEF vae_result vae_data_load_idx(vae_data *d, const char *images_path, const char *labels_path)
{
    unsigned char *buf = NULL;
    const unsigned char *data;
    size_t n;
    uint32_t dims[4];
    int nd;
    char e[VAE_ERROR_SIZE];
    vae_result r;
    if (!d) return VAE_ERROR_INVALID_ARGUMENT;
    memset(d, 0, sizeof *d);
    if (!images_path) return vae__fail(d->error, VAE_ERROR_INVALID_ARGUMENT, "idx: no images file given");
    if ((r = vae__file_bytes(images_path, &buf, &n, d->error)) != VAE_OK) return r;
    if (vae__idx_parse(buf, n, &nd, dims, &data, e) != 0 || nd != 3 || dims[0] < 1 || dims[1] > VAE__MAX_DIM || dims[2] > VAE__MAX_DIM) {
        VAE_FREE(buf);
        return vae__fail(d->error, VAE_ERROR_FORMAT, "%s: %s", images_path, nd != 3 && !e[0] ? "not an IDX file of images (n x h x w)" : e);
    }
    /* keep the decoded buffer: move the pixels to its start */
    memmove(buf, data, (size_t)dims[0] * dims[1] * dims[2]);
    d->pixels = buf; d->n = (int)dims[0]; d->c = 1; d->h = (int)dims[1]; d->w = (int)dims[2];
    if (labels_path) {
        if ((r = vae__file_bytes(labels_path, &buf, &n, d->error)) != VAE_OK) { vae_data_free(d); return r; }
        if (vae__idx_parse(buf, n, &nd, dims, &data, e) != 0 || nd != 1 || dims[0] != (uint32_t)d->n) {
            VAE_FREE(buf);
            r = vae__fail(e, VAE_ERROR_FORMAT, "%s: %s", labels_path, e[0] && nd == 1 ? "labels do not match the images' count" : e);
            vae_data_free(d);
            memcpy(d->error, e, sizeof e);
            return r;
        }
        memmove(buf, data, dims[0]);
        d->labels = buf;
    }
    return VAE_OK;
}

static int vae__file_exists(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f) fclose(f);
    return f != NULL;
}

/* Frees d's images but keeps its error message; returns r. */
static vae_result vae__data_drop(vae_data *d, vae_result r)
{
    char e[VAE_ERROR_SIZE];
    memcpy(e, d->error, sizeof e);
    vae_data_free(d);
    memcpy(d->error, e, sizeof e);
    return r;
}

/* ---- CIFAR-10 binary batches ---- */

#define VAE__CIFAR_IMAGE 3072   /* 3x32x32: the R, then G, then B plane */

/* Reads one batch file of records (a label byte, then the image). With d->pixels NULL it only
   checks the file and adds its records to *count; otherwise it copies them to images *count..
   of d and advances *count. */
static vae_result vae__cifar_file(vae_data *d, const char *path, int *count)
{
    unsigned char *buf;
    size_t n, k, recs;
    vae_result r = VAE_OK;
    if ((r = vae__file_bytes(path, &buf, &n, d->error)) != VAE_OK) return r;
    recs = n / (VAE__CIFAR_IMAGE + 1);
    if (n == 0 || n % (VAE__CIFAR_IMAGE + 1))
        r = vae__fail(d->error, VAE_ERROR_FORMAT, "%s: %lu bytes is not a whole number of %d-byte CIFAR-10 records (truncated?)",
                      path, (unsigned long)n, VAE__CIFAR_IMAGE + 1);
    else if (recs > (size_t)(INT_MAX - *count) || (d->pixels && recs > (size_t)(d->n - *count)))
        r = vae__fail(d->error, VAE_ERROR_FORMAT, "%s: %s", path, d->pixels ? "file changed while being read" : "too many images");
    for (k = 0; r == VAE_OK && k < recs; k++) {
        const unsigned char *rec = buf + k * (VAE__CIFAR_IMAGE + 1);
        if (rec[0] > 9) {
            r = vae__fail(d->error, VAE_ERROR_FORMAT, "%s: record %lu has label %d (CIFAR-10 labels are 0..9)", path, (unsigned long)k, rec[0]);
        } else if (d->pixels) {
            d->labels[*count + k] = rec[0];
            memcpy(d->pixels + (*count + k) * VAE__CIFAR_IMAGE, rec + 1, VAE__CIFAR_IMAGE);
        }
    }
    if (r == VAE_OK) *count += (int)recs;
    VAE_FREE(buf);
    return r;
}

VAEDEF vae_result vae_data_load_cifar(vae_data *d, const char *dir, vae_split split)
{
    char paths[5][1024];
    int nfiles = 0, i, pass, count = 0;
    vae_result r;
    if (!d) return VAE_ERROR_INVALID_ARGUMENT;
    memset(d, 0, sizeof *d);
    if (!dir || strlen(dir) > 900 || (int)split < 0 || split >= VAE_SPLIT_COUNT)
        return vae__fail(d->error, VAE_ERROR_INVALID_ARGUMENT, "cifar: no directory, a name too long, or a bad split");
    for (i = 0; i < (split == VAE_SPLIT_TEST ? 1 : 5); i++) {
        if (split == VAE_SPLIT_TEST) snprintf(paths[nfiles], sizeof paths[0], "%s/test_batch.bin", dir);
        else snprintf(paths[nfiles], sizeof paths[0], "%s/data_batch_%d.bin", dir, i + 1);
        nfiles += vae__file_exists(paths[nfiles]);
    }
    if (!nfiles)
        return vae__fail(d->error, VAE_ERROR_IO, "cifar: no %s in '%s'", split == VAE_SPLIT_TEST ? "test_batch.bin" : "data_batch_1.bin .. data_batch_5.bin", dir);
    /* Two passes, so that peak memory is the data set plus one file: count, then copy. */
    for (pass = 0; pass < 2; pass++) {
        for (count = 0, i = 0; i < nfiles; i++)
            if ((r = vae__cifar_file(d, paths[i], &count)) != VAE_OK) return vae__data_drop(d, r);
        if (pass == 0 && (r = vae__data_alloc(d, count, 3, 32, 32, 1, "cifar")) != VAE_OK) return r;
    }
    if (count != d->n) return vae__data_drop(d, vae__fail(d->error, VAE_ERROR_FORMAT, "cifar: files in '%s' changed while being read", dir));
    return VAE_OK;
}

/* Whether dir holds CIFAR-10 batches. */
static int vae__cifar_in(const char *dir)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/data_batch_1.bin", dir);
    if (vae__file_exists(p)) return 1;
    snprintf(p, sizeof p, "%s/test_batch.bin", dir);
    return vae__file_exists(p);
}

VAEDEF vae_result vae_data_load(vae_data *d, const char *dir, vae_split split)
{
    static const char *const forms[] = { "%s/%s-%s-idx%d-ubyte.gz", "%s/%s-%s-idx%d-ubyte", "%s/%s-%s.idx%d-ubyte" };
    const char *set = split == VAE_SPLIT_TEST ? "t10k" : "train";
    char img[1024], lab[1024];
    int i, have_img = 0, have_lab = 0;
    if (!d) return VAE_ERROR_INVALID_ARGUMENT;
    memset(d, 0, sizeof *d);
    if (!dir) return vae__fail(d->error, VAE_ERROR_INVALID_ARGUMENT, "data: no directory given");
    if (strlen(dir) > 900) return vae__fail(d->error, VAE_ERROR_INVALID_ARGUMENT, "data: directory name too long");
    for (i = 0; i < 3 && !have_img; i++) { snprintf(img, sizeof img, forms[i], dir, set, "images", 3); have_img = vae__file_exists(img); }
    for (i = 0; i < 3 && !have_lab; i++) { snprintf(lab, sizeof lab, forms[i], dir, set, "labels", 1); have_lab = vae__file_exists(lab); }
    if (have_img) return vae_data_load_idx(d, img, have_lab ? lab : NULL);
    if (vae__cifar_in(dir)) return vae_data_load_cifar(d, dir, split);
    snprintf(img, sizeof img, "%s/cifar-10-batches-bin", dir);
    if (vae__cifar_in(img)) return vae_data_load_cifar(d, img, split);
    return vae__fail(d->error, VAE_ERROR_IO, "data: no %s-images-idx3-ubyte[.gz] (MNIST, Fashion-MNIST) and no CIFAR-10 "
                     "batches (data_batch_N.bin, test_batch.bin) in '%s'", set, dir);
}

/* ---- netpbm files and folders of images ---- */

VAEDEF vae_result vae_pnm_load(const char *path, unsigned char *out, size_t cap, int *w, int *h, int *c, char *err)
{
    unsigned char *buf;
    size_t n;
    char e[VAE_ERROR_SIZE];
    vae_result r;
    if (!path) return vae__fail(err, VAE_ERROR_INVALID_ARGUMENT, "pnm: no file given");
    if ((r = vae__file_bytes(path, &buf, &n, err)) != VAE_OK) return r;
    if ((r = vae_pnm_decode(buf, n, out, cap, w, h, c, e)) != VAE_OK) vae__fail(err, r, "%s: %s", path, e);
    VAE_FREE(buf);
    return r;
}

static vae_result vae__pnm_read(void *user, const char *path, unsigned char *out, size_t cap, int *w, int *h, int *c, char *err)
{
    (void)user;
    return vae_pnm_load(path, out, cap, w, h, c, err);
}

VAEDEF vae_result vae_data_load_images(vae_data *d, const char *const *paths, int n, vae_image_read_fn read, void *user)
{
    unsigned char *img;
    int i, k, w = 0, h = 0, c = 1, iw, ih, ic, ovf = 0;
    size_t plane, j;
    vae_result r = VAE_OK;
    if (!d) return VAE_ERROR_INVALID_ARGUMENT;
    memset(d, 0, sizeof *d);
    if (!paths || n < 1) return vae__fail(d->error, VAE_ERROR_INVALID_ARGUMENT, "images: no files given");
    if (!read) read = vae__pnm_read;
    /* Every header first: the sizes must agree before anything is allocated. */
    for (i = 0; i < n; i++) {
        if ((r = read(user, paths[i], NULL, 0, &iw, &ih, &ic, d->error)) != VAE_OK) return r;
        if (iw < 1 || ih < 1 || iw > VAE__MAX_DIM || ih > VAE__MAX_DIM || (ic != 1 && ic != 3))
            return vae__fail(d->error, VAE_ERROR_FORMAT, "images: '%s' is %dx%d with %d channels (1 or 3 expected, sides up to %d)",
                             paths[i], iw, ih, ic, VAE__MAX_DIM);
        if (i == 0) { w = iw; h = ih; }
        if (iw != w || ih != h)
            return vae__fail(d->error, VAE_ERROR_FORMAT, "images: '%s' is %dx%d but '%s' is %dx%d; all images must have one size",
                             paths[i], iw, ih, paths[0], w, h);
        if (ic == 3) c = 3;
    }
    plane = vae__mul((size_t)w, (size_t)h, &ovf);
    (void)vae__mul(plane, 3, &ovf);
    if (ovf) return vae__fail(d->error, VAE_ERROR_FORMAT, "images: %dx%d is too large", w, h);
    if ((r = vae__data_alloc(d, n, c, h, w, 0, "images")) != VAE_OK) return r;
    img = (unsigned char *)VAE_MALLOC(plane * 3);
    if (!img) return vae__data_drop(d, vae__fail(d->error, VAE_ERROR_OUT_OF_MEMORY, "images: out of memory"));
    /* (h, w, ic) interleaved -> (c, h, w) planes; gray goes to every plane. */
    for (i = 0; i < n && r == VAE_OK; i++) {
        unsigned char *dst = d->pixels + (size_t)i * c * plane;
        if ((r = read(user, paths[i], img, plane * 3, &iw, &ih, &ic, d->error)) != VAE_OK) break;
        if (iw != w || ih != h || (ic != 1 && ic != 3)) {
            r = vae__fail(d->error, VAE_ERROR_FORMAT, "images: '%s' changed while being read", paths[i]);
            break;
        }
        for (k = 0; k < c; k++)
            for (j = 0; j < plane; j++) dst[k * plane + j] = img[j * ic + (ic == 3 ? k : 0)];
    }
    VAE_FREE(img);
    return r == VAE_OK ? r : vae__data_drop(d, r);
}
#endif /* VAE_NO_STDIO */


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
