/* train_bench - VAE training throughput, measured the way bench/torch_vae.py measures
   PyTorch: 5 warm-up steps, then S timed steps over consecutive batches of the
   Fashion-MNIST training set. Prints images/s (wall clock, and per CPU-second) and memory.
     mlp:  the seed-003 MLP, batch 128, 28x28
     conv: the seed-002 ConvolutionalVAE, batch 32, images zero-padded to 32x32 (as the script)

   Memory, in the same terms as bench/torch_vae.py:
     peak_rss_mb        the whole process's peak RSS (getrusage), data loading included;
     train_rss_mb       the peak RSS while training (Linux: the high-water mark is reset by
                        writing 5 to /proc/self/clear_refs once the data set is loaded), and
     data_rss_mb        the RSS at that moment, so train_rss_mb - data_rss_mb is what
                        training adds on top of the data set both programs hold as floats.
   The last two are left out where /proc does not offer this.

   With --seconds T it stops after T seconds of timed steps if the S steps are not done by
   then (at least 3 steps), so a benchmark on a busy machine keeps to its time budget.

   Build:  make build/train_bench   (and build/train_bench_native: the same with -march=native)
   Run:    build/train_bench --model mlp|conv --threads 1 --steps 400 [--seconds T] [--data DIR] */
#define _POSIX_C_SOURCE 200809L
#define VAE_IMPLEMENTATION
#include "../vae.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
/* CPU seconds of all threads: on a shared machine a one-thread A/B compares these */
static double cpu_now(void) { struct timespec t; clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

/* kB from a "Key:   123 kB" line of /proc/self/status, or -1 */
static long status_kb(const char *key)
{
    char line[256];
    long v = -1;
    size_t n = strlen(key);
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, n) == 0 && line[n] == ':') { v = atol(line + n + 1); break; }
    fclose(f);
    return v;
}

/* Resets the peak-RSS high-water mark to the current RSS; 0 on success. */
static int reset_peak_rss(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return -1;
    if (fputs("5", f) < 0) { fclose(f); return -1; }
    return fclose(f) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    const char *dir = "/usr/share/datasets/fashion-mnist", *model = "mlp";
    int threads = 1, steps = 400, batch = 0, i, side, D, n;
    vae_config c = vae_config_default();
    vae_model m;
    vae_data d;
    char arch[VAE_ARCH_MAX];
    float *x;
    double t, cpu, seconds = 0;
    struct rusage ru;
    long load_peak_kb, data_kb = -1, train_kb = -1;
    for (i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--data")) dir = argv[i + 1];
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seconds")) seconds = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch")) batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--model")) model = argv[i + 1];
        else { fprintf(stderr, "unknown option %s\n", argv[i]); return 2; }
    }
    if (vae_config_preset(&c, model) != VAE_OK) { fprintf(stderr, "unknown model %s\n", model); return 2; }
    if (batch) c.batch = batch;
    batch = c.batch; c.threads = threads;
    side = strcmp(model, "conv") == 0 ? 32 : 28;
    D = side * side;
    vae_arch_preset(arch, sizeof arch, model, 1, side, side, 0, 0);
    if (vae_data_load(&d, dir, VAE_SPLIT_TRAIN) != VAE_OK) { fprintf(stderr, "%s\n", d.error); return 1; }
    /* the whole set as floats, zero-padded and centred to side x side, as the torch script holds it */
    n = d.n;
    x = (float *)calloc((size_t)n * D, sizeof(float));
    if (!x || n <= batch) { fprintf(stderr, "out of memory, or too few images\n"); return 1; }
    {
        uint32_t k;
        int r, pad = (side - 28) / 2;
        float row[784];
        for (k = 0; k < (uint32_t)n; k++) {
            vae_data_batch(&d, &k, 1, row);
            for (r = 0; r < 28; r++) memcpy(x + (size_t)k * D + (size_t)(r + pad) * side + pad, row + r * 28, 28 * sizeof(float));
        }
    }
    vae_data_free(&d);
    /* the data set is in memory: from here on the peak is the training's */
    getrusage(RUSAGE_SELF, &ru);
    load_peak_kb = ru.ru_maxrss;
    if (reset_peak_rss() == 0) data_kb = status_kb("VmRSS");
    if (vae_model_init(&m, arch, &c, 0) != VAE_OK) { fprintf(stderr, "%s\n", m.error); return 1; }
    for (i = 0; i < 5; i++) vae_model_train_step(&m, x + (size_t)i * batch * D, batch, NULL);
    t = now(); cpu = cpu_now();
    for (i = 0; i < steps; i++) {
        size_t j = ((size_t)i * batch) % (size_t)(n - batch);
        vae_model_train_step(&m, x + j * D, batch, NULL);
        if (seconds > 0 && i >= 2 && now() - t >= seconds) { i++; break; }
    }
    t = now() - t; cpu = cpu_now() - cpu;
    steps = i;
    getrusage(RUSAGE_SELF, &ru);
    if (data_kb >= 0) train_kb = status_kb("VmHWM");
    printf("%s threads=%d batch=%d train_images_per_s %.1f (vae.h, GEMM %s)\n", model, threads, batch, steps * batch / t, vae_gemm_kernel_name_active());
    printf("cpu_images_per_s %.1f (images per CPU-second of all threads)\n", steps * batch / cpu);
    printf("peak_rss_mb %.0f\n", (ru.ru_maxrss > load_peak_kb ? ru.ru_maxrss : load_peak_kb) / 1024.0);
    if (train_kb >= 0) printf("train_rss_mb %.0f data_rss_mb %.0f\n", train_kb / 1024.0, data_kb / 1024.0);
    printf("model_memory_mb %.1f\n", vae_model_memory_size(arch, &c, 0) / 1048576.0);
    free(x); vae_model_free(&m);
    return 0;
}
