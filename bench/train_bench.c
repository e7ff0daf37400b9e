/* train_bench - MLP VAE training throughput, measured the way ../shared/reference/torch_vae.py
   measures PyTorch: 5 warm-up steps, then S timed steps over consecutive batches of the
   Fashion-MNIST training set. Prints images/s and peak RSS.

   Build:  cc -O2 -fopenmp bench/train_bench.c -o build/train_bench -lm
   Run:    build/train_bench --data /usr/share/datasets/fashion-mnist --threads 1 --steps 400 */
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
    const char *dir = "/usr/share/datasets/fashion-mnist";
    int threads = 1, steps = 400, batch = 128, i;
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
        else { fprintf(stderr, "unknown option %s\n", argv[i]); return 2; }
    }
    if (vae_data_load(&d, dir, VAE_SPLIT_TRAIN) != VAE_OK) { fprintf(stderr, "%s\n", d.error); return 1; }
    c.batch = batch; c.threads = threads;
    vae_arch_preset(arch, sizeof arch, "mlp", 1, 28, 28, 400, 20);
    if (vae_model_init(&m, arch, &c, 0) != VAE_OK) { fprintf(stderr, "%s\n", m.error); return 1; }
    x = (float *)malloc(sizeof(float) * (size_t)d.n * 784);   /* the whole set as floats, as the torch script holds it */
    {
        uint32_t k;
        for (k = 0; k < (uint32_t)d.n; k++) vae_data_batch(&d, &k, 1, x + (size_t)k * 784);
    }
    for (i = 0; i < 5; i++) vae_model_train_step(&m, x + (size_t)i * batch * 784, batch, NULL);
    t = now();
    for (i = 0; i < steps; i++) {
        size_t j = ((size_t)i * batch) % (size_t)(d.n - batch);
        vae_model_train_step(&m, x + j * 784, batch, NULL);
    }
    t = now() - t;
    getrusage(RUSAGE_SELF, &ru);
    printf("mlp threads=%d batch=%d train_images_per_s %.1f (vae.h, GEMM %s)\n", threads, batch, steps * batch / t, vae_gemm_kernel_name_active());
    printf("peak_rss_mb %.0f\n", ru.ru_maxrss / 1024.0);
    free(x); vae_model_free(&m); vae_data_free(&d);
    return 0;
}
