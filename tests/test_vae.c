/* The vae.h test suite: every check compares against a scalar reference, a finite
   difference, a closed form or hand-computed values.

   Build and run:  make test      (or: cc -O2 -Itests tests/test_vae.c -lm && ./a.out)
   It includes the implementation directly so it can reach the private vae__* functions.
   The last line is "N passed, M failed". */
#define VAE_IMPLEMENTATION
#include "../vae.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

static int t_pass, t_fail, t_cur_failed;
static const char *t_name;

#define CHECK(cond, ...) do { if (!(cond)) { \
    if (!t_cur_failed) printf("FAIL %s\n", t_name); \
    t_cur_failed = 1; printf("  %s:%d: ", __FILE__, __LINE__); printf(__VA_ARGS__); printf("\n"); } } while (0)

static void run(const char *name, void (*fn)(void))
{
    t_name = name; t_cur_failed = 0;
    fn();
    if (t_cur_failed) t_fail++; else { t_pass++; printf("ok   %s\n", name); }
    fflush(stdout);
}

static double relerr(double a, double b) { return fabs(a - b) / fmax(1e-6, fmax(fabs(a), fabs(b))); }

static void fill_uniform(float *p, size_t n, float lo, float hi, uint64_t seed)
{
    vae_rng r; size_t i;
    vae_rng_seed(&r, seed);
    for (i = 0; i < n; i++) p[i] = lo + (hi - lo) * vae_rng_uniform(&r);
}

/* ---------------------------------------------------------------- rng */

/* An independent transcription of the published reference algorithms. */
static uint64_t ref_splitmix(uint64_t *s)
{
    uint64_t z;
    *s += 0x9e3779b97f4a7c15ull;
    z = *s;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static uint32_t ref_rotl(uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }
static uint32_t ref_xoshiro128ss(uint32_t s[4])
{
    uint32_t result = ref_rotl(s[1] * 5, 7) * 9, t = s[1] << 9;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t; s[3] = ref_rotl(s[3], 11);
    return result;
}

static void test_rng(void)
{
    uint64_t s = 0, a, b;
    uint32_t ref[4];
    vae_rng r, r2;
    int i;
    /* splitmix64 from 0: the published first output */
    CHECK(ref_splitmix(&s) == 0xe220a8397b1dcdafull, "splitmix64 reference vector");
    s = 12345; a = ref_splitmix(&s); b = ref_splitmix(&s);
    ref[0] = (uint32_t)a; ref[1] = (uint32_t)(a >> 32); ref[2] = (uint32_t)b; ref[3] = (uint32_t)(b >> 32);
    vae_rng_seed(&r, 12345);
    for (i = 0; i < 1000; i++) { uint32_t x = vae_rng_u32(&r), y = ref_xoshiro128ss(ref); if (x != y) { CHECK(0, "xoshiro128** differs at %d", i); break; } }
    vae_rng_seed(&r, 7); vae_rng_seed(&r2, 7);
    for (i = 0; i < 100; i++) CHECK(vae_rng_normal(&r) == vae_rng_normal(&r2), "same seed, same normals");
    vae_rng_seed(&r2, 8);
    CHECK(vae_rng_u32(&r) != vae_rng_u32(&r2), "different seeds differ");
}

static void test_rng_normal_moments(void)
{
    vae_rng r;
    double m1 = 0, m2 = 0, m4 = 0;
    int i, n = 400000, tail = 0;
    vae_rng_seed(&r, 99);
    for (i = 0; i < n; i++) {
        double x = vae_rng_normal(&r);
        m1 += x; m2 += x * x; m4 += x * x * x * x;
        if (fabs(x) > 1.959964) tail++;
    }
    m1 /= n; m2 /= n; m4 /= n;
    CHECK(fabs(m1) < 0.01, "mean %g", m1);
    CHECK(fabs(m2 - 1) < 0.01, "variance %g", m2);
    CHECK(fabs(m4 - 3) < 0.06, "fourth moment %g (3 for a normal)", m4);
    CHECK(fabs((double)tail / n - 0.05) < 0.003, "two-sided 5%% tail %g", (double)tail / n);
}

/* vae_rng_normals: both variates of each polar pair; the first of each pair is what
   vae_rng_normal returns for the same state, and the whole stream has normal moments. */
static void test_rng_normals(void)
{
    enum { N = 400001 };
    static float x[N];
    vae_rng r, r2;
    double m1 = 0, m2 = 0, m4 = 0, c = 0;
    int i, tail = 0;
    vae_rng_seed(&r, 99); vae_rng_seed(&r2, 99);
    vae_rng_normals(&r, x, N);
    for (i = 0; i < 1000; i += 2) if (x[i] != vae_rng_normal(&r2)) { CHECK(0, "pair %d: first variate differs", i / 2); break; }
    for (i = 0; i < N; i++) {
        double v = x[i];
        m1 += v; m2 += v * v; m4 += v * v * v * v;
        if (fabs(v) > 1.959964) tail++;
        if (i % 2) c += (double)x[i - 1] * v;
    }
    m1 /= N; m2 /= N; m4 /= N; c /= N / 2;
    CHECK(fabs(m1) < 0.01, "normals: mean %g", m1);
    CHECK(fabs(m2 - 1) < 0.01, "normals: variance %g", m2);
    CHECK(fabs(m4 - 3) < 0.06, "normals: fourth moment %g (3 for a normal)", m4);
    CHECK(fabs((double)tail / N - 0.05) < 0.003, "normals: two-sided 5%% tail %g", (double)tail / N);
    CHECK(fabs(c) < 0.01, "normals: the two variates of a pair are uncorrelated (%g)", c);
    vae_rng_seed(&r, 5); vae_rng_seed(&r2, 5);
    vae_rng_normals(&r, x, 7); vae_rng_normals(&r2, x + 7, 8);
    for (i = 0; i < 6; i++) CHECK(x[i] == x[7 + i], "normals: a prefix of the stream for n = 7 vs 8 (%d)", i);
}

static void test_log(void)
{
    double x;
    int bad = 0;
    for (x = 1e-12; x < 1.0; x *= 1.37) if (relerr(vae__log(x), log(x)) > 1e-14 && fabs(vae__log(x) - log(x)) > 1e-15) bad++;
    CHECK(bad == 0, "vae__log vs libm log: %d mismatches", bad);
}

static void test_shuffle(void)
{
    static unsigned char seen[100003];
    uint32_t ns[] = { 1, 2, 3, 7, 128, 1000, 60000, 100003 };
    size_t k;
    for (k = 0; k < sizeof ns / sizeof ns[0]; k++) {
        uint32_t n = ns[k], i, fixed = 0;
        int ok = 1;
        memset(seen, 0, n);
        for (i = 0; i < n; i++) {
            uint32_t j = vae_shuffle_index(5, 3, i, n);
            if (j >= n || seen[j]) { ok = 0; break; }
            seen[j] = 1;
            fixed += j == i;
        }
        CHECK(ok, "shuffle of %u is a permutation", n);
        if (n >= 1000) CHECK(fixed < n / 100, "shuffle of %u leaves %u in place", n, fixed);
    }
    CHECK(vae_shuffle_index(5, 3, 17, 1000) != vae_shuffle_index(5, 4, 17, 1000) ||
          vae_shuffle_index(5, 3, 18, 1000) != vae_shuffle_index(5, 4, 18, 1000), "epochs differ");
}

/* ---------------------------------------------------------------- layers */

static void test_linear_vs_reference(void)
{
    enum { N = 5, IN = 13, OUT = 7 };
    float x[N * IN], w[OUT * IN], b[OUT], y[N * OUT], dy[N * OUT], dx[N * IN], dw[OUT * IN], db[OUT];
    vae__gemm_ctx g = { 1, NULL, 0, -1 };
    int i, o, k;
    double worst = 0;
    fill_uniform(x, N * IN, -1, 1, 1); fill_uniform(w, OUT * IN, -1, 1, 2);
    fill_uniform(b, OUT, -1, 1, 3); fill_uniform(dy, N * OUT, -1, 1, 4);
    vae__linear_forward(&g, y, x, w, b, N, IN, OUT);
    vae__linear_backward(&g, dx, dw, db, dy, x, w, N, IN, OUT);
    for (i = 0; i < N; i++) for (o = 0; o < OUT; o++) {
        double s = b[o];
        for (k = 0; k < IN; k++) s += (double)x[i * IN + k] * w[o * IN + k];
        worst = fmax(worst, fabs(s - y[i * OUT + o]));
    }
    CHECK(worst < 1e-5, "forward vs double reference: %g", worst);
    worst = 0;
    for (o = 0; o < OUT; o++) {
        double s = 0;
        for (i = 0; i < N; i++) s += dy[i * OUT + o];
        worst = fmax(worst, fabs(s - db[o]));
        for (k = 0; k < IN; k++) {
            s = 0;
            for (i = 0; i < N; i++) s += (double)dy[i * OUT + o] * x[i * IN + k];
            worst = fmax(worst, fabs(s - dw[o * IN + k]));
        }
    }
    for (i = 0; i < N; i++) for (k = 0; k < IN; k++) {
        double s = 0;
        for (o = 0; o < OUT; o++) s += (double)dy[i * OUT + o] * w[o * IN + k];
        worst = fmax(worst, fabs(s - dx[i * IN + k]));
    }
    CHECK(worst < 1e-5, "backward vs double reference: %g", worst);
}

/* Central differences of sum(dy * act(x)), one element at a time. */
static void test_activation_gradients(void)
{
    vae_op ops[] = { VAE_OP_RELU, VAE_OP_LEAKY_RELU, VAE_OP_SIGMOID, VAE_OP_TANH, VAE_OP_SILU };
    enum { C = 64 };
    float x[C], y[C], dy[C], dx[C];
    size_t k, i;
    fill_uniform(x, C, -3, 3, 11); fill_uniform(dy, C, -1, 1, 12);
    for (k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        double worst = 0;
        vae__act_forward(ops[k], 0.1f, y, x, C);
        vae__act_backward(ops[k], 0.1f, dx, dy, x, y, C);
        for (i = 0; i < C; i++) {
            float h = 1e-2f, xp = x[i] + h, xm = x[i] - h, yp, ym;
            if (fabsf(x[i]) < 2 * h) continue;   /* relu/leakyrelu kink */
            vae__act_forward(ops[k], 0.1f, &yp, &xp, 1);
            vae__act_forward(ops[k], 0.1f, &ym, &xm, 1);
            worst = fmax(worst, fabs((double)dy[i] * (yp - ym) / (xp - xm) - dx[i]));
        }
        CHECK(worst < 2e-3, "%s: finite difference off by %g", vae__op_names[ops[k]], worst);
    }
}

/* The sampling layer: d/dx of sum(dz * z) + kl_w * KL, with and without clamps. */
static void test_sample_gradients(void)
{
    enum { N = 3, L = 4 };
    float x[N * 2 * L], z[N * L], eps[N * L], dz[N * L], dx[N * 2 * L];
    float clamps[2] = { 0, 1.5f }, kl_clamps[2] = { 0, 1.2f }, kl_w = 0.7f;
    int c, i, j;
    fill_uniform(x, N * 2 * L, -2, 2, 21); fill_uniform(dz, N * L, -1, 1, 22);
    for (c = 0; c < 4; c++) {
        float clamp = clamps[c & 1], kclamp = kl_clamps[c >> 1];
        double worst = 0;
        vae_rng r;
        vae_rng_seed(&r, 5);
        vae__sample_forward(z, eps, x, N, L, clamp, &r, NULL);
        vae__sample_backward(dx, dz, x, eps, N, L, clamp, kclamp, kl_w);
        for (i = 0; i < N * 2 * L; i++) {
            double f[2];
            int s;
            float keep = x[i], h = 1e-3f;
            int near_kink = (clamp > 0 && fabsf(fabsf(keep) - clamp) < 2 * h) || (kclamp > 0 && fabsf(fabsf(keep) - kclamp) < 2 * h);
            if (near_kink) continue;
            for (s = 0; s < 2; s++) {
                double tot = 0;
                x[i] = keep + (s ? -h : h);
                for (j = 0; j < N * L; j++) {
                    int b = j / L, k = j % L;
                    double mu = x[b * 2 * L + k], lv = x[b * 2 * L + L + k];
                    if (clamp > 0) lv = fmin(fmax(lv, -clamp), clamp);
                    tot += dz[j] * (mu + exp(0.5 * lv) * eps[j]);
                    if (kclamp > 0) lv = fmin(fmax(lv, -kclamp), kclamp);
                    tot += kl_w * -0.5 * (1 + lv - mu * mu - exp(lv));
                }
                f[s] = tot;
            }
            x[i] = keep;
            worst = fmax(worst, fabs((f[0] - f[1]) / (2 * h) - dx[i]));
        }
        CHECK(worst < 1e-3, "clamp %g kl_clamp %g: finite difference off by %g", clamp, kclamp, worst);
    }
}

/* ---------------------------------------------------------------- whole model */

static const char *tiny_arch =
    "input(1,4,5) flatten linear(7):enc tanh mulv(3):mu,lv sample "
    "linear(6):dec silu leakyrelu(0.2) linear(20):out reshape(1,4,5) sigmoid";

static double loss_at(vae_model *m, const float *x, int n, vae_rng saved)
{
    vae_stats st;
    m->rng = saved;
    vae__gradients(m, x, n, &st);
    return st.loss;
}

/* Every parameter's gradient against a central difference of the whole loss, plus a check
   along one random direction through all parameters at once. */
static void check_model_gradients(vae_config cfg, const char *arch, const char *what)
{
    vae_model m;
    enum { N = 3 };
    float x[N * 20], *g;
    vae_stats st;
    vae_rng saved;
    size_t i, np;
    double worst = 0, dirg = 0, f0, f1, h = 1e-2;
    float *u;
    CHECK(vae_model_init(&m, arch, &cfg, 0) == VAE_OK, "%s: init: %s", what, m.error);
    if (!m.layers) return;
    np = m.nparams;
    if (cfg.frozen_stats) {   /* running statistics away from (0, 1), so they matter */
        for (i = 0; i < (size_t)m.nlayers; i++)
            if (m.layers[i].op == VAE_OP_BATCHNORM) {
                vae_layer *l = &m.layers[i];
                fill_uniform(l->state, (size_t)l->c, -0.5f, 0.5f, 40 + i);
                fill_uniform(l->state + l->c, (size_t)l->c, 0.3f, 2.0f, 60 + i);
                fill_uniform(l->weight, (size_t)l->c, 0.5f, 1.5f, 80 + i);
                fill_uniform(l->bias, (size_t)l->c, -0.3f, 0.3f, 90 + i);
            }
    }
    fill_uniform(x, N * 20, 0, 1, 31);
    saved = m.rng;
    vae__gradients(&m, x, N, &st);
    g = (float *)malloc(sizeof(float) * np);
    u = (float *)malloc(sizeof(float) * np);
    memcpy(g, m.grads, sizeof(float) * np);
    for (i = 0; i < np; i++) {
        float keep = m.params[i];
        double num;
        m.params[i] = keep + (float)h; f0 = loss_at(&m, x, N, saved);
        m.params[i] = keep - (float)h; f1 = loss_at(&m, x, N, saved);
        m.params[i] = keep;
        num = (f0 - f1) / (2 * h);
        worst = fmax(worst, fabs(num - g[i]) / fmax(0.05, fabs(num)));
    }
    CHECK(worst < 2e-2, "%s: worst relative gradient error %g over %d parameters", what, worst, (int)np);
    fill_uniform(u, np, -1, 1, 32);
    h *= sqrt(3.0 / (double)np);   /* a step of length about h through all parameters */
    for (i = 0; i < np; i++) { dirg += (double)g[i] * u[i]; m.params[i] += (float)(h * u[i]); }
    f0 = loss_at(&m, x, N, saved);
    for (i = 0; i < np; i++) m.params[i] -= (float)(2 * h * u[i]);
    f1 = loss_at(&m, x, N, saved);
    CHECK(relerr((f0 - f1) / (2 * h), dirg) < 1e-2, "%s: directional derivative %g vs %g", what, (f0 - f1) / (2 * h), dirg);
    free(g); free(u);
    vae_model_free(&m);
}

static void test_model_gradients(void)
{
    vae_config c = vae_config_default();
    c.batch = 4;
    check_model_gradients(c, tiny_arch, "bce/sum");
    c.loss = VAE_LOSS_MSE; c.reduce = VAE_REDUCE_MEAN; c.beta = 0.3f;
    check_model_gradients(c, tiny_arch, "mse/mean beta 0.3");
    c.loss = VAE_LOSS_BCE; c.reduce = VAE_REDUCE_SUM; c.logvar_clamp = 0.5f;
    check_model_gradients(c, tiny_arch, "bce with KL clamp");
}

/* recon and KL against the textbook formulas in double */
static void test_loss_closed_form(void)
{
    vae_config c = vae_config_default();
    vae_model m;
    enum { N = 4 };
    float x[N * 20];
    vae_stats st;
    int i, j, r;
    for (r = 0; r < 2; r++) {
        double bce = 0, mse = 0, kl = 0;
        const vae_layer *enc, *lg, *out;
        c.batch = N; c.beta = 0.5f; c.loss = r ? VAE_LOSS_MSE : VAE_LOSS_BCE;
        CHECK(vae_model_init(&m, tiny_arch, &c, 0) == VAE_OK, "init: %s", m.error);
        fill_uniform(m.params, m.nparams, -1, 1, 41);
        fill_uniform(x, N * 20, 0, 1, 42);
        vae_model_evaluate(&m, x, N, NULL, &st);
        enc = &m.layers[m.sample_layer - 1]; lg = &m.layers[m.nlayers - 2]; out = &m.layers[m.nlayers - 1];
        for (i = 0; i < N; i++) {
            for (j = 0; j < 20; j++) {
                double l = lg->y[i * 20 + j], t = x[i * 20 + j], p = 1 / (1 + exp(-l));
                bce -= t * log(p) + (1 - t) * log(1 - p);
                mse += (out->y[i * 20 + j] - t) * (out->y[i * 20 + j] - t);
            }
            for (j = 0; j < 3; j++) {
                double mu = enc->y[i * 6 + j], lv = enc->y[i * 6 + 3 + j];
                kl += 0.5 * (mu * mu + exp(lv) - 1 - lv);
            }
        }
        bce /= N; mse /= N; kl /= N;
        CHECK(relerr(st.kl, kl) < 1e-5, "KL %g vs closed form %g", st.kl, kl);
        CHECK(relerr(st.recon, r ? mse : bce) < 1e-5, "%s %g vs closed form %g", r ? "MSE" : "BCE", st.recon, r ? mse : bce);
        CHECK(relerr(st.loss, st.recon + 0.5 * st.kl) < 1e-12, "total = recon + beta*KL");
        vae_model_free(&m);
    }
}

static void test_bce_extreme_logits(void)
{
    vae_config c = vae_config_default();
    vae_model m;
    float x[20], out[20];
    vae_stats st;
    int j;
    c.batch = 1;
    vae_model_init(&m, tiny_arch, &c, 0);
    for (j = 0; j < 20; j++) { x[j] = (float)(j % 2); }
    /* drive the output layer's logits to +-200 through its bias */
    memset(m.params, 0, sizeof(float) * m.nparams);
    for (j = 0; j < 20; j++) m.layers[m.nlayers - 3].bias[j] = j % 2 ? 200.0f : -200.0f;
    vae_model_evaluate(&m, x, 1, NULL, &st);
    CHECK(isfinite(st.recon) && st.recon < 1e-6, "matching saturated logits give ~0 BCE, got %g", st.recon);
    for (j = 0; j < 20; j++) x[j] = 1.0f - x[j];
    vae_model_evaluate(&m, x, 1, NULL, &st);
    CHECK(relerr(st.recon, 20 * 200.0) < 1e-6, "opposite saturated logits give 200 nats each, got %g", st.recon);
    vae_model_reconstruct(&m, x, 1, out);
    CHECK(out[1] == 1.0f && out[0] == 0.0f, "sigmoid output saturates cleanly");
    vae_model_free(&m);
}

/* ---------------------------------------------------------------- convolutions */

/* Direct-loop reference: y[o][oh][ow] = b[o] + sum w[o][c][kh][kw] x[c][oh*s-p+kh][ow*s-p+kw] */
static void ref_conv(double *y, const float *x, const float *w, const float *b, int C, int H, int W, int OC, int k, int s, int p, int OH, int OW)
{
    int o, c, kh, kw, oh, ow;
    for (o = 0; o < OC; o++) for (oh = 0; oh < OH; oh++) for (ow = 0; ow < OW; ow++) {
        double acc = b ? b[o] : 0;
        for (c = 0; c < C; c++) for (kh = 0; kh < k; kh++) for (kw = 0; kw < k; kw++) {
            int ih = oh * s - p + kh, iw = ow * s - p + kw;
            if (ih >= 0 && ih < H && iw >= 0 && iw < W) acc += (double)w[((o * C + c) * k + kh) * k + kw] * x[(c * H + ih) * W + iw];
        }
        y[(o * OH + oh) * OW + ow] = acc;
    }
}

/* Reference transposed conv: scatter each input pixel through the kernel (w is (C, OC, k, k)). */
static void ref_convt(double *y, const float *x, const float *w, const float *b, int C, int H, int W, int OC, int k, int s, int p, int OH, int OW)
{
    int o, c, kh, kw, ih, iw;
    for (o = 0; o < OC; o++) for (ih = 0; ih < OH * OW; ih++) y[o * OH * OW + ih] = b ? b[o] : 0;
    for (c = 0; c < C; c++) for (ih = 0; ih < H; ih++) for (iw = 0; iw < W; iw++)
        for (o = 0; o < OC; o++) for (kh = 0; kh < k; kh++) for (kw = 0; kw < k; kw++) {
            int oh = ih * s - p + kh, ow = iw * s - p + kw;
            if (oh >= 0 && oh < OH && ow >= 0 && ow < OW)
                y[(o * OH + oh) * OW + ow] += (double)w[((c * OC + o) * k + kh) * k + kw] * x[(c * H + ih) * W + iw];
        }
}

/* im2col/col2im convolutions against the direct loops, then their gradients against central
   differences of sum(dy * y), for conv and convt over several kernel/stride/padding sets. */
static void test_conv_layers(void)
{
    static const int cfg[][7] = { /* C, H, OC, k, s, p, W */
        { 3, 7, 4, 3, 1, 1, 7 }, { 2, 8, 3, 3, 2, 1, 8 }, { 3, 5, 2, 1, 1, 0, 5 }, { 2, 9, 3, 4, 2, 1, 9 }, { 1, 6, 2, 5, 1, 2, 6 },
        /* non-square, stride 3, a 1x1 with stride 2, kernel = stride, padding beyond the kernel */
        { 2, 9, 3, 3, 2, 1, 6 }, { 2, 10, 2, 3, 3, 2, 11 }, { 3, 7, 2, 1, 2, 0, 6 }, { 2, 8, 3, 2, 2, 0, 6 }, { 1, 5, 2, 2, 1, 2, 4 } };
    int t, tr, opad;
    for (tr = 0; tr < 2; tr++)
    for (t = 0; t < (int)(sizeof cfg / sizeof cfg[0]); t++)
    for (opad = 0; opad < (tr ? 2 : 1); opad++) {
        int C = cfg[t][0], H = cfg[t][1], OC = cfg[t][2], k = cfg[t][3], s = cfg[t][4], p = cfg[t][5], W = cfg[t][6];
        char arch[256];
        vae_model m;
        vae_config c = vae_config_default();
        vae_layer *l;
        int n = 3, OH, OW, i, j, nin, nout;
        float *x, *dy, *dx;
        double *ref, worst = 0, fd_worst = 0;
        vae__gemm_ctx g = { 1, NULL, 0, -1 };
        if (opad >= s) continue;
        /* a model just to own the layer and its buffers */
        snprintf(arch, sizeof arch, "input(%d,%d,%d) %s(%d,%d,%d,%d%s) flatten linear(2) sample linear(%d) reshape(1,%d,1) sigmoid",
                 C, H, W, tr ? "convt" : "conv", OC, k, s, p, tr ? (opad ? ",op=1" : ",op=0") : "", H, H);
        c.batch = n; c.loss = VAE_LOSS_BCE;
        if (vae_model_init(&m, arch, &c, 0) != VAE_OK) {
            /* the decoder shape is a placeholder; only the layer matters */
            snprintf(arch, sizeof arch, "input(%d,%d,%d) %s(%d,%d,%d,%d%s) flatten linear(2) sample linear(%d) reshape(%d,%d,%d) sigmoid",
                     C, H, W, tr ? "convt" : "conv", OC, k, s, p, tr ? (opad ? ",op=1" : ",op=0") : "", C * H * W, C, H, W);
            if (vae_model_init(&m, arch, &c, 0) != VAE_OK) { CHECK(0, "init %s: %s", arch, m.error); continue; }
        }
        l = &m.layers[1];
        OH = l->h; OW = l->w;
        nin = C * H * W; nout = OC * OH * OW;
        x = (float *)malloc(sizeof(float) * n * nin); dx = (float *)malloc(sizeof(float) * n * nin);
        dy = (float *)malloc(sizeof(float) * n * nout); ref = (double *)malloc(sizeof(double) * nout);
        fill_uniform(x, (size_t)n * nin, -1, 1, 100 + t); fill_uniform(dy, (size_t)n * nout, -1, 1, 200 + t);
        fill_uniform(l->weight, l->nparams, -1, 1, 300 + t);    /* weight then bias, contiguous */
        if (tr) vae__convt_forward(&g, l, l->y, x, n, m.cols, m.cols_floats); else vae__conv_forward(&g, l, l->y, x, n, m.cols, m.cols_floats);
        for (i = 0; i < n; i++) {
            if (tr) ref_convt(ref, x + i * nin, l->weight, l->bias, C, H, W, OC, k, s, p, OH, OW);
            else ref_conv(ref, x + i * nin, l->weight, l->bias, C, H, W, OC, k, s, p, OH, OW);
            for (j = 0; j < nout; j++) worst = fmax(worst, fabs(ref[j] - l->y[i * nout + j]));
        }
        CHECK(worst < 1e-4, "%s C%d H%d OC%d k%d s%d p%d op%d: forward off by %g", tr ? "convt" : "conv", C, H, OC, k, s, p, opad, worst);
        if (tr) vae__convt_backward(&g, l, dx, dy, x, n, m.cols, m.cols_floats); else vae__conv_backward(&g, l, dx, dy, x, n, m.cols, m.cols_floats);
        /* d/dtheta of sum(dy * y): y is linear in each of w, b and x, so a central difference
           with h = 0.5 is exact up to float rounding */
        {
            float *vars[2]; size_t counts[2]; float *grads[2]; int v;
            vars[0] = l->weight; counts[0] = l->nparams; grads[0] = l->dweight;   /* weight and bias */
            vars[1] = x; counts[1] = (size_t)n * nin; grads[1] = dx;
            for (v = 0; v < 2; v++) {
                size_t q;
                for (q = 0; q < counts[v]; q += 1 + counts[v] / 40) {
                    float keep = vars[v][q];
                    double f[2];
                    int sgn;
                    for (sgn = 0; sgn < 2; sgn++) {
                        double tot = 0;
                        vars[v][q] = keep + (sgn ? -0.5f : 0.5f);
                        if (tr) vae__convt_forward(&g, l, l->y, x, n, m.cols, m.cols_floats); else vae__conv_forward(&g, l, l->y, x, n, m.cols, m.cols_floats);
                        for (j = 0; j < n * nout; j++) tot += (double)dy[j] * l->y[j];
                        f[sgn] = tot;
                    }
                    vars[v][q] = keep;
                    fd_worst = fmax(fd_worst, fabs((f[0] - f[1]) - grads[v][q]) / fmax(1.0, fabs(grads[v][q])));
                }
            }
        }
        CHECK(fd_worst < 1e-4, "%s C%d H%d OC%d k%d s%d p%d op%d: gradient off by %g", tr ? "convt" : "conv", C, H, OC, k, s, p, opad, fd_worst);
        /* the GEMMs take several images side by side when the work space holds them: with room
           for one image at a time, and for two (chunks of 2 + 1), the results must agree */
        {
            size_t per = vae__conv_work(l), np = l->nparams, cap;
            float *y0 = (float *)malloc(sizeof(float) * n * nout), *g0 = (float *)malloc(sizeof(float) * np);
            float *dx0 = (float *)malloc(sizeof(float) * n * nin);
            double cw = 0;
            CHECK(m.cols_floats >= per * n && vae__conv_chunk(l, m.cols_floats, n) == n, "work space holds the batch");
            if (tr) { vae__convt_forward(&g, l, l->y, x, n, m.cols, m.cols_floats); vae__convt_backward(&g, l, dx, dy, x, n, m.cols, m.cols_floats); }
            else { vae__conv_forward(&g, l, l->y, x, n, m.cols, m.cols_floats); vae__conv_backward(&g, l, dx, dy, x, n, m.cols, m.cols_floats); }
            memcpy(y0, l->y, sizeof(float) * n * nout); memcpy(g0, l->dweight, sizeof(float) * np); memcpy(dx0, dx, sizeof(float) * n * nin);
            for (cap = per; cap <= 2 * per; cap += per) {
                CHECK(vae__conv_chunk(l, cap, n) == (int)(cap / per), "chunk of %d images", (int)(cap / per));
                if (tr) { vae__convt_forward(&g, l, l->y, x, n, m.cols, cap); vae__convt_backward(&g, l, dx, dy, x, n, m.cols, cap); }
                else { vae__conv_forward(&g, l, l->y, x, n, m.cols, cap); vae__conv_backward(&g, l, dx, dy, x, n, m.cols, cap); }
                for (j = 0; j < n * nout; j++) cw = fmax(cw, fabs(l->y[j] - y0[j]) / fmax(1.0, fabs(y0[j])));
                for (j = 0; j < (int)np; j++) cw = fmax(cw, fabs(l->dweight[j] - g0[j]) / fmax(1.0, fabs(g0[j])));
                for (j = 0; j < n * nin; j++) cw = fmax(cw, fabs(dx[j] - dx0[j]) / fmax(1.0, fabs(dx0[j])));
            }
            CHECK(cw < 1e-5, "%s C%d H%d OC%d k%d s%d p%d op%d: image-at-a-time vs chunked GEMMs differ by %g", tr ? "convt" : "conv", C, H, OC, k, s, p, opad, cw);
            free(y0); free(g0); free(dx0);
        }
        free(x); free(dx); free(dy); free(ref);
        vae_model_free(&m);
    }
}

/* A small convolutional VAE: whole-loss finite differences, then training on shapes. */
static const char *conv_arch =
    "input(1,28,28) conv(8,3,2,1):enc.0 relu conv(16,3,2,1):enc.2 relu flatten mulv(8):mu,lv sample "
    "linear(784):dec.0 relu reshape(16,7,7) convt(8,3,2,1,op=1):dec.3 relu convt(1,3,2,1,op=1):dec.5 sigmoid";

static void test_conv_model(void)
{
    vae_config c = vae_config_default();
    vae_model m;
    vae_data tr, te;
    vae_stats s0, s1;
    int e;
    c.batch = 32;
    CHECK(vae_model_init(&m, conv_arch, &c, 0) == VAE_OK, "init: %s", m.error);
    if (!m.layers) return;
    CHECK(m.layers[11].h == 14 && m.layers[13].h == 28, "transposed convs double the size: %d, %d", m.layers[11].h, m.layers[13].h);
    {
        vae_tensor_info t;
        vae_model_tensor(&m, 0, &t);
        CHECK(!strcmp(t.name, "enc.0.weight") && t.ndim == 4 && t.shape[0] == 8 && t.shape[1] == 1 && t.shape[2] == 3, "conv weight (8,1,3,3)");
        vae_model_tensor(&m, 10, &t);
        CHECK(!strcmp(t.name, "dec.3.weight") && t.ndim == 4 && t.shape[0] == 16 && t.shape[1] == 8, "convt weight (16,8,3,3): %s", t.name);
    }
    vae_data_shapes(&tr, 2048, 28, 5, VAE_SPLIT_TRAIN);
    vae_data_shapes(&te, 256, 28, 5, VAE_SPLIT_TEST);
    vae_model_evaluate_data(&m, &te, 1, &s0);
    for (e = 0; e < 3; e++) CHECK(vae_model_train_epoch(&m, &tr, NULL, NULL, NULL) == VAE_OK, "epoch: %s", m.error);
    vae_model_evaluate_data(&m, &te, 1, &s1);
    printf("     conv shapes: test loss %.2f -> %.2f nats/image after 3 epochs\n", s0.loss, s1.loss);
    CHECK(s1.loss < 0.5 * s0.loss, "conv test loss %g did not halve from %g", s1.loss, s0.loss);
    vae_model_free(&m); vae_data_free(&tr); vae_data_free(&te);
}

static void test_conv_model_gradients(void)
{
    vae_config c = vae_config_default();
    c.batch = 4; c.loss = VAE_LOSS_MSE; c.beta = 0.5f;
    check_model_gradients(c, "input(1,4,5) conv(3,3,1,1):c1 tanh conv(2,3,2,1):c2 silu flatten mulv(3):mu,lv sample "
                             "linear(12):d1 reshape(2,2,3) convt(2,3,2,1,op=1):d2 tanh conv(1,1):d3 reshape(1,4,6) "
                             "flatten linear(20):d4 reshape(1,4,5)", "conv model, mse");
}

/* ---------------------------------------------------------------- optimizers */

/* Three steps with set gradients against the textbook update rules, in double. */
static void check_optimizer(vae_optim opt, float wd, float mom, const char *what)
{
    vae_config c = vae_config_default();
    vae_model m;
    double p[8], mm[8] = { 0 }, vv[8] = { 0 }, worst = 0;
    float grads[3][8];
    int s, i, n;
    c.optim = opt; c.lr = 0.01f; c.weight_decay = wd; c.momentum = mom; c.batch = 1;
    CHECK(vae_model_init(&m, "input(2) linear(2) mulv(1) sample linear(2) sigmoid", &c, 0) == VAE_OK, "%s: init %s", what, m.error);
    n = (int)m.nparams < 8 ? (int)m.nparams : 8;
    for (i = 0; i < n; i++) p[i] = m.params[i];
    fill_uniform(&grads[0][0], 24, -1, 1, 51);
    for (s = 1; s <= 3; s++) {
        memset(m.grads, 0, sizeof(float) * m.nparams);
        for (i = 0; i < n; i++) m.grads[i] = grads[s - 1][i];
        vae__optim_step(&m);
        for (i = 0; i < n; i++) {
            double g = grads[s - 1][i];
            if (opt == VAE_OPTIM_SGD) {
                g += wd * p[i];
                mm[i] = mom * mm[i] + g;
                p[i] -= 0.01 * (mom > 0 ? mm[i] : g);
            } else {
                if (opt == VAE_OPTIM_ADAMW) p[i] *= 1 - 0.01 * wd; else g += wd * p[i];
                mm[i] = 0.9 * mm[i] + 0.1 * g;
                vv[i] = 0.999 * vv[i] + 0.001 * g * g;
                p[i] -= 0.01 * (mm[i] / (1 - pow(0.9, s))) / (sqrt(vv[i] / (1 - pow(0.999, s))) + 1e-8);
            }
            worst = fmax(worst, fabs(p[i] - m.params[i]));
        }
    }
    CHECK(worst < 2e-6, "%s: parameters differ from the hand-computed update by %g", what, worst);
    CHECK(m.step == 3, "%s: step counter", what);
    vae_model_free(&m);
}

static void test_optimizers(void)
{
    check_optimizer(VAE_OPTIM_SGD, 0, 0, "sgd");
    check_optimizer(VAE_OPTIM_SGD, 0.1f, 0.9f, "sgd momentum 0.9 wd 0.1");
    check_optimizer(VAE_OPTIM_ADAM, 0, 0, "adam");
    check_optimizer(VAE_OPTIM_ADAM, 0.05f, 0, "adam L2 0.05");
    check_optimizer(VAE_OPTIM_ADAMW, 0.05f, 0, "adamw 0.05");
}

static void test_grad_clip(void)
{
    vae_config c = vae_config_default();
    vae_model a;
    float x[4 * 20];
    vae_stats st;
    size_t i;
    double norm = 0;
    c.batch = 4; c.optim = VAE_OPTIM_SGD; c.lr = 1.0f; c.clip = 0.01f;
    vae_model_init(&a, tiny_arch, &c, 0);
    fill_uniform(x, 80, 0, 1, 61);
    vae_model_train_step(&a, x, 4, &st);
    /* with SGD and lr 1 the update is the (clipped) gradient itself: compare with a model
       that took no step */
    {
        vae_model r;
        c.clip = 0; c.lr = 0;
        vae_model_init(&r, tiny_arch, &c, 0);
        for (i = 0; i < r.nparams; i++) {
            double da = (double)r.params[i] - a.params[i];
            norm += da * da;
        }
        vae_model_free(&r);
    }
    CHECK(fabs(sqrt(norm) - 0.01) < 1e-5, "clipped update has norm %g, want 0.01", sqrt(norm));
    CHECK(a.last_grad_norm > 0.01f, "the raw gradient norm (%g) was above the clip", a.last_grad_norm);
    vae_model_free(&a);
}

/* ---------------------------------------------------------------- determinism, training */

static void test_threads_bit_identical(void)
{
    vae_config c = vae_config_default();
    vae_model a, b;
    static float x[64 * 784];
    char arch[VAE_ARCH_MAX];
    int s;
    vae_arch_preset(arch, sizeof arch, "mlp", 1, 28, 28, 0, 0);
    c.batch = 64;
    fill_uniform(x, 64 * 784, 0, 1, 71);
    c.threads = 1; vae_model_init(&a, arch, &c, 0);
    c.threads = 2; vae_model_init(&b, arch, &c, 0);
    for (s = 0; s < 3; s++) { vae_model_train_step(&a, x, 64, NULL); vae_model_train_step(&b, x, 64, NULL); }
    CHECK(memcmp(a.params, b.params, sizeof(float) * a.nparams) == 0, "1 and 2 threads give different weights");
    CHECK(memcmp(a.opt_v, b.opt_v, sizeof(float) * a.nparams) == 0, "1 and 2 threads give different moments");
    vae_model_free(&a); vae_model_free(&b);
    /* the conv path too (seed 002's preset: conv, convt, batchnorm), with a batch that splits
       the GEMMs and the work unevenly */
    vae_config_preset(&c, "conv");
    vae_arch_preset(arch, sizeof arch, "conv", 1, 32, 32, 0, 0);
    c.batch = 7;
    c.threads = 1; CHECK(vae_model_init(&a, arch, &c, 0) == VAE_OK, "init %s", a.error);
    c.threads = 2; CHECK(vae_model_init(&b, arch, &c, 0) == VAE_OK, "init %s", b.error);
    for (s = 0; s < 2; s++) { vae_model_train_step(&a, x, 7, NULL); vae_model_train_step(&b, x, 7, NULL); }
    CHECK(memcmp(a.params, b.params, sizeof(float) * a.nparams) == 0, "conv: 1 and 2 threads give different weights");
    CHECK(memcmp(a.state, b.state, sizeof(float) * a.nstate) == 0, "conv: 1 and 2 threads give different batchnorm statistics");
    vae_model_free(&a); vae_model_free(&b);
}

static void test_train_shapes(void)
{
    vae_config c = vae_config_default();
    vae_model m;
    vae_data tr, te;
    vae_stats s0, s1;
    char arch[VAE_ARCH_MAX];
    int e;
    vae_arch_preset(arch, sizeof arch, "mlp", 1, 28, 28, 200, 8);
    c.batch = 64;
    CHECK(vae_data_shapes(&tr, 4096, 28, 1, VAE_SPLIT_TRAIN) == VAE_OK, "shapes: %s", tr.error);
    CHECK(vae_data_shapes(&te, 512, 28, 1, VAE_SPLIT_TEST) == VAE_OK, "shapes: %s", te.error);
    CHECK(vae_model_init(&m, arch, &c, 0) == VAE_OK, "init: %s", m.error);
    vae_model_evaluate_data(&m, &te, 1, &s0);
    for (e = 0; e < 3; e++) CHECK(vae_model_train_epoch(&m, &tr, NULL, NULL, NULL) == VAE_OK, "epoch: %s", m.error);
    vae_model_evaluate_data(&m, &te, 1, &s1);
    printf("     shapes: test loss %.2f -> %.2f nats/image after 3 epochs\n", s0.loss, s1.loss);
    CHECK(s1.loss < 0.5 * s0.loss, "test loss %g did not halve from %g", s1.loss, s0.loss);
    CHECK(m.epoch == 3 && m.step == 3 * (4096 / 64), "epoch %d step %lld", m.epoch, (long long)m.step);
    vae_model_free(&m); vae_data_free(&tr); vae_data_free(&te);
}

static void test_arch_errors(void)
{
    const char *bad[] = {
        "", "flatten", "input(1,28,28) flatten linear(10) sigmoid",
        "input(1,4,4) flatten linear(8) sample linear(16) reshape(1,4,4)",            /* BCE needs sigmoid */
        "input(1,4,4) linear(8) sample linear(16) reshape(1,4,4) sigmoid",            /* not flat */
        "input(1,4,4) flatten linear(7) sample linear(16) reshape(1,4,4) sigmoid",    /* odd */
        "input(1,4,4) flatten linear(8) sample linear(15) sigmoid",                   /* shape */
        "input(1,4,4) flatten linear(8) sample sample linear(16) reshape(1,4,4) sigmoid",
        "input(1,4,4) flatten linear(1e12) sample linear(16) reshape(1,4,4) sigmoid",
        "input(1,4,4) flatten linear(-3) sample linear(16) reshape(1,4,4) sigmoid",
        "input(1,4,4) flatten linear(2.5) sample linear(16) reshape(1,4,4) sigmoid",
        "input(1,4,4) flatten linear(8,bias=2) sample linear(16) reshape(1,4,4) sigmoid",
        "input(1,4,4) flatten linear(8,foo=1) sample linear(16) reshape(1,4,4) sigmoid",
        "input(1,4,4) flatten linear(8 sample linear(16) reshape(1,4,4) sigmoid",
        "input(1,4,4) flatten conv9(8) sample linear(16) reshape(1,4,4) sigmoid",
        "input(65537,65536,65536) flatten linear(8) sample linear(16) sigmoid",
        "input(1,4,4) skip flatten linear(8) sample linear(16) reshape(1,4,4) sigmoid",                 /* skip, no add */
        "input(1,4,4) flatten linear(8) add sample linear(16) reshape(1,4,4) sigmoid",                  /* add, no skip */
        "input(1,4,4) skip conv(2,3,1,1) add flatten linear(8) sample linear(16) reshape(1,4,4) sigmoid", /* channels */
        "input(1,4,4) skip maxpool add(proj=1) flatten linear(8) sample linear(16) reshape(1,4,4) sigmoid", /* size */
        "input(3,4,4) groupnorm(2) flatten linear(8) sample linear(48) reshape(3,4,4) sigmoid",        /* groups */
        "input(1,4,4) maxpool(5) flatten linear(8) sample linear(16) reshape(1,4,4) sigmoid",          /* window */
        "input(1,4,4) upsample(0) flatten linear(8) sample linear(16) reshape(1,4,4) sigmoid",
        "input(1,4,4) flatten linear(8) sample linear(32) reshape(2,4,4) sigmoid",                     /* 2 out, 1 in */
    };
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        vae_model m;
        vae_result r = vae_model_init(&m, bad[i], NULL, 0);
        CHECK(r != VAE_OK && m.error[0], "accepted bad arch %zu: %s", i, bad[i]);
        CHECK(vae_model_memory_size(bad[i], NULL, 0) == 0 || r == VAE_ERROR_ARCH, "memory size of bad arch %zu", i);
    }
    {
        vae_model m;
        vae_result r = vae_model_init(&m, "input(1,4,4) flatten linear(8) sample linear(15) sigmoid", NULL, 0);
        CHECK(r == VAE_ERROR_ARCH && strstr(m.error, "decoder gives"), "message names the shape mismatch: %s", m.error);
    }
}

static void test_preallocated(void)
{
    vae_config c = vae_config_default();
    char arch[VAE_ARCH_MAX];
    size_t need;
    void *mem;
    vae_model m;
    vae_arch_preset(arch, sizeof arch, "mlp", 1, 28, 28, 0, 0);
    c.batch = 16;
    need = vae_model_memory_size(arch, &c, VAE_INFERENCE);
    CHECK(need > 652824 * 4 && need < 652824 * 4 + vae__gemm_scratch_floats(1) * 4 + 1000000, "inference memory %zu", need);
    CHECK(vae_model_memory_size(arch, &c, 0) > 4 * 652824 * 4, "training memory holds params, grads, m, v");
    mem = malloc(need);
    CHECK(vae_model_init_preallocated(&m, arch, &c, VAE_INFERENCE, mem, need - 1) == VAE_ERROR_INVALID_ARGUMENT, "too small a buffer is refused");
    CHECK(vae_model_init_preallocated(&m, arch, &c, VAE_INFERENCE, mem, need) == VAE_OK, "init: %s", m.error);
    CHECK(m.nparams == 652824, "seed-003 MLP has 652,824 parameters, got %zu", m.nparams);
    CHECK(m.grads == NULL && vae_model_train_step(&m, NULL, 1, NULL) != VAE_OK, "inference model refuses to train");
    free(mem);
}

/* ---------------------------------------------------------------- portability pins */

/* Golden CRCs computed once on x86-64: the same bytes must come out under aarch64 and WASM
   (make test-neon, make test-wasm), which is what makes data and noise portable. */
static void test_portable_streams(void)
{
    unsigned char img[28 * 28];
    uint32_t crc = 0;
    vae_rng r;
    int i;
    for (i = 0; i < 1000; i++) {
        vae__shapes_image(img, 28, 42, (uint64_t)i);
        crc = vae__crc32(crc, img, sizeof img);
    }
    CHECK(crc == 0x8ef88164u, "shapes images CRC %08lx", (unsigned long)crc);
    crc = 0;
    vae_rng_seed(&r, 1);
    for (i = 0; i < 100000; i++) {
        float x = vae_rng_normal(&r);
        unsigned char b[4];
        uint32_t u;
        memcpy(&u, &x, 4);
        b[0] = (unsigned char)u; b[1] = (unsigned char)(u >> 8); b[2] = (unsigned char)(u >> 16); b[3] = (unsigned char)(u >> 24);
        crc = vae__crc32(crc, b, 4);
    }
    CHECK(crc == 0x8c84d608u, "normal stream CRC %08lx", (unsigned long)crc);
}

/* ---------------------------------------------------------------- checkpoints */

static const char *tmp_path(const char *name)
{
    static char buf[8][512];
    static int k;
    const char *dir = getenv("TMPDIR");
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/vae_test_%s", dir && *dir ? dir : "/tmp", name);
    return buf[k];
}

static void train_a_little(vae_model *m, int steps, uint64_t seed)
{
    static float x[8 * 20];
    int s;
    fill_uniform(x, 8 * 20, 0, 1, seed);
    for (s = 0; s < steps; s++) vae_model_train_step(m, x, 8, NULL);
}

static void test_ckpt_round_trip(void)
{
    vae_config c = vae_config_default();
    vae_model a, b, inf;
    const char *path = tmp_path("rt.safetensors");
    vae__st st;
    unsigned char *buf;
    size_t size;
    char err[VAE_ERROR_SIZE];
    c.batch = 8; c.seed = 77; c.beta = 0.25f; c.lr = 3e-3f; c.optim = VAE_OPTIM_ADAMW; c.weight_decay = 0.01f;
    vae_model_init(&a, tiny_arch, &c, 0);
    train_a_little(&a, 5, 1);
    CHECK(vae_model_save(&a, path, VAE_SAVE_TRAINING_STATE) == VAE_OK, "save: %s", a.error);
    CHECK(vae_model_load(&b, path, 0, 0, VAE_LOAD_TRAINING_STATE) == VAE_OK, "load: %s", b.error);
    if (!b.layers) return;
    CHECK(strcmp(a.arch, b.arch) == 0, "architecture text survives");
    CHECK(memcmp(&a.cfg, &b.cfg, sizeof a.cfg) == 0, "hyperparameters survive");
    CHECK(memcmp(a.params, b.params, sizeof(float) * a.nparams) == 0, "weights are bit-identical");
    CHECK(memcmp(a.opt_m, b.opt_m, sizeof(float) * a.nparams) == 0 && memcmp(a.opt_v, b.opt_v, sizeof(float) * a.nparams) == 0, "moments");
    CHECK(a.step == b.step && a.epoch == b.epoch && memcmp(&a.rng, &b.rng, sizeof a.rng) == 0, "step, epoch, rng");
    CHECK(vae_model_load(&inf, path, 3, 1, VAE_INFERENCE) == VAE_OK && inf.grads == NULL && inf.cfg.batch == 3, "inference load with batch override: %s", inf.error);
    vae_model_free(&inf);
    /* tensor names: the seed module's state_dict keys, readable by any safetensors reader */
    CHECK(vae__file_read(path, &buf, &size, err) == 0 && vae__st_parse(&st, buf, size, err) == 0, "parse: %s", err);
    CHECK(vae__st_find(&st, "enc.weight") && vae__st_find(&st, "mu.weight") && vae__st_find(&st, "lv.bias") &&
          vae__st_find(&st, "out.bias") && vae__st_find(&st, "optim.v.mu.weight"), "named tensors present");
    CHECK(vae__st_find(&st, "mu.weight")->shape[0] == 3 && vae__st_find(&st, "mu.weight")->shape[1] == 7, "mu.weight is [3,7]");
    CHECK(vae__st_meta(&st, "arch") && strcmp(vae__st_meta(&st, "arch"), tiny_arch) == 0, "arch metadata");
    vae__st_free(&st); free(buf);
    vae_model_free(&a); vae_model_free(&b);
    remove(path);
}

/* Two epochs straight against one epoch, save, load, one more: bit-identical. */
static void test_ckpt_resume_bit_exact(void)
{
    vae_config c = vae_config_default();
    vae_model a, b, r;
    vae_data d;
    char arch[VAE_ARCH_MAX];
    const char *path = tmp_path("resume.safetensors");
    vae_arch_preset(arch, sizeof arch, "mlp", 1, 28, 28, 32, 4);
    c.batch = 32;
    vae_data_shapes(&d, 256, 28, 9, VAE_SPLIT_TRAIN);
    vae_model_init(&a, arch, &c, 0);
    vae_model_init(&b, arch, &c, 0);
    vae_model_train_epoch(&a, &d, NULL, NULL, NULL);
    vae_model_train_epoch(&a, &d, NULL, NULL, NULL);
    vae_model_train_epoch(&b, &d, NULL, NULL, NULL);
    CHECK(vae_model_save(&b, path, VAE_SAVE_TRAINING_STATE) == VAE_OK, "save: %s", b.error);
    CHECK(vae_model_load(&r, path, 0, 0, VAE_LOAD_TRAINING_STATE) == VAE_OK, "load: %s", r.error);
    if (r.layers) {
        vae_model_train_epoch(&r, &d, NULL, NULL, NULL);
        CHECK(memcmp(a.params, r.params, sizeof(float) * a.nparams) == 0, "resumed weights differ from straight training");
        CHECK(memcmp(a.opt_v, r.opt_v, sizeof(float) * a.nparams) == 0 && a.step == r.step && a.epoch == r.epoch, "state");
    }
    vae_model_free(&a); vae_model_free(&b); vae_model_free(&r); vae_data_free(&d);
    remove(path);
}

/* Rewrites a checkpoint with one change and a valid checksum, so the model-level checks
   (not the checksum) are what must catch it. */
typedef struct mutation {
    const char *drop, *rename_from, *rename_to, *reshape, *meta_key, *meta_val, *extra, *nan_in;
    uint64_t shape[2];
} mutation;

static int write_mutant(const char *src, const char *dst, const mutation *mu)
{
    unsigned char *buf;
    size_t size;
    char err[VAE_ERROR_SIZE];
    vae__st st;
    vae__st_out out[64];
    const char *key[32], *val[32];
    char sum[32];
    float *copies[64] = { 0 };
    static const float extra_data[3] = { 1, 2, 3 };
    int n = 0, nm = 0, i, r;
    if (vae__file_read(src, &buf, &size, err) || vae__st_parse(&st, buf, size, err)) return -1;
    for (i = 0; i < st.n && n < 60; i++) {
        const vae__st_tensor *t = &st.t[i];
        vae__st_out *o = &out[n];
        size_t bytes = (size_t)(t->end - t->begin);
        if (mu->drop && strcmp(t->name, mu->drop) == 0) continue;
        memset(o, 0, sizeof *o);
        o->name = mu->rename_from && strcmp(t->name, mu->rename_from) == 0 ? mu->rename_to : t->name;
        o->dtype = t->dtype; o->ndim = t->ndim;
        memcpy(o->shape, t->shape, sizeof o->shape);
        copies[n] = (float *)malloc(bytes + 4);
        memcpy(copies[n], t->data, bytes);
        o->data = copies[n];
        if (mu->reshape && strcmp(t->name, mu->reshape) == 0) { o->ndim = 2; o->shape[0] = mu->shape[0]; o->shape[1] = mu->shape[1]; }
        if (mu->nan_in && strcmp(t->name, mu->nan_in) == 0) copies[n][0] = NAN;
        n++;
    }
    if (mu->extra) { memset(&out[n], 0, sizeof out[n]); out[n].name = mu->extra; out[n].dtype = VAE__DT_F32; out[n].ndim = 1; out[n].shape[0] = 3; out[n].data = extra_data; n++; }
    for (i = 0; i < st.nmeta; i++) {
        if (strcmp(st.meta_key[i], "checksum") == 0) continue;
        key[nm] = st.meta_key[i];
        val[nm] = mu->meta_key && strcmp(st.meta_key[i], mu->meta_key) == 0 ? mu->meta_val : st.meta_val[i];
        nm++;
    }
    if (mu->meta_key && !vae__st_meta(&st, mu->meta_key)) { key[nm] = mu->meta_key; val[nm] = mu->meta_val; nm++; }
    snprintf(sum, sizeof sum, "crc32:%08lx", (unsigned long)vae__ckpt_crc(key, val, nm, out, n, NULL, 0));
    key[nm] = "checksum"; val[nm] = sum; nm++;
    r = vae__st_save(dst, out, n, key, val, nm, err);
    for (i = 0; i < n; i++) free(copies[i]);
    vae__st_free(&st); free(buf);
    return r;
}

static void expect_load_error(const char *good, const mutation *mu, unsigned flags, const char *needle, const char *what)
{
    const char *bad = tmp_path("mutant.safetensors");
    vae_model m;
    vae_result r;
    CHECK(write_mutant(good, bad, mu) == 0, "%s: could not write the mutant", what);
    r = vae_model_load(&m, bad, 0, 0, flags);
    CHECK(r != VAE_OK, "%s: loaded", what);
    CHECK(strstr(m.error, needle) != NULL, "%s: message '%s' does not mention '%s'", what, m.error, needle);
    CHECK(m.layers == NULL && m.memory == NULL, "%s: a failed load leaves an empty model", what);
    remove(bad);
}

static void test_ckpt_model_checks(void)
{
    vae_config c = vae_config_default();
    vae_model a, ok;
    char good[512];
    mutation mu;
    snprintf(good, sizeof good, "%s", tmp_path("good.safetensors"));
    c.batch = 8;
    vae_model_init(&a, tiny_arch, &c, 0);
    train_a_little(&a, 2, 3);
    vae_model_save(&a, good, VAE_SAVE_TRAINING_STATE);
    memset(&mu, 0, sizeof mu);
    CHECK(write_mutant(good, tmp_path("same.safetensors"), &mu) == 0 &&
          vae_model_load(&ok, tmp_path("same.safetensors"), 0, 0, VAE_LOAD_TRAINING_STATE) == VAE_OK, "an unchanged rewrite loads: %s", ok.error);
    vae_model_free(&ok);
    /* 20: absurd or inconsistent architecture metadata */
    memset(&mu, 0, sizeof mu); mu.meta_key = "arch"; mu.meta_val = "input(1,4,5) flatten linear(1e12) mulv(3) sample linear(20) reshape(1,4,5) sigmoid";
    expect_load_error(good, &mu, 0, "linear", "latent 1e12");
    mu.meta_val = "input(1,4,5) flatten linear(-3) mulv(3) sample linear(20) reshape(1,4,5) sigmoid";
    expect_load_error(good, &mu, 0, "linear", "width -3");
    mu.meta_val = "input(1,4,5) flatten linear(60000) mulv(3000) sample linear(20) reshape(1,4,5) sigmoid";
    expect_load_error(good, &mu, 0, "parameters but the file holds", "arch larger than the file");
    mu.meta_val = "input(1,4,5) flatten linear(8):enc tanh mulv(3):mu,lv sample linear(6):dec silu leakyrelu(0.2) linear(20):out reshape(1,4,5) sigmoid";
    expect_load_error(good, &mu, 0, "enc.weight", "arch that does not match the tensors");
    mu.meta_key = "batch"; mu.meta_val = "1e12";
    expect_load_error(good, &mu, 0, "batch", "absurd batch");
    mu.meta_key = "lr"; mu.meta_val = "fast";
    expect_load_error(good, &mu, 0, "lr", "non-numeric lr");
    mu.meta_key = "format_version"; mu.meta_val = "99";
    expect_load_error(good, &mu, 0, "version", "future format version");
    /* 21: missing, extra, mis-shaped tensors are named */
    memset(&mu, 0, sizeof mu); mu.drop = "mu.bias";
    expect_load_error(good, &mu, 0, "mu.bias", "missing tensor");
    memset(&mu, 0, sizeof mu); mu.extra = "surprise.weight";
    expect_load_error(good, &mu, 0, "surprise.weight", "extra tensor");
    memset(&mu, 0, sizeof mu); mu.reshape = "enc.weight"; mu.shape[0] = 20; mu.shape[1] = 7;
    expect_load_error(good, &mu, 0, "enc.weight", "transposed tensor");
    memset(&mu, 0, sizeof mu); mu.rename_from = "dec.weight"; mu.rename_to = "decoder.weight";
    expect_load_error(good, &mu, 0, "dec.weight", "renamed tensor");
    /* 22: corrupt training state */
    memset(&mu, 0, sizeof mu); mu.reshape = "optim.m.enc.weight"; mu.shape[0] = 20; mu.shape[1] = 7;
    expect_load_error(good, &mu, VAE_LOAD_TRAINING_STATE, "optim.m.enc.weight", "moment shape");
    memset(&mu, 0, sizeof mu); mu.meta_key = "step"; mu.meta_val = "-3";
    expect_load_error(good, &mu, VAE_LOAD_TRAINING_STATE, "step", "negative step");
    mu.meta_key = "rng"; mu.meta_val = "0123456789abcdef";
    expect_load_error(good, &mu, VAE_LOAD_TRAINING_STATE, "rng", "short rng state");
    mu.meta_key = "rng"; mu.meta_val = "00000000000000000000000000000000";
    expect_load_error(good, &mu, VAE_LOAD_TRAINING_STATE, "rng", "all-zero rng state");
    memset(&mu, 0, sizeof mu); mu.drop = "optim.v.out.weight";
    expect_load_error(good, &mu, VAE_LOAD_TRAINING_STATE, "optim.v.out.weight", "missing moment");
    {   /* a weights-only save cannot resume */
        const char *w = tmp_path("weights_only.safetensors");
        vae_model m;
        vae_model_save(&a, w, 0);
        CHECK(vae_model_load(&m, w, 0, 0, VAE_LOAD_TRAINING_STATE) != VAE_OK && strstr(m.error, "training state"), "resume from weights-only: %s", m.error);
        CHECK(vae_model_load(&m, w, 0, 0, 0) == VAE_OK, "weights-only loads for inference: %s", m.error);
        vae_model_free(&m);
        remove(w);
    }
    /* 23: NaN/Inf policy: refused on load, and never saved */
    memset(&mu, 0, sizeof mu); mu.nan_in = "dec.bias";
    expect_load_error(good, &mu, 0, "dec.bias", "NaN weight");
    {
        FILE *f;
        long before, after;
        f = fopen(good, "rb"); fseek(f, 0, SEEK_END); before = ftell(f); fclose(f);
        a.layers[2].weight[0] = INFINITY;   /* enc.weight */
        CHECK(vae_model_save(&a, good, 0) == VAE_ERROR_NUMERIC && strstr(a.error, "enc.weight"), "saving Inf weights refused: %s", a.error);
        f = fopen(good, "rb"); fseek(f, 0, SEEK_END); after = ftell(f); fclose(f);
        CHECK(before == after, "the previous checkpoint is untouched");
    }
    /* a corrupted byte anywhere is caught by the checksum */
    {
        unsigned char *buf;
        size_t size, at;
        char err[VAE_ERROR_SIZE];
        int caught = 0, tries = 0;
        FILE *f;
        vae_model m;
        vae_model_init(&m, tiny_arch, &c, 0);
        vae_model_save(&m, good, 0);
        vae_model_free(&m);
        vae__file_read(good, &buf, &size, err);
        for (at = 0; at < size; at += 7) {
            buf[at] ^= 0x10;
            f = fopen(tmp_path("flip.safetensors"), "wb"); fwrite(buf, 1, size, f); fclose(f);
            buf[at] ^= 0x10;
            tries++;
            caught += vae_model_load(&m, tmp_path("flip.safetensors"), 0, 0, 0) != VAE_OK;
            vae_model_free(&m);
        }
        CHECK(caught >= tries - 2, "%d of %d single-bit corruptions caught", caught, tries);
        free(buf);
        remove(tmp_path("flip.safetensors"));
    }
    vae_model_free(&a);
    remove(good);
}

/* A save that fails part-way (simulated full disk at byte k) leaves the old file intact. */
static void test_ckpt_atomic(void)
{
    vae_config c = vae_config_default();
    vae_model a, m;
    const char *path = tmp_path("atomic.safetensors");
    unsigned char *before, *after;
    size_t nb, na, k;
    char err[VAE_ERROR_SIZE];
    int intact = 1;
    c.batch = 8;
    vae_model_init(&a, tiny_arch, &c, 0);
    vae_model_save(&a, path, 0);
    vae__file_read(path, &before, &nb, err);
    train_a_little(&a, 1, 5);
    for (k = 0; k < 15; k++) {   /* every byte of the payload (tests/test_safetensors.c does whole files) */
        CHECK(vae__file_write_atomic_ex(path, "different bytes", 15, (long long)k, err) != 0, "simulated failure reported");
        vae__file_read(path, &after, &na, err);
        intact &= na == nb && memcmp(before, after, nb) == 0;
        free(after);
    }
    CHECK(intact, "the previous checkpoint survived every interrupted write");
    CHECK(vae_model_load(&m, path, 0, 0, 0) == VAE_OK, "and still loads: %s", m.error);
    vae_model_free(&m);
    CHECK(vae_model_save(&a, "/nonexistent-dir/x.safetensors", 0) == VAE_ERROR_IO && a.error[0], "unwritable path: %s", a.error);
    free(before);
    vae_model_free(&a);
    remove(path);
}

/* ---------------------------------------------------------------- batchnorm, presets */

/* The largest gap between batchnorm's gradients (dx, then dgamma and dbeta, already computed)
   and central differences of sum(dy * y) over x and the affine parameters, with the forward in
   training (batch statistics) or eval mode. */
static double bn_fd_worst(vae_layer *l, float *x, const float *dy, const float *dx, int n, int train)
{
    int cnt_x = n * l->c * l->h * l->w, v, i, j, sgn;
    float *y2 = (float *)malloc(sizeof(float) * cnt_x);
    double worst = 0;
    for (v = 0; v < 2; v++) {
        float *var = v ? l->weight : x;
        const float *grad = v ? l->dweight : dx;
        int cnt = v ? 2 * l->c : cnt_x;
        for (i = 0; i < cnt; i++) {
            float keep = var[i], h = 1e-2f;
            double f[2];
            for (sgn = 0; sgn < 2; sgn++) {
                double tot = 0;
                var[i] = keep + (sgn ? -h : h);
                vae__bn_forward(l, y2, x, n, train, 1);
                for (j = 0; j < cnt_x; j++) tot += (double)dy[j] * y2[j];
                f[sgn] = tot;
            }
            var[i] = keep;
            worst = fmax(worst, fabs((f[0] - f[1]) / (2 * h) - grad[i]));
        }
    }
    free(y2);
    return worst;
}

static void test_batchnorm(void)
{
    enum { N = 3, C = 2, HW = 5 };
    vae_config c = vae_config_default();
    vae_model m;
    vae_layer *l;
    float x[N * C * HW], dy[N * C * HW], dx[N * C * HW], y2[N * C * HW];
    double worst = 0, stat = 0;
    int ch, i, j;
    c.batch = N;
    CHECK(vae_model_init(&m, "input(2,5,1) batchnorm:bn flatten linear(2) sample linear(10) reshape(2,5,1) sigmoid", &c, 0) == VAE_OK, "init %s", m.error);
    if (!m.layers) return;
    l = &m.layers[1];
    fill_uniform(x, sizeof x / 4, -2, 3, 81); fill_uniform(dy, sizeof dy / 4, -1, 1, 82);
    fill_uniform(l->weight, 2 * C, 0.5f, 1.5f, 83);
    vae__bn_forward(l, l->y, x, N, 1, 1);
    /* running statistics after one step from (0, 1): momentum 0.1, unbiased variance */
    for (ch = 0; ch < C; ch++) {
        double s = 0, q = 0;
        for (i = 0; i < N; i++) for (j = 0; j < HW; j++) s += x[(i * C + ch) * HW + j];
        s /= N * HW;
        for (i = 0; i < N; i++) for (j = 0; j < HW; j++) q += (x[(i * C + ch) * HW + j] - s) * (x[(i * C + ch) * HW + j] - s);
        stat = fmax(stat, fabs(l->state[ch] - 0.1 * s));
        stat = fmax(stat, fabs(l->state[C + ch] - (0.9 + 0.1 * q / (N * HW - 1))));
        for (i = 0; i < N; i++) for (j = 0; j < HW; j++) {
            double want = (x[(i * C + ch) * HW + j] - s) / sqrt(q / (N * HW) + 1e-5) * l->weight[ch] + l->bias[ch];
            stat = fmax(stat, fabs(want - l->y[(i * C + ch) * HW + j]));
        }
    }
    CHECK(stat < 1e-5, "batch statistics and running statistics off by %g", stat);
    /* gradients in training mode against central differences of sum(dy * y) */
    vae__bn_backward(l, dx, dy, x, N, 1);
    worst = bn_fd_worst(l, x, dy, dx, N, 1);
    CHECK(worst < 2e-3, "batchnorm training-mode gradient off by %g", worst);
    /* eval mode normalises with the running statistics */
    vae__bn_forward(l, y2, x, N, 0, 1);
    worst = 0;
    for (ch = 0; ch < C; ch++)
        for (i = 0; i < N; i++) for (j = 0; j < HW; j++) {
            int q = (i * C + ch) * HW + j;
            double want = (x[q] - l->state[ch]) / sqrt(l->state[C + ch] + 1e-5) * l->weight[ch] + l->bias[ch];
            worst = fmax(worst, fabs(want - y2[q]));
        }
    CHECK(worst < 1e-5, "eval mode off by %g", worst);
    vae_model_free(&m);
}

/* Frozen statistics (cfg.frozen_stats, PyTorch's eval mode in training): the layer's
   eval-mode backward against central differences of sum(dy * y) with y from the running
   statistics; the whole-model gradient; running statistics unchanged by a training step;
   the flag through a checkpoint, and an old checkpoint without it reads as 0. */
static void test_batchnorm_frozen(void)
{
    enum { N = 3, C = 2, HW = 5 };
    const char *arch = "input(2,5,1) batchnorm:bn flatten linear(2) sample linear(10) reshape(2,5,1) sigmoid";
    vae_config c = vae_config_default();
    vae_model m, b;
    vae_layer *l;
    float x[N * C * HW], dy[N * C * HW], dx[N * C * HW], keep_state[4 * C], before[2 * C];
    double worst = 0;
    int i, j, k;
    c.batch = N;
    CHECK(vae_model_init(&m, arch, &c, 0) == VAE_OK, "init %s", m.error);
    if (!m.layers) return;
    l = &m.layers[1];
    fill_uniform(x, sizeof x / 4, -2, 3, 91); fill_uniform(dy, sizeof dy / 4, -1, 1, 92);
    fill_uniform(l->weight, 2 * C, 0.5f, 1.5f, 93);
    fill_uniform(l->state, C, -1, 1, 94); fill_uniform(l->state + C, C, 0.2f, 3, 95);
    vae__bn_backward_frozen(l, dx, dy, x, N, 1);
    worst = bn_fd_worst(l, x, dy, dx, N, 0);
    CHECK(worst < 2e-3, "batchnorm frozen-statistics gradient off by %g", worst);
    /* dx closed form: dy * gamma / sqrt(running var + eps) */
    worst = 0;
    for (k = 0; k < C; k++)
        for (i = 0; i < N; i++) for (j = 0; j < HW; j++) {
            int q = (i * C + k) * HW + j;
            worst = fmax(worst, fabs(dx[q] - dy[q] * l->weight[k] / sqrt(l->state[C + k] + 1e-5)));
        }
    CHECK(worst < 1e-6, "frozen dx off the closed form by %g", worst);
    vae_model_free(&m);

    /* a training step leaves the running statistics alone (and does move the weights) */
    c.frozen_stats = 1; c.lr = 1e-2f;
    CHECK(vae_model_init(&m, arch, &c, 0) == VAE_OK, "init frozen %s", m.error);
    if (!m.layers) return;
    l = &m.layers[1];
    fill_uniform(l->state, C, -1, 1, 96); fill_uniform(l->state + C, C, 0.2f, 3, 97);
    fill_uniform(x, sizeof x / 4, 0, 1, 98);
    memcpy(keep_state, l->state, sizeof keep_state);
    memcpy(before, l->weight, sizeof before);
    CHECK(vae_model_train_step(&m, x, N, NULL) == VAE_OK, "frozen step: %s", m.error);
    CHECK(memcmp(keep_state, l->state, 2 * C * sizeof(float)) == 0, "running statistics moved in a frozen step");
    CHECK(memcmp(before, l->weight, sizeof before) != 0, "the frozen step did not move gamma/beta");
    /* without the flag the same step does move them */
    m.cfg.frozen_stats = 0;
    CHECK(vae_model_train_step(&m, x, N, NULL) == VAE_OK && memcmp(keep_state, l->state, 2 * C * sizeof(float)) != 0,
          "a normal step moves the running statistics");
    m.cfg.frozen_stats = 1;
    {
        const char *path = tmp_path("frozen.safetensors");
        vae__st st;
        unsigned char *buf;
        size_t size;
        char err[VAE_ERROR_SIZE];
        vae_config lc;
        CHECK(vae_model_save(&m, path, VAE_SAVE_TRAINING_STATE) == VAE_OK, "save: %s", m.error);
        CHECK(vae_model_load(&b, path, 0, 0, VAE_LOAD_TRAINING_STATE) == VAE_OK && b.cfg.frozen_stats == 1,
              "frozen_stats survives a checkpoint: %s", b.error);
        if (b.layers) vae_model_free(&b);
        CHECK(vae__file_read(path, &buf, &size, err) == 0 && vae__st_parse(&st, buf, size, err) == 0, "parse: %s", err);
        for (i = 0; i < st.nmeta; i++)
            if (!strcmp(st.meta_key[i], "frozen_stats")) {
                CHECK(!strcmp(st.meta_val[i], "1"), "frozen_stats metadata '%s'", st.meta_val[i]);
                st.meta_key[i] = "frozen_stats~";   /* an older checkpoint: the key is absent */
                CHECK(vae__meta_config(&st, &lc, err) == 0 && lc.frozen_stats == 0, "missing frozen_stats reads as 0: %s", err);
                st.meta_key[i] = "frozen_stats"; st.meta_val[i] = "2";
                CHECK(vae__meta_config(&st, &lc, err) != 0, "frozen_stats 2 is refused");
            }
        vae__st_free(&st); free(buf);
        remove(path);
    }
    vae_model_free(&m);
    c.frozen_stats = 2;
    CHECK(vae_model_init(&m, arch, &c, 0) == VAE_ERROR_INVALID_ARGUMENT, "frozen_stats 2 is refused by init");
    vae_model_free(&m);

    /* whole-model finite differences with frozen statistics: conv + batchnorm in both halves */
    c = vae_config_default();
    c.batch = 4; c.loss = VAE_LOSS_MSE; c.beta = 0.5f; c.frozen_stats = 1;
    check_model_gradients(c, "input(1,4,5) conv(3,3,1,1):c1 batchnorm:b1 silu flatten mulv(3):mu,lv sample "
                             "linear(20):d reshape(1,4,5) batchnorm:b2 tanh", "frozen batchnorm");
    c.loss = VAE_LOSS_BCE; c.reduce = VAE_REDUCE_SUM;
    check_model_gradients(c, "input(1,4,5) conv(2,3,1,1):c1 batchnorm:b1 tanh flatten mulv(3):mu,lv sample "
                             "linear(20):d reshape(1,4,5) batchnorm:b2 sigmoid", "frozen batchnorm, bce");
}

/* ---------------------------------------------------------------- groupnorm, pooling, residuals */

/* GroupNorm, maxpool and upsample forward against direct double loops. */
static void test_norm_pool_forward(void)
{
    enum { N = 2, C = 6, H = 5, W = 7, G = 3 };
    vae_config c = vae_config_default();
    vae_model m;
    vae_layer *gn, *mp, *up;
    float x[N * C * H * W];
    double worst = 0, pool = 0, upw = 0;
    int i, g, j, ch, a, b;
    c.batch = N; c.loss = VAE_LOSS_MSE;
    CHECK(vae_model_init(&m, "input(6,5,7) groupnorm(3):gn maxpool(3,2) upsample(3) flatten linear(2) sample linear(210) reshape(6,5,7)",
                         &c, 0) == VAE_OK, "init %s", m.error);
    if (!m.layers) return;
    gn = &m.layers[1]; mp = &m.layers[2]; up = &m.layers[3];
    CHECK(mp->h == 2 && mp->w == 3 && up->h == 6 && up->w == 9, "maxpool(3,2) of 5x7 is %dx%d, upsample(3) %dx%d", mp->h, mp->w, up->h, up->w);
    fill_uniform(x, sizeof x / 4, -2, 3, 91);
    fill_uniform(gn->weight, 2 * C, 0.5f, 1.5f, 92);
    memcpy(m.layers[0].y, x, sizeof x);
    vae__forward(&m, 1, 4, N, NULL, 0);
    for (i = 0; i < N; i++)
        for (g = 0; g < G; g++) {
            const float *xg = x + (i * C + g * (C / G)) * H * W;
            const float *yg = gn->y + (i * C + g * (C / G)) * H * W;
            int len = C / G * H * W;
            double s = 0, q = 0;
            for (j = 0; j < len; j++) s += xg[j];
            s /= len;
            for (j = 0; j < len; j++) q += (xg[j] - s) * (xg[j] - s);
            q /= len;
            for (j = 0; j < len; j++) {
                ch = g * (C / G) + j / (H * W);
                worst = fmax(worst, fabs((xg[j] - s) / sqrt(q + 1e-5) * gn->weight[ch] + gn->bias[ch] - yg[j]));
            }
        }
    CHECK(worst < 1e-5, "groupnorm off by %g", worst);
    for (i = 0; i < N * C; i++)
        for (a = 0; a < 2; a++)
            for (b = 0; b < 3; b++) {
                double best = -1e30;
                int u, v;
                for (u = 0; u < 3; u++) for (v = 0; v < 3; v++) best = fmax(best, gn->y[(i * H + 2 * a + u) * W + 2 * b + v]);
                pool = fmax(pool, fabs(best - mp->y[(i * 2 + a) * 3 + b]));
                for (u = 0; u < 3; u++) for (v = 0; v < 3; v++)
                    upw = fmax(upw, fabs(up->y[(i * 6 + 3 * a + u) * 9 + 3 * b + v] - mp->y[(i * 2 + a) * 3 + b]));
            }
    CHECK(pool == 0 && upw == 0, "maxpool off by %g, upsample by %g", pool, upw);
    /* maxpool(3,2) backward against central differences of sum(dy * y), on distinct inputs
       spaced wider than the step so that no window changes its maximum */
    {
        float px[N * C * H * W], py[N * C * 6], py2[N * C * 6], dy[N * C * 6], dx[N * C * H * W];
        double fd = 0;
        int q, sgn;
        for (q = 0; q < N * C * H * W; q++) px[q] = 0.1f * (float)((q * 37) % (N * C * H * W));
        fill_uniform(dy, N * C * 6, -1, 1, 93);
        vae__maxpool_forward(mp, py, px, N);
        vae__maxpool_backward(mp, dx, dy, px, N);
        for (q = 0; q < N * C * H * W; q++) {
            double f[2];
            float keep = px[q];
            for (sgn = 0; sgn < 2; sgn++) {
                double tot = 0;
                px[q] = keep + (sgn ? -1e-2f : 1e-2f);
                vae__maxpool_forward(mp, py2, px, N);
                for (j = 0; j < N * C * 6; j++) tot += (double)dy[j] * py2[j];
                f[sgn] = tot;
            }
            px[q] = keep;
            fd = fmax(fd, fabs((f[0] - f[1]) / 2e-2 - dx[q]));
        }
        CHECK(fd < 1e-3, "maxpool(3,2) gradient off by %g", fd);
        (void)py;
    }
    vae_model_free(&m);
}

/* Whole-loss finite differences through the new layers: GroupNorm (affine and not), identity
   and projected residual joins, nested skips, upsampling, a spatial latent with tanh on z, and
   a one-channel output broadcast against two input channels. (Max pooling is checked on its
   own above: a finite step through a whole model can move a window's maximum.) */
static void test_new_layer_gradients(void)
{
    vae_config c = vae_config_default();
    c.batch = 4; c.loss = VAE_LOSS_MSE; c.beta = 0.5f;
    check_model_gradients(c, "input(1,4,5) conv(4,3,1,1):c1 groupnorm(2):g1 silu skip conv(4,3,1,1):c2 groupnorm(4,affine=0) tanh "
                             "add groupnorm(2):g3 flatten linear(16):e mulv(3):mu,lv sample linear(16):d1 reshape(4,2,2) upsample "
                             "skip conv(2,3,1,1):d2 silu add(proj=1):d3 flatten linear(20):d4 reshape(1,4,5)", "residual blocks");
    check_model_gradients(c, "input(1,4,5) conv(4,3,1,1):e1 skip skip conv(4,1):e2 add add(proj=1,bias=0):e3 "
                             "sample(clamp=3) tanh conv(1,3,1,1):d1", "spatial latent, nested skips");
    c.reduce = VAE_REDUCE_MEAN;
    check_model_gradients(c, "input(2,2,5) conv(2,3,1,1):e flatten mulv(3):mu,lv sample linear(10):d reshape(1,2,5) tanh",
                          "one-channel output, broadcast MSE");
}

/* Seeds 004, 000 and 001: the parameter counts of issue 3's table, state_dict names and shapes,
   and one training step each on two random images (the finite-size models are large). */
static void test_presets_large(void)
{
    static const struct { const char *name; size_t params; const char *t0, *tlast; int d0[4]; } P[] = {
        { "vanilla", 11820001, "encoder.0.0.weight", "final_conv.0.bias", { 32, 3, 3, 3 } },
        { "resnet", 33998025, "encoder.initial.weight", "decoder.final2.weight", { 64, 3, 3, 3 } },
        { "conv250", 53564419, "encoder.0.weight", "decoder.7.bias", { 64, 3, 3, 3 } },
    };
    int p;
    for (p = 0; p < 3; p++) {
        vae_config c;
        vae_model m;
        vae_tensor_info t;
        char *arch = (char *)malloc(VAE_ARCH_MAX);
        int ch, h, w, nt, k, found_up = 0;
        float *x;
        vae_stats st;
        CHECK(vae_preset_input(P[p].name, &ch, &h, &w) == VAE_OK && vae_arch_preset(arch, VAE_ARCH_MAX, P[p].name, ch, h, w, 0, 0) == VAE_OK &&
              vae_config_preset(&c, P[p].name) == VAE_OK, "%s: preset", P[p].name);
        c.batch = 2;
        CHECK(vae_model_init(&m, arch, &c, 0) == VAE_OK, "%s: init %s", P[p].name, m.error);
        free(arch);
        if (!m.layers) continue;
        CHECK(m.nparams == P[p].params, "%s: %lu parameters, the seed has %lu", P[p].name, (unsigned long)m.nparams, (unsigned long)P[p].params);
        nt = vae_model_tensor_count(&m);
        vae_model_tensor(&m, 0, &t);
        CHECK(!strcmp(t.name, P[p].t0) && t.ndim == 4 && t.shape[0] == P[p].d0[0] && t.shape[1] == P[p].d0[1], "%s: first tensor %s", P[p].name, t.name);
        vae_model_tensor(&m, nt - 1, &t);
        CHECK(!strcmp(t.name, P[p].tlast), "%s: last tensor %s", P[p].name, t.name);
        for (k = 0; k < nt; k++) {
            vae_model_tensor(&m, k, &t);
            if (!strcmp(t.name, "encoder.residual_blocks.0.channel_up.weight"))
                found_up = t.ndim == 4 && t.shape[0] == 128 && t.shape[1] == 64 && t.shape[2] == 1 && t.shape[3] == 1;
        }
        if (p == 1) CHECK(found_up, "resnet: channel_up weight (128,64,1,1)");
        if (p == 0) CHECK(m.out_c == 1 && m.in_c == 3, "vanilla: 3 channels in, 1 out");
        if (p == 1) CHECK(m.latent == 4 * 4 * 4, "resnet: spatial latent 4x4x4, got %d", m.latent);
        x = (float *)malloc(sizeof(float) * 2 * m.in_size);
        fill_uniform(x, 2 * (size_t)m.in_size, 0, 1, 7);
        CHECK(vae_model_train_step(&m, x, 2, &st) == VAE_OK && isfinite(st.loss) && m.last_grad_norm > 0,
              "%s: a training step: %s (loss %g)", P[p].name, m.error, st.loss);
        printf("     %-8s %lu params, loss %.4g after a step on 2 random images\n", P[p].name, (unsigned long)m.nparams, st.loss);
        free(x);
        vae_model_free(&m);
    }
}

/* Seed 002's ConvolutionalVAE: parameter counts from the seed, state_dict names, one
   training step with its setup, and a checkpoint round trip with the running statistics. */
static void test_preset_conv(void)
{
    char arch[VAE_ARCH_MAX];
    vae_config c;
    vae_model m, r;
    int i;
    const char *path = tmp_path("conv.safetensors");
    CHECK(vae_config_preset(&c, "conv") == VAE_OK && c.loss == VAE_LOSS_MSE && c.optim == VAE_OPTIM_ADAMW && c.batch == 32, "preset config");
    c.batch = 2;
    vae_arch_preset(arch, sizeof arch, "conv", 3, 32, 32, 0, 0);
    CHECK(vae_model_init(&m, arch, &c, VAE_INFERENCE) == VAE_OK && m.nparams == 4032643, "3x32x32 has 4,032,643 parameters, got %zu", m.nparams);
    CHECK(m.nstate == 4 * (96 + 192 + 384 + 192 + 96), "batchnorm state for 5 layers");
    vae_model_free(&m);
    vae_arch_preset(arch, sizeof arch, "conv", 1, 32, 32, 0, 0);
    CHECK(vae_model_init(&m, arch, &c, 0) == VAE_OK, "1x32x32: %s", m.error);
    if (!m.layers) return;
    CHECK(m.nparams == 4029185, "1x32x32 has 4,029,185 parameters, got %zu", m.nparams);
    {
        static const char *names[] = { "encoder.0.weight", "encoder.2.running_mean", "encoder.10.weight", "decoder.2.weight", "decoder.7.running_var", "decoder.8.bias" };
        int k, found = 0, nt = vae_model_tensor_count(&m);
        for (k = 0; k < nt; k++) {
            vae_tensor_info t;
            vae_model_tensor(&m, k, &t);
            for (i = 0; i < 6; i++) found += strcmp(t.name, names[i]) == 0;
        }
        CHECK(found == 6, "state_dict names present (%d of 6)", found);
    }
    {
        static float x[2 * 32 * 32];
        vae_stats st;
        fill_uniform(x, sizeof x / 4, 0, 1, 91);
        CHECK(vae_model_train_step(&m, x, 2, &st) == VAE_OK && isfinite(st.loss), "a training step: %s", m.error);
        CHECK(m.layers[3].state[0] != 0.0f, "running mean moved");
    }
    CHECK(vae_model_save(&m, path, VAE_SAVE_TRAINING_STATE) == VAE_OK, "save: %s", m.error);
    CHECK(vae_model_load(&r, path, 0, 0, VAE_LOAD_TRAINING_STATE) == VAE_OK, "load: %s", r.error);
    if (r.layers) {
        int k, same = 1;
        for (k = 0; k < r.nlayers; k++)
            if (r.layers[k].op == VAE_OP_BATCHNORM)
                same &= memcmp(r.layers[k].state, m.layers[k].state, sizeof(float) * 2 * r.layers[k].c) == 0;
        CHECK(same && memcmp(m.params, r.params, sizeof(float) * m.nparams) == 0, "weights and running statistics survive");
    }
    vae_model_free(&m); vae_model_free(&r);
    remove(path);
}

int main(int argc, char **argv)
{
    (void)argc; (void)argv;
    printf("vae.h %s, GEMM kernel %s\n", VAE_VERSION_STRING, vae_gemm_kernel_name_active());
    run("rng: splitmix64/xoshiro128** reference streams", test_rng);
    run("rng: normal moments", test_rng_normal_moments);
    run("rng: both variates of each pair (vae_rng_normals)", test_rng_normals);
    run("rng: portable log", test_log);
    run("shuffle: keyed permutation", test_shuffle);
    run("linear: forward/backward vs double reference", test_linear_vs_reference);
    run("activations: finite differences", test_activation_gradients);
    run("sample: finite differences incl. clamps", test_sample_gradients);
    run("model: whole-loss finite differences", test_model_gradients);
    run("conv, convt: im2col vs direct loops, finite differences", test_conv_layers);
    run("conv model: whole-loss finite differences", test_conv_model_gradients);
    run("batchnorm: statistics, gradients, eval mode", test_batchnorm);
    run("batchnorm: frozen statistics (eval-mode training)", test_batchnorm_frozen);
    run("groupnorm, maxpool, upsample: forward vs direct loops", test_norm_pool_forward);
    run("groupnorm, residual add, maxpool, upsample, spatial latent: finite differences", test_new_layer_gradients);
    run("loss: BCE, MSE and KL vs closed forms", test_loss_closed_form);
    run("loss: BCE from logits at +-200", test_bce_extreme_logits);
    run("optim: SGD, Adam, AdamW vs hand-computed", test_optimizers);
    run("optim: global gradient-norm clipping", test_grad_clip);
    run("arch: bad descriptions are refused", test_arch_errors);
    run("memory: preallocated, inference-only", test_preallocated);
    run("threads: 1 vs 2 bit-identical", test_threads_bit_identical);
    run("portable: shapes and normal streams match x86-64", test_portable_streams);
    run("ckpt: round trip, names, metadata", test_ckpt_round_trip);
    run("ckpt: resume is bit-exact", test_ckpt_resume_bit_exact);
    run("ckpt: model-level bad files (CHECKPOINTS.md 20-23)", test_ckpt_model_checks);
    run("ckpt: interrupted save keeps the old file", test_ckpt_atomic);
    run("train: MLP on shapes, loss halves", test_train_shapes);
    run("train: conv VAE on shapes, loss halves", test_conv_model);
    run("preset conv (seed 002): counts, names, a step, checkpoint", test_preset_conv);
    run("presets vanilla, resnet, conv250 (seeds 004, 000, 001): counts, names, a step", test_presets_large);
    printf("%d passed, %d failed\n", t_pass, t_fail);
    return t_fail ? 1 : 0;
}
