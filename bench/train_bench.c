/* train_bench - VAE training throughput, measured the way ../shared/reference/torch_vae.py
   measures PyTorch: 5 warm-up steps, then S timed steps over consecutive batches of the
   Fashion-MNIST training set. Prints images/s and peak RSS.
     mlp:  the seed-003 MLP, batch 128, 28x28
     conv: the seed-002 ConvolutionalVAE, batch 32, images zero-padded to 32x32 (as the script)

   Build:  make build/train_bench
   Run:    build/train_bench --model mlp|conv --threads 1 --steps 400 [--data DIR] */
#define _POSIX_C_SOURCE 200809L
#define VAE_IMPLEMENTATION
#include "../vae.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

int main(int argc, char **argv)
{
    const char *dir = "/usr/share/datasets/fashion-mnist", *model = "mlp";
    int threads = 1, steps = 400, batch = 0, i, side, D;
    vae_config c = vae_config_default();
    vae_model m;
    vae_data d;
    char arch[VAE_ARCH_MAX];
    float *x;
    double t;
    struct rusage ru;
    for (i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--data")) dir = argv[i + 1];
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch")) batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--model")) model = argv[i + 1];
        else { fprintf(stderr, "unknown option %s\n", argv[i]); return 2; }
    }
    if (vae_data_load(&d, dir, VAE_SPLIT_TRAIN) != VAE_OK) { fprintf(stderr, "%s\n", d.error); return 1; }
    if (vae_config_preset(&c, model) != VAE_OK) { fprintf(stderr, "unknown model %s\n", model); return 2; }
    if (batch) c.batch = batch;
    batch = c.batch; c.threads = threads;
    side = strcmp(model, "conv") == 0 ? 32 : 28;
    D = side * side;
    vae_arch_preset(arch, sizeof arch, model, 1, side, side, 0, 0);
    if (vae_model_init(&m, arch, &c, 0) != VAE_OK) { fprintf(stderr, "%s\n", m.error); return 1; }
    /* the whole set as floats, zero-padded and centred to side x side, as the torch script holds it */
    x = (float *)calloc((size_t)d.n * D, sizeof(float));
    {
        uint32_t k;
        int r, pad = (side - 28) / 2;
        float row[784];
        for (k = 0; k < (uint32_t)d.n; k++) {
            vae_data_batch(&d, &k, 1, row);
            for (r = 0; r < 28; r++) memcpy(x + (size_t)k * D + (size_t)(r + pad) * side + pad, row + r * 28, 28 * sizeof(float));
        }
    }
    for (i = 0; i < 5; i++) vae_model_train_step(&m, x + (size_t)i * batch * D, batch, NULL);
    t = now();
    for (i = 0; i < steps; i++) {
        size_t j = ((size_t)i * batch) % (size_t)(d.n - batch);
        vae_model_train_step(&m, x + j * D, batch, NULL);
    }
    t = now() - t;
    getrusage(RUSAGE_SELF, &ru);
    printf("%s threads=%d batch=%d train_images_per_s %.1f (vae.h, GEMM %s)\n", model, threads, batch, steps * batch / t, vae_gemm_kernel_name_active());
    printf("peak_rss_mb %.0f\n", ru.ru_maxrss / 1024.0);
    free(x); vae_model_free(&m); vae_data_free(&d);
    return 0;
}
