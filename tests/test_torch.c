/* The vae.h side of `make test-torch` (tests/test_torch.py drives it and compares):

     test_torch describe PRESET C H W HIDDEN LATENT
         "missing" when vae.h has no such preset; else the preset's loss setup, input and
         latent shapes, and every tensor of its state_dict with its shape, one per line.
     test_torch run WEIGHTS CASE OUT
         WEIGHTS: a PyTorch state_dict (safetensors), loaded with vae_model_load_weights.
         CASE: tensors x (N,C,H,W) and eps (N, latent) and metadata (preset, shape, optimizer
         settings). Writes OUT (safetensors, every tensor flat F32):
           train.{mu,logvar,z,out,loss}    training mode (BatchNorm batch statistics), with
                                           eps fixed through vae_model.noise; loss = recon,kl,total
           grad.<name>                     every parameter's gradient of that loss
           kink.<k>                        U8: which branch the k-th relu/leakyrelu took (x > 0)
           eval.{mu,logvar,z,out,loss}     eval mode (running statistics), same eps
           adam.<name>, adamw.<name>, sgd.<name>   every tensor after one vae_model_train_step
                                           (the preset's clipping applies) with that optimizer
           eval.grad.<name>, eval.kink.<k>, eval.adam.<name>, eval.adamw.<name>, eval.sgd.<name>
                                           the same in eval mode (cfg.frozen_stats: BatchNorm
                                           normalises with its running statistics, left
                                           unchanged; PyTorch's model.eval() then backward/step)

   It includes the implementation and uses two internals: vae__gradients (forward, loss and
   backward without the update) and the safetensors reader/writer. */
#define VAE_IMPLEMENTATION
#include "../vae.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die(const char *msg, const char *detail)
{
    fprintf(stderr, "test_torch: %s%s%s\n", msg, detail ? ": " : "", detail ? detail : "");
    exit(1);
}

static const char *loss_name(vae_loss l) { return l == VAE_LOSS_BCE ? "bce" : l == VAE_LOSS_MSE ? "mse" : "?"; }
static const char *reduce_name(vae_reduce r) { return r == VAE_REDUCE_SUM ? "sum" : r == VAE_REDUCE_MEAN ? "mean" : "?"; }

static int make_arch(char *arch, const char *preset, int c, int h, int w, int hidden, int latent)
{
    return vae_arch_preset(arch, VAE_ARCH_MAX, preset, c, h, w, hidden, latent) == VAE_OK;
}

static int describe(const char *preset, int c, int h, int w, int hidden, int latent)
{
    vae_config cfg;
    vae_model m;
    char arch[VAE_ARCH_MAX], *p;
    const vae_layer *s;
    int i, d, nt;
    if (vae_config_preset(&cfg, preset) != VAE_OK) { printf("missing\n"); return 0; }
    if (!make_arch(arch, preset, c, h, w, hidden, latent)) { printf("badshape\n"); return 0; }
    cfg.batch = 1;
    if (vae_model_init(&m, arch, &cfg, VAE_INFERENCE) != VAE_OK) die(m.error, NULL);
    for (p = arch; *p; p++) if (*p == '\n') *p = ' ';
    s = &m.layers[m.sample_layer];
    printf("arch %s\n", arch);
    printf("loss %s\nreduce %s\n", loss_name(m.cfg.loss), reduce_name(m.cfg.reduce));
    printf("beta %.9g\nbeta_warmup %d\nlogvar_clamp %.9g\nclip %.9g\n", m.cfg.beta, m.cfg.beta_warmup, m.cfg.logvar_clamp, m.cfg.clip);
    printf("adam_betas %.9g %.9g\nadam_eps %.9g\n", m.cfg.beta1, m.cfg.beta2, m.cfg.eps);
    printf("input %d %d %d\nlatent %d %d %d\n", m.in_c, m.in_h, m.in_w, s->c, s->h, s->w);
    nt = vae_model_tensor_count(&m);
    for (i = 0; i < nt; i++) {
        vae_tensor_info t;
        vae_model_tensor(&m, i, &t);
        printf("tensor %s", t.name);
        for (d = 0; d < t.ndim; d++) printf(" %d", t.shape[d]);
        printf("\n");
    }
    for (i = 0; i < m.nlayers; i++)
        if (m.layers[i].op == VAE_OP_BATCHNORM) printf("counter %s.num_batches_tracked\n", m.layers[i].name);
    vae_model_free(&m);
    return 0;
}

/* ---- results: named flat float arrays, written at the end ---- */
#define MAX_OUT 4096
static vae__st_out g_out[MAX_OUT];
static int g_nout;

static void put_raw(const char *prefix, const char *name, int dtype, const void *data, size_t n)
{
    vae__st_out *o;
    char *nm;
    void *copy;
    size_t es = vae__st_dtype_size(dtype);
    if (g_nout == MAX_OUT) die("too many result tensors", NULL);
    o = &g_out[g_nout++];
    nm = (char *)malloc(strlen(prefix) + strlen(name) + 2);
    copy = malloc(es * (n ? n : 1));
    if (!nm || !copy) die("out of memory", NULL);
    sprintf(nm, "%s%s%s", prefix, *prefix ? "." : "", name);
    memcpy(copy, data, es * n);
    memset(o, 0, sizeof *o);
    o->name = nm; o->dtype = dtype; o->ndim = 1; o->shape[0] = n; o->data = copy;
}

static void put(const char *prefix, const char *name, const float *data, size_t n)
{
    put_raw(prefix, name, VAE__DT_F32, data, n);
}

/* The branch every relu / leakyrelu took in the last forward pass (input > 0), in layer
   order: where an input lies within rounding of 0 the two libraries may take different
   branches, and the derivative jumps there. */
static void put_kinks(const char *prefix, const vae_model *m, int n)
{
    int i, k = 0;
    for (i = 1; i < m->nlayers; i++) {
        const vae_layer *l = &m->layers[i];
        size_t cnt = (size_t)n * l->c * l->h * l->w, j;
        unsigned char *mask;
        char name[16];
        if (l->op != VAE_OP_RELU && l->op != VAE_OP_LEAKY_RELU) continue;
        mask = (unsigned char *)malloc(cnt ? cnt : 1);
        if (!mask) die("out of memory", NULL);
        for (j = 0; j < cnt; j++) mask[j] = m->layers[i - 1].y[j] > 0;
        sprintf(name, "%d", k++);
        put_raw(prefix, name, VAE__DT_U8, mask, cnt);
        free(mask);
    }
}

/* The case file: kept open (tensors point into it) for the whole run. */
static vae__st g_case;
static unsigned char *g_case_buf;

static const char *meta(const char *key)
{
    const char *v = vae__st_meta(&g_case, key);
    if (!v) die("case: missing metadata", key);
    return v;
}
static double meta_num(const char *key) { return atof(meta(key)); }

static float *tensor(const char *name, size_t want)
{
    const vae__st_tensor *t = vae__st_find(&g_case, name);
    size_t n = 1;
    int d;
    float *f;
    if (!t || t->dtype != VAE__DT_F32) die("case: missing F32 tensor", name);
    for (d = 0; d < t->ndim; d++) n *= (size_t)t->shape[d];
    if (n != want) die("case: tensor has the wrong size", name);
    f = (float *)malloc(sizeof(float) * n);
    if (!f) die("out of memory", NULL);
    memcpy(f, t->data, sizeof(float) * n);
    return f;
}

static void model_open(vae_model *m, const char *arch, const vae_config *cfg, const char *weights, const float *eps)
{
    if (vae_model_init(m, arch, cfg, 0) != VAE_OK) die(m->error, NULL);
    if (vae_model_load_weights(m, weights) != VAE_OK) die(m->error, NULL);
    m->noise = eps;
}

/* mu, logvar (clamped as the sample layer clamps it), z and the decoder output of the last
   forward pass over n images. */
static void put_forward(const char *mode, const vae_model *m, int n, const vae_stats *st)
{
    const vae_layer *smp = &m->layers[m->sample_layer], *enc = &m->layers[m->sample_layer - 1];
    int L = m->latent, i, j;
    float *mu = (float *)malloc(sizeof(float) * (size_t)n * L), *lv = (float *)malloc(sizeof(float) * (size_t)n * L);
    float loss[3];
    if (!mu || !lv) die("out of memory", NULL);
    for (i = 0; i < n; i++)
        for (j = 0; j < L; j++) {
            float v = enc->y[(size_t)i * 2 * L + L + j];
            mu[(size_t)i * L + j] = enc->y[(size_t)i * 2 * L + j];
            lv[(size_t)i * L + j] = smp->alpha > 0 ? VAE__MIN(VAE__MAX(v, -smp->alpha), smp->alpha) : v;
        }
    put(mode, "mu", mu, (size_t)n * L);
    put(mode, "logvar", lv, (size_t)n * L);
    put(mode, "z", smp->y, (size_t)n * L);
    put(mode, "out", m->layers[m->nlayers - 1].y, (size_t)n * m->out_size);
    loss[0] = (float)st->recon; loss[1] = (float)st->kl; loss[2] = (float)st->loss;
    put(mode, "loss", loss, 3);
    free(mu); free(lv);
}

static void put_tensors(const char *prefix, const vae_model *m, int grads)
{
    int i, nt = vae_model_tensor_count(m);
    for (i = 0; i < nt; i++) {
        vae_tensor_info t;
        size_t cnt = 1;
        int d;
        vae_model_tensor(m, i, &t);
        if (grads && t.is_state) continue;
        for (d = 0; d < t.ndim; d++) cnt *= (size_t)t.shape[d];
        put(prefix, t.name, grads ? t.grad : t.data, cnt);
    }
}

static int run(const char *weights, const char *case_path, const char *out_path)
{
    static const char *optims[3] = { "adam", "adamw", "sgd" };
    char arch[VAE_ARCH_MAX], err[VAE_ERROR_SIZE];
    size_t size;
    vae_config cfg;
    vae_model m;
    vae_stats st;
    vae_rng rng;
    float *x, *eps;
    int n, k;
    if (vae__file_read(case_path, &g_case_buf, &size, err) || vae__st_parse(&g_case, g_case_buf, size, err)) die(case_path, err);
    if (vae_config_preset(&cfg, meta("preset")) != VAE_OK) die("unknown preset", meta("preset"));
    if (!make_arch(arch, meta("preset"), (int)meta_num("c"), (int)meta_num("h"), (int)meta_num("w"),
                   (int)meta_num("hidden"), (int)meta_num("latent")))
        die("the preset does not take this shape", meta("preset"));
    n = (int)meta_num("n");
    cfg.batch = n;
    cfg.threads = 1;
    cfg.optim = VAE_OPTIM_ADAM;

    /* training mode: forward with batch statistics, loss, gradients (no update) */
    model_open(&m, arch, &cfg, weights, NULL);
    x = tensor("x", (size_t)n * m.in_size);
    eps = tensor("eps", (size_t)n * m.latent);
    m.noise = eps;
    memcpy(m.layers[0].y, x, sizeof(float) * (size_t)n * m.in_size);
    if (vae__gradients(&m, x, n, &st) != VAE_OK) die(m.error, NULL);
    put_forward("train", &m, n, &st);
    put_tensors("grad", &m, 1);
    put_kinks("kink", &m, n);

    /* eval mode: the running statistics (reloaded: the training pass moved them) */
    if (vae_model_load_weights(&m, weights) != VAE_OK) die(m.error, NULL);
    vae_rng_seed(&rng, 1);   /* an rng asks for noise; vae_model.noise supplies it */
    if (vae_model_evaluate(&m, x, n, &rng, &st) != VAE_OK) die(m.error, NULL);
    put_forward("eval", &m, n, &st);
    vae_model_free(&m);

    /* eval mode in training (frozen statistics): gradients, no update */
    cfg.frozen_stats = 1;
    model_open(&m, arch, &cfg, weights, eps);
    if (vae__gradients(&m, x, n, &st) != VAE_OK) die(m.error, NULL);
    put_tensors("eval.grad", &m, 1);
    put_kinks("eval.kink", &m, n);
    vae_model_free(&m);

    /* one step of each optimizer from the same weights, in training mode and in eval mode */
    for (k = 0; k < 6; k++) {
        char key[32], prefix[32];
        cfg.frozen_stats = k >= 3;
        cfg.optim = k % 3 == 0 ? VAE_OPTIM_ADAM : k % 3 == 1 ? VAE_OPTIM_ADAMW : VAE_OPTIM_SGD;
        sprintf(key, "%s_lr", optims[k % 3]); cfg.lr = (float)meta_num(key);
        sprintf(key, "%s_wd", optims[k % 3]); cfg.weight_decay = (float)meta_num(key);
        cfg.momentum = k % 3 == 2 ? (float)meta_num("sgd_momentum") : 0.0f;
        sprintf(prefix, "%s%s", k >= 3 ? "eval." : "", optims[k % 3]);
        model_open(&m, arch, &cfg, weights, eps);
        if (vae_model_train_step(&m, x, n, &st) != VAE_OK) die(m.error, NULL);
        put_tensors(prefix, &m, 0);
        vae_model_free(&m);
    }
    if (vae__st_save(out_path, g_out, g_nout, NULL, NULL, 0, err)) die(out_path, err);
    for (k = 0; k < g_nout; k++) { free((void *)g_out[k].name); free((void *)g_out[k].data); }
    free(x); free(eps);
    vae__st_free(&g_case);
    free(g_case_buf);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 8 && strcmp(argv[1], "describe") == 0)
        return describe(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), atoi(argv[6]), atoi(argv[7]));
    if (argc == 5 && strcmp(argv[1], "run") == 0) return run(argv[2], argv[3], argv[4]);
    fprintf(stderr, "usage: test_torch describe PRESET C H W HIDDEN LATENT | run WEIGHTS CASE OUT\n");
    return 2;
}
