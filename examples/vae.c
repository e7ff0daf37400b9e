/* vae - train, evaluate and sample Variational Autoencoders from the command line.

   This is the program most users meet first, and a complete example of the vae.h API:
   data loading, training with a progress bar, checkpoints with resume, evaluation in
   nats per image, and PNG grids of samples, reconstructions and interpolations.

   Build:  cc -O2 examples/vae.c -lm -o vae          (add -fopenmp for --threads)
           add -DVAE_USE_STB_IMAGE -I/usr/include/stb for PNG and JPEG folders (Debian
           libstb-dev's stb_image.h; the Makefile does this when the file exists)
   Try:    ./vae train --data shapes --epochs 3 --out shapes.safetensors
           ./vae sample shapes.safetensors -n 64 -o samples.png
   Run `./vae help` for every command and option. */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L   /* clock_gettime, isatty */
#endif
#define VAE_IMPLEMENTATION
#include "../vae.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <time.h>
#include <ctype.h>
#ifdef _WIN32
#include <io.h>
#include <windows.h>   /* FindFirstFileA: listing a folder of images */
#define isatty _isatty
#define fileno _fileno
#else
#include <unistd.h>
#include <dirent.h>
#include <sys/stat.h>
#endif
#ifdef VAE_USE_STB_IMAGE
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#include "stb_image.h"
#define IMAGE_TYPES " .png .jpg"
#else
#define IMAGE_TYPES " (.png .jpg: build with stb_image.h)"
#endif

static const char *usage =
    "usage: vae <command> [options]\n"
    "\n"
    "commands:\n"
    "  train   --data DIR|shapes --out FILE [--model mlp|conv|vanilla|resnet|conv250 --hidden 400 --latent 20 | --arch TEXT]\n"
    "          [--epochs 10 --batch 128 --lr 1e-3 --optim adam|adamw|sgd --beta 1 --beta-warmup 0\n"
    "           --loss bce|mse --clip 0 --wd 0 --momentum 0 --frozen-bn --seed 1 --threads 1 --resume FILE\n"
"           --limit N]\n"
"          --frozen-bn trains with BatchNorm in eval mode (PyTorch's model.eval(): the running\n"
"          statistics normalise and stay unchanged), e.g. to fine-tune --weights on little data;\n"
    "          --epochs counts the epochs to run now; with --resume, training continues bit-exactly;\n"
    "          --limit N uses only the first N images of each split\n"
    "  eval    FILE --data DIR|shapes      test-set loss; last line: nelbo <x> recon <y> kl <z>\n"
    "  sample  FILE -o out.png [-n 64 --seed 1]              draws from the prior\n"
    "  recon   FILE --data DIR|shapes -o out.png [-n 16]     originals above reconstructions\n"
    "  interp  FILE --data DIR|shapes -o out.png [-n 6 --steps 10]   latent interpolation\n"
    "  info    FILE | --model NAME [--hidden --latent --data DIR|--channels C] | --arch TEXT\n"
    "                                                        layer table, ends: params <N>\n"
    "  encode  FILE --data SRC -o latents.safetensors [-n N]   tensors mu and logvar (N x latent,\n"
    "          or N x C x H x W for spatial latents), from the test split of SRC\n"
    "  decode  FILE -i latents.safetensors -o out.safetensors|out.png   decodes tensor z if the\n"
    "          file has one, else mu; out.safetensors holds 'images' (N x C x H x W, F32)\n"
    "\n"
    "Wherever a checkpoint FILE is taken, --model NAME --weights W.safetensors [--hidden --latent\n"
    "--channels --size] instead builds the preset and loads a PyTorch state_dict saved as\n"
    "safetensors (the input shape comes from --data when given); train --weights starts from it.\n"
    "--data also takes a FILE.safetensors with a tensor 'images' N x C x H x W (U8 is divided by\n"
    "255, F32 taken as is; train and test are then the same images).\n"
    "DIR holds one of:\n"
    "  MNIST or Fashion-MNIST IDX files, gzipped or not ({train,t10k}-images-idx3-ubyte[.gz])\n"
    "  CIFAR-10 binary batches (data_batch_1..5.bin, test_batch.bin; or a cifar-10-batches-bin/ in it)\n"
    "  images of one size: .pgm .ppm" IMAGE_TYPES "; in name order every 10th is the test set\n"
    "'shapes' is built in. The data decides the channels and size; a preset that needs another\n"
    "size gets the images zero-padded, centred: conv and resnet to a side divisible by 8 (28 -> 32),\n"
    "vanilla to 256x256, conv250 to 250x250.\n";

/* ------------------------------------------------------------------ helpers */

static void die(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "vae: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    exit(1);
}

static double now(void)
{
#ifdef _WIN32
    return (double)clock() / CLOCKS_PER_SEC;
#else
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
#endif
}

/* Options: every value is checked before anything is read or written. */
typedef struct opts {
    const char *cmd, *file, *data, *out, *model, *arch, *resume, *loss, *optim, *weights, *in;
    int epochs, batch, hidden, latent, threads, n, steps, beta_warmup, channels, size;
    double lr, beta, clip, wd, momentum;
    uint64_t seed;
    int frozen_bn;      /* --frozen-bn */
    int set_hyper;      /* a hyperparameter flag was given (refused with --resume) */
    int quiet;
} opts;

static int data_limit;   /* --limit: at most this many images of each split (0: all) */

static long parse_int(const char *flag, const char *v, long lo, long hi)
{
    char *end;
    long x;
    if (!v) die("%s needs a value", flag);
    x = strtol(v, &end, 10);
    if (end == v || *end || x < lo || x > hi) die("%s: '%s' is not an integer in [%ld, %ld]", flag, v, lo, hi);
    return x;
}

static double parse_num(const char *flag, const char *v, double lo, double hi)
{
    char *end;
    double x;
    if (!v) die("%s needs a value", flag);
    x = strtod(v, &end);
    if (end == v || *end || !(x >= lo && x <= hi)) die("%s: '%s' is not a number in [%g, %g]", flag, v, lo, hi);
    return x;
}

static void parse(opts *o, int argc, char **argv)
{
    int i;
    memset(o, 0, sizeof *o);
    o->epochs = 10; o->batch = 0; o->threads = 1; o->n = 0; o->steps = 10; o->seed = 1;
    o->lr = -1; o->beta = -1; o->clip = -1; o->wd = -1; o->momentum = -1; o->beta_warmup = -1;
    if (argc < 2) { fputs(usage, stderr); exit(2); }
    o->cmd = argv[1];
    for (i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define FLAG(name) (strcmp(a, name) == 0 && (v || (die("%s needs a value", name), 0)) && ++i)
        if (a[0] != '-' && !o->file) o->file = a;
        else if (FLAG("--data")) o->data = v;
        else if (FLAG("--out") || FLAG("-o")) o->out = v;
        else if (FLAG("--model")) o->model = v;
        else if (FLAG("--arch")) o->arch = v;
        else if (FLAG("--resume")) o->resume = v;
        else if (FLAG("--weights")) o->weights = v;
        else if (FLAG("-i") || FLAG("--in")) o->in = v;
        else if (FLAG("--size")) o->size = (int)parse_int(a, v, 1, 65536);
        else if (FLAG("--loss")) { o->loss = v; o->set_hyper = 1; }
        else if (FLAG("--optim")) { o->optim = v; o->set_hyper = 1; }
        else if (FLAG("--epochs")) o->epochs = (int)parse_int(a, v, 0, 100000);
        else if (FLAG("--batch")) o->batch = (int)parse_int(a, v, 1, 65536);
        else if (FLAG("--hidden")) o->hidden = (int)parse_int(a, v, 1, 65536);
        else if (FLAG("--latent")) o->latent = (int)parse_int(a, v, 1, 65536);
        else if (FLAG("--channels")) o->channels = (int)parse_int(a, v, 1, 4);
        else if (FLAG("--threads")) o->threads = (int)parse_int(a, v, 1, 256);
        else if (FLAG("-n")) o->n = (int)parse_int(a, v, 1, 4096);
        else if (FLAG("--steps")) o->steps = (int)parse_int(a, v, 2, 64);
        else if (FLAG("--limit")) data_limit = (int)parse_int(a, v, 1, 2147483647L);
        else if (FLAG("--seed")) o->seed = (uint64_t)parse_int(a, v, 0, 2147483647L);
        else if (FLAG("--lr")) { o->lr = parse_num(a, v, 0, 10); o->set_hyper = 1; }
        else if (FLAG("--beta")) { o->beta = parse_num(a, v, 0, 1e4); o->set_hyper = 1; }
        else if (FLAG("--beta-warmup")) { o->beta_warmup = (int)parse_int(a, v, 0, 1000000000L); o->set_hyper = 1; }
        else if (FLAG("--clip")) { o->clip = parse_num(a, v, 0, 1e9); o->set_hyper = 1; }
        else if (FLAG("--wd")) { o->wd = parse_num(a, v, 0, 100); o->set_hyper = 1; }
        else if (FLAG("--momentum")) { o->momentum = parse_num(a, v, 0, 0.9999); o->set_hyper = 1; }
        else if (strcmp(a, "--frozen-bn") == 0) { o->frozen_bn = 1; o->set_hyper = 1; }
        else if (strcmp(a, "--quiet") == 0) o->quiet = 1;
        else die("unknown option '%s' (see: vae help)", a);
#undef FLAG
    }
}

/* ------------------------------------------------------------------ data */

/* Whether name ends in "." + ext, in any case. */
static int has_ext(const char *name, const char *ext)
{
    size_t n = strlen(name), e = strlen(ext), i;
    if (n <= e + 1 || name[n - e - 1] != '.') return 0;
    for (i = 0; i < e; i++)
        if (tolower((unsigned char)name[n - e + i]) != ext[i]) return 0;
    return 1;
}
static int is_png_jpeg(const char *name) { return has_ext(name, "png") || has_ext(name, "jpg") || has_ext(name, "jpeg"); }
static int is_image(const char *name)
{
    return name[0] != '.' && (has_ext(name, "pgm") || has_ext(name, "ppm") || has_ext(name, "pnm") || is_png_jpeg(name));
}
static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Appends "dir/name" to the list *v of *n paths. */
static void push_path(char ***v, int *n, const char *dir, const char *name)
{
    size_t len = strlen(dir) + strlen(name) + 2;
    if ((*n & (*n - 1)) == 0) {   /* grow at 0, 1, 2, 4, 8, ... */
        char **nv = (char **)realloc(*v, sizeof(char *) * (*n ? 2 * (size_t)*n : 1));
        if (!nv) die("out of memory");
        *v = nv;
    }
    if (!((*v)[*n] = (char *)malloc(len))) die("out of memory");
    snprintf((*v)[*n], len, "%s/%s", dir, name);
    ++*n;
}

/* The image files (.pgm .ppm .pnm .png .jpg .jpeg, not hidden) directly in dir, as "dir/name",
   sorted by name in byte order. Returns their count, or -1 if dir is not a folder. */
static int list_images(const char *dir, char ***out)
{
    char **v = NULL;
    int n = 0;
#ifdef _WIN32
    WIN32_FIND_DATAA f;
    char pattern[1024];
    HANDLE h;
    snprintf(pattern, sizeof pattern, "%s\\*", dir);
    if ((h = FindFirstFileA(pattern, &f)) == INVALID_HANDLE_VALUE) return -1;
    do
        if (!(f.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) && is_image(f.cFileName)) push_path(&v, &n, dir, f.cFileName);
    while (FindNextFileA(h, &f));
    FindClose(h);
#else
    DIR *dp = opendir(dir);
    struct dirent *e;
    if (!dp) return -1;
    while ((e = readdir(dp)) != NULL) {
        struct stat st;
        if (!is_image(e->d_name)) continue;
        push_path(&v, &n, dir, e->d_name);
        if (stat(v[n - 1], &st) != 0 || !S_ISREG(st.st_mode)) free(v[--n]);   /* folders, broken links */
    }
    closedir(dp);
#endif
    if (n) qsort(v, (size_t)n, sizeof *v, cmp_names);
    *out = v;
    return n;
}

/* vae_data_load_images' reader: netpbm files through vae.h, PNG and JPEG through stb_image. */
static vae_result read_image(void *user, const char *path, unsigned char *out, size_t cap, int *w, int *h, int *c, char *err)
{
    (void)user;
    if (!is_png_jpeg(path)) return vae_pnm_load(path, out, cap, w, h, c, err);
#ifdef VAE_USE_STB_IMAGE
    {
        int comp;
        unsigned char *px = NULL;
        if (!stbi_info(path, w, h, &comp) || (out && !(px = stbi_load(path, w, h, &comp, comp >= 3 ? 3 : 1)))) {
            snprintf(err, VAE_ERROR_SIZE, "%s: %s", path, stbi_failure_reason());
            return VAE_ERROR_FORMAT;
        }
        *c = comp >= 3 ? 3 : 1;   /* gray + alpha -> gray, RGBA -> RGB */
        if (!out) return VAE_OK;
        if ((size_t)*w * *h * *c > cap) {
            stbi_image_free(px);
            snprintf(err, VAE_ERROR_SIZE, "%s: changed while being read", path);
            return VAE_ERROR_FORMAT;
        }
        memcpy(out, px, (size_t)*w * *h * *c);
        stbi_image_free(px);
        return VAE_OK;
    }
#else
    (void)out; (void)cap; (void)w; (void)h; (void)c;
    snprintf(err, VAE_ERROR_SIZE, "%s: PNG and JPEG need stb_image.h: install it (Debian: apt-get install libstb-dev) "
             "and rebuild with make, or convert the images to .ppm or .pgm", path);
    return VAE_ERROR_FORMAT;
#endif
}

/* A folder of images. The files in name order are split deterministically: every 10th one (the
   10th, 20th, ...) is the test set, the rest the train set; a folder of fewer than 10 images
   uses all of them for both. Returns 1 when loaded, 0 for a folder without images, -1 if src
   is not a folder. */
static int load_folder(vae_data *d, const char *src, vae_split split)
{
    char **files = NULL;
    const char **pick;
    int n = list_images(src, &files), i, k = 0;
    vae_result r;
    if (n <= 0) { free(files); return n; }
    if (!(pick = (const char **)malloc(sizeof *pick * (size_t)n))) die("out of memory");
    for (i = 0; i < n; i++)
        if (n < 10 || (i % 10 == 9) == (split == VAE_SPLIT_TEST)) pick[k++] = files[i];
    r = vae_data_load_images(d, pick, k, read_image, NULL);
    for (i = 0; i < n; i++) free(files[i]);
    free(files); free(pick);
    if (r != VAE_OK) die("%s", d->error);
    return 1;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* 'shapes' (size x size), a FILE.safetensors with an 'images' tensor (train and test are then
   the same images), a folder of images, or a directory of IDX files or CIFAR-10 batches;
   --limit keeps the first images. */
static void load_data(vae_data *d, const char *src, vae_split split, int size)
{
    vae_result r;
    int n = split == VAE_SPLIT_TRAIN ? 20000 : 2000, folder;
    if (!src) die("--data is required (a directory of IDX files, CIFAR-10 batches or images, or 'shapes')");
    if (strcmp(src, "shapes") == 0)
        r = vae_data_shapes(d, data_limit && data_limit < n ? data_limit : n, size, 1, split);
    else if (ends_with(src, ".safetensors"))
        r = vae_data_load_safetensors(d, src, "images");
    else if ((folder = load_folder(d, src, split)) == 1)
        r = VAE_OK;
    else if ((r = vae_data_load(d, src, split)) == VAE_ERROR_IO && folder == 0)
        die("%s, nor .pgm/.ppm/.png/.jpg images", d->error);
    if (r != VAE_OK) die("%s", d->error);
    if (data_limit && d->n > data_limit) d->n = data_limit;
}

#define PRESETS "mlp, conv, vanilla, resnet, conv250"

/* The built-in shapes are drawn at the model's size: the preset's input size (28 for the MLP). */
static int shapes_size(const opts *o, const vae_model *m)
{
    int c, h, w;
    if (m && m->layers) return m->in_h;
    if (vae_preset_input(o->model ? o->model : "mlp", &c, &h, &w) != VAE_OK) die("unknown model '%s' (presets: " PRESETS ")", o->model);
    return h;
}

/* The image size a preset is built for: the first of the data's own size, the smallest square
   whose side is a multiple of 8 that holds it (conv, resnet), and the seed's size (vanilla
   256x256, conv250 250x250) that the preset takes and that holds the data. The data is then
   zero-padded to it, centred: Fashion-MNIST 28x28 -> 32x32 for `--model conv`. */
static void preset_size(const char *model, int c, int h, int w, int *ph, int *pw)
{
    char arch[VAE_ARCH_MAX];
    int s = ((h > w ? h : w) + 7) / 8 * 8, size[3][2], sc, k;
    size[0][0] = h; size[0][1] = w;
    size[1][0] = size[1][1] = s;
    if (vae_preset_input(model, &sc, &size[2][0], &size[2][1]) != VAE_OK) die("unknown model '%s' (presets: " PRESETS ")", model);
    for (k = 0; k < 3; k++)
        if (size[k][0] >= h && size[k][1] >= w && vae_arch_preset(arch, sizeof arch, model, c, size[k][0], size[k][1], 0, 0) == VAE_OK) {
            *ph = size[k][0]; *pw = size[k][1];
            return;
        }
    die("model '%s' takes neither %dx%d images nor a size they can be padded to", model, h, w);
}

/* Zero-pads (centred) data smaller than the model's input; then the shapes must agree. */
static void fit_data(vae_data *d, const vae_model *m)
{
    if (d->c == m->in_c && d->h <= m->in_h && d->w <= m->in_w && vae_data_pad(d, m->in_h, m->in_w) != VAE_OK) die("%s", d->error);
    if (d->c != m->in_c || d->h != m->in_h || d->w != m->in_w)
        die("data is %dx%dx%d but the model takes %dx%dx%d", d->c, d->h, d->w, m->in_c, m->in_h, m->in_w);
}

static void load_model(vae_model *m, const char *path, int batch, int threads, unsigned flags)
{
    if (!path) die("a checkpoint file is required");
    if (vae_model_load(m, path, batch, threads, flags) != VAE_OK) die("%s", m->error);
}

/* --model NAME (or --arch TEXT) as a fresh model: the input shape from the data when there is
   some (padded up as training pads it), else --channels/--size or the seed's input. */
static void build_model(const opts *o, vae_model *m, int batch, unsigned flags, const vae_data *d)
{
    vae_config c;
    char arch[VAE_ARCH_MAX];
    int ch = 1, h = 28, w = 28;
    if (o->arch) {
        if (o->model) die("give either --arch or --model, not both");
        c = vae_config_default();
        snprintf(arch, sizeof arch, "%s", o->arch);
    } else {
        if (!o->model) die("give a checkpoint FILE, or --model NAME (or --arch TEXT)");
        if (vae_config_preset(&c, o->model) != VAE_OK || vae_preset_input(o->model, &ch, &h, &w) != VAE_OK)
            die("unknown model '%s' (presets: " PRESETS ")", o->model);
        if (d) { ch = d->c; preset_size(o->model, d->c, d->h, d->w, &h, &w); }
        else {
            if (o->channels) ch = o->channels;
            if (o->size) h = w = o->size;
        }
        if (vae_arch_preset(arch, sizeof arch, o->model, ch, h, w, o->hidden, o->latent) != VAE_OK)
            die("model '%s' does not fit %dx%dx%d images (see --channels and --size)", o->model, ch, h, w);
    }
    if (o->loss) c.loss = strcmp(o->loss, "mse") == 0 ? VAE_LOSS_MSE : VAE_LOSS_BCE;
    if (batch > 0) c.batch = batch;
    c.threads = o->threads;
    if (vae_model_init(m, arch, &c, flags) != VAE_OK) die("%s", m->error);
}

/* A checkpoint FILE, or --model NAME --weights FILE: a PyTorch state_dict in safetensors. */
static void open_model(const opts *o, vae_model *m, int batch, unsigned flags, const vae_data *d)
{
    if (!o->weights) { load_model(m, o->file, batch, o->threads, flags); return; }
    if (o->file) die("give a checkpoint FILE or --model NAME --weights FILE, not both");
    build_model(o, m, batch, flags, d);
    if (vae_model_load_weights(m, o->weights) != VAE_OK) die("%s", m->error);
}

/* The model and the test split of --data; with --weights the data comes first and gives the
   preset its input shape. */
static void open_model_data(const opts *o, vae_model *m, int batch, unsigned flags, vae_data *d)
{
    if (o->weights) {
        load_data(d, o->data, VAE_SPLIT_TEST, shapes_size(o, NULL));
        open_model(o, m, batch, flags, d);
    } else {
        open_model(o, m, batch, flags, NULL);
        load_data(d, o->data, VAE_SPLIT_TEST, shapes_size(o, m));
    }
    fit_data(d, m);
}

/* Writes images (n, c, h, w) in [0,1] as a grid of `cols` columns with a 2-pixel border.
   Small images are scaled up (nearest neighbour) so that each is at least 56 pixels. */
static void write_grid(const char *path, const float *img, int n, int c, int h, int w, int cols)
{
    int s = (h < 56 && w < 56) ? 56 / (h > w ? h : w) : 1, hs = h * s, ws = w * s;
    int rows = (n + cols - 1) / cols, pad = 2, ch = c == 1 ? 1 : 3;
    int W = cols * (ws + pad) + pad, H = rows * (hs + pad) + pad, i, y, x, k;
    unsigned char *px = (unsigned char *)malloc((size_t)W * H * ch);
    char err[VAE_ERROR_SIZE];
    if (!px) die("out of memory");
    memset(px, 40, (size_t)W * H * ch);
    for (i = 0; i < n; i++) {
        int ox = pad + (i % cols) * (ws + pad), oy = pad + (i / cols) * (hs + pad);
        for (y = 0; y < hs; y++)
            for (x = 0; x < ws; x++)
                for (k = 0; k < ch; k++) {
                    float v = img[(((size_t)i * c + (k < c ? k : 0)) * h + y / s) * w + x / s];
                    v = v < 0 ? 0 : v > 1 ? 1 : v;
                    px[((size_t)(oy + y) * W + ox + x) * ch + k] = (unsigned char)(v * 255.0f + 0.5f);
                }
    }
    if (vae_png_write(path, px, W, H, ch, err) != VAE_OK) die("%s", err);
    free(px);
    printf("wrote %s (%dx%d)\n", path, W, H);
}

/* ------------------------------------------------------------------ train */

typedef struct bar { double t0; int tty; double last; } bar;

static int progress(void *user, const vae_progress *p)
{
    bar *b = (bar *)user;
    double t = now(), el = t - b->t0, rate = el > 0 ? p->step / el : 0;
    int w = 30, fill = (int)((double)w * p->step / p->steps), i;
    char line[160];
    int at;
    if (!b->tty || (t - b->last < 0.1 && p->step != p->steps)) return 0;
    b->last = t;
    at = snprintf(line, sizeof line, "\r  [");
    for (i = 0; i < w; i++) line[at++] = i < fill ? '=' : i == fill ? '>' : ' ';
    snprintf(line + at, sizeof line - at, "] %d/%d  %.0f img/s  ETA %.0fs  loss %.2f   ",
             p->step, p->steps, rate * p->running.images / (p->step ? p->step : 1),
             rate > 0 ? (p->steps - p->step) / rate : 0.0, p->running.loss);
    fputs(line, stderr);
    fflush(stderr);
    return 0;
}

static void cmd_train(opts *o)
{
    vae_data tr, te;
    vae_model m;
    int e;
    if (!o->out) die("train: --out FILE is required");
    if (o->channels) die("train: the data decides the channels; --channels is for info");
    if (o->resume) {
        if (o->set_hyper || o->model || o->arch || o->hidden || o->latent || o->weights)
            die("train: --resume continues with the checkpoint's model and hyperparameters; drop the other model and optimizer flags");
        load_model(&m, o->resume, o->batch, o->threads, VAE_LOAD_TRAINING_STATE);
        if (o->batch && o->batch != m.cfg.batch) die("train: --resume keeps the checkpoint's batch size %d", m.cfg.batch);
        load_data(&tr, o->data, VAE_SPLIT_TRAIN, shapes_size(o, &m));
        load_data(&te, o->data, VAE_SPLIT_TEST, shapes_size(o, &m));
    } else {
        vae_config c;
        char arch[VAE_ARCH_MAX];
        vae_result r;
        if (vae_config_preset(&c, o->model ? o->model : "mlp") != VAE_OK) die("train: unknown model '%s' (presets: " PRESETS ")", o->model);
        if (o->batch) c.batch = o->batch;
        if (o->lr >= 0) c.lr = (float)o->lr;
        if (o->beta >= 0) c.beta = (float)o->beta;
        if (o->beta_warmup >= 0) c.beta_warmup = o->beta_warmup;
        if (o->clip >= 0) c.clip = (float)o->clip;
        if (o->wd >= 0) c.weight_decay = (float)o->wd;
        if (o->momentum >= 0) c.momentum = (float)o->momentum;
        if (o->frozen_bn) c.frozen_stats = 1;
        if (o->loss) {
            if (strcmp(o->loss, "bce") == 0) c.loss = VAE_LOSS_BCE;
            else if (strcmp(o->loss, "mse") == 0) c.loss = VAE_LOSS_MSE;
            else die("--loss must be bce or mse, not '%s'", o->loss);
        }
        if (o->optim) {
            if (strcmp(o->optim, "adam") == 0) c.optim = VAE_OPTIM_ADAM;
            else if (strcmp(o->optim, "adamw") == 0) c.optim = VAE_OPTIM_ADAMW;
            else if (strcmp(o->optim, "sgd") == 0) c.optim = VAE_OPTIM_SGD;
            else die("--optim must be adam, adamw or sgd, not '%s'", o->optim);
        }
        c.seed = o->seed; c.threads = o->threads;
        if (o->arch && (o->model || o->hidden || o->latent)) die("train: give either --arch or --model, not both");
        load_data(&tr, o->data, VAE_SPLIT_TRAIN, shapes_size(o, NULL));
        load_data(&te, o->data, VAE_SPLIT_TEST, shapes_size(o, NULL));
        if (o->arch) snprintf(arch, sizeof arch, "%s", o->arch);
        else {   /* the data decides the preset's shape */
            const char *name = o->model ? o->model : "mlp";
            int h, w;
            preset_size(name, tr.c, tr.h, tr.w, &h, &w);
            if (vae_arch_preset(arch, sizeof arch, name, tr.c, h, w, o->hidden, o->latent) != VAE_OK)
                die("train: model '%s' does not fit %dx%dx%d data", name, tr.c, tr.h, tr.w);
        }
        if ((r = vae_model_init(&m, arch, &c, 0)) != VAE_OK) die("%s", m.error);
        if (o->weights && vae_model_load_weights(&m, o->weights) != VAE_OK) die("%s", m.error);
    }
    fit_data(&tr, &m);
    fit_data(&te, &m);
    if (!o->quiet)
        printf("training %lu parameters on %d images (%s), batch %d, %d epoch(s) from epoch %d, GEMM %s\n",
               (unsigned long)m.nparams, tr.n, o->data, m.cfg.batch, o->epochs, m.epoch, vae_gemm_kernel_name_active());
    for (e = 0; e < o->epochs; e++) {
        bar b;
        vae_stats st, ts;
        double t;
        b.t0 = now(); b.last = 0; b.tty = !o->quiet && isatty(fileno(stderr));
        if (vae_model_train_epoch(&m, &tr, progress, &b, &st) != VAE_OK) die("%s", m.error);
        t = now() - b.t0;
        if (b.tty) fputs("\r\033[K", stderr);
        if (vae_model_evaluate_data(&m, &te, 0, &ts) != VAE_OK) die("%s", m.error);
        printf("epoch %3d  train recon %8.3f kl %7.3f total %8.3f | test recon %8.3f kl %7.3f total %8.3f | %5.1fs %6.0f img/s\n",
               m.epoch, st.recon, st.kl, st.loss, ts.recon, ts.kl, ts.loss, t, st.images / t);
        fflush(stdout);
        if (vae_model_save(&m, o->out, VAE_SAVE_TRAINING_STATE) != VAE_OK) die("%s", m.error);
    }
    if (o->epochs == 0 && vae_model_save(&m, o->out, VAE_SAVE_TRAINING_STATE) != VAE_OK) die("%s", m.error);
    if (!o->quiet) printf("saved %s\n", o->out);
    vae_model_free(&m); vae_data_free(&tr); vae_data_free(&te);
}

/* ------------------------------------------------------------------ eval, sample, recon, interp, info */

static void cmd_eval(opts *o)
{
    vae_model m;
    vae_data te;
    vae_stats s;
    open_model_data(o, &m, o->batch ? o->batch : 500, 0, &te);
    if (vae_model_evaluate_data(&m, &te, 0, &s) != VAE_OK) die("%s", m.error);
    printf("%d test images, %s loss, beta %g: loss %.4f\n", s.images, m.cfg.loss == VAE_LOSS_BCE ? "bce" : "mse", m.cfg.beta, s.loss);
    printf("nelbo %.4f recon %.4f kl %.4f\n", s.recon + s.kl, s.recon, s.kl);
    vae_model_free(&m); vae_data_free(&te);
}

/* n decoder outputs packed at img become n images of the input's shape, in place: a model
   with a one-channel output (seed 004) shows it as gray in every input channel. */
static void outputs_as_inputs(const vae_model *m, float *img, int n)
{
    size_t plane = (size_t)m->in_h * m->in_w;
    int i, c;
    if (m->out_c == m->in_c) return;
    for (i = n - 1; i >= 0; i--)
        for (c = m->in_c - 1; c >= 0; c--) memmove(img + (size_t)i * m->in_size + c * plane, img + (size_t)i * m->out_size, sizeof(float) * plane);
}

static void cmd_sample(opts *o)
{
    vae_model m;
    vae_rng rng;
    float *img;
    int n = o->n ? o->n : 64;
    if (!o->out) die("sample: -o out.png is required");
    open_model(o, &m, 0, VAE_INFERENCE, NULL);
    img = (float *)malloc(sizeof(float) * (size_t)n * m.in_size);
    if (!img) die("out of memory");
    vae_rng_seed(&rng, o->seed);
    if (vae_model_sample(&m, &rng, n, img) != VAE_OK) die("%s", m.error);
    outputs_as_inputs(&m, img, n);
    write_grid(o->out, img, n, m.in_c, m.in_h, m.in_w, (int)ceil(sqrt((double)n)));
    free(img); vae_model_free(&m);
}

static void cmd_recon(opts *o)
{
    vae_model m;
    vae_data te;
    float *img;
    uint32_t i;
    int n = o->n ? o->n : 16;
    if (!o->out) die("recon: -o out.png is required");
    open_model_data(o, &m, 0, VAE_INFERENCE, &te);
    if (n > te.n) n = te.n;
    img = (float *)malloc(sizeof(float) * 2 * (size_t)n * m.in_size);
    if (!img) die("out of memory");
    for (i = 0; i < (uint32_t)n; i++) vae_data_batch(&te, &i, 1, img + (size_t)i * m.in_size);
    if (vae_model_reconstruct(&m, img, n, img + (size_t)n * m.in_size) != VAE_OK) die("%s", m.error);
    outputs_as_inputs(&m, img + (size_t)n * m.in_size, n);
    write_grid(o->out, img, 2 * n, m.in_c, m.in_h, m.in_w, n);
    free(img); vae_model_free(&m); vae_data_free(&te);
}

static void cmd_interp(opts *o)
{
    vae_model m;
    vae_data te;
    int pairs = o->n ? o->n : 6, K = o->steps, cols = K + 2, p, k, j;
    float *img, *x, *mu;
    if (!o->out) die("interp: -o out.png is required");
    open_model_data(o, &m, 0, VAE_INFERENCE, &te);
    if (2 * pairs > te.n) pairs = te.n / 2;
    img = (float *)malloc(sizeof(float) * (size_t)pairs * cols * m.in_size);
    x = (float *)malloc(sizeof(float) * 2 * (size_t)m.in_size);
    mu = (float *)malloc(sizeof(float) * (size_t)(K + 2) * m.latent);
    if (!img || !x || !mu) die("out of memory");
    for (p = 0; p < pairs; p++) {
        uint32_t idx[2];
        float *row = img + (size_t)p * cols * m.in_size;
        idx[0] = (uint32_t)(2 * p); idx[1] = (uint32_t)(2 * p + 1);
        vae_data_batch(&te, idx, 2, x);
        if (vae_model_encode(&m, x, 2, mu, NULL) != VAE_OK) die("%s", m.error);   /* mu[0..1] */
        for (k = K - 1; k >= 0; k--) {   /* fill from the back so mu[0], mu[1] survive */
            float t = (float)k / (K - 1);
            for (j = 0; j < m.latent; j++) mu[(size_t)(k + 2) * m.latent + j] = (1 - t) * mu[j] + t * mu[m.latent + j];
        }
        if (vae_model_decode(&m, mu + 2 * (size_t)m.latent, K, row + m.in_size) != VAE_OK) die("%s", m.error);
        outputs_as_inputs(&m, row + m.in_size, K);
        memcpy(row, x, sizeof(float) * m.in_size);
        memcpy(row + (size_t)(K + 1) * m.in_size, x + m.in_size, sizeof(float) * m.in_size);
    }
    write_grid(o->out, img, pairs * cols, m.in_c, m.in_h, m.in_w, cols);
    free(img); free(x); free(mu); vae_model_free(&m); vae_data_free(&te);
}

static void cmd_info(opts *o)
{
    vae_model m;
    char row[256];
    int i;
    if (o->file || o->weights) open_model(o, &m, 1, VAE_INFERENCE, NULL);
    else {
        char arch[VAE_ARCH_MAX];
        vae_config c = vae_config_default();
        c.batch = 1;
        if (o->arch) snprintf(arch, sizeof arch, "%s", o->arch);
        else if (!o->model) die("info: give a checkpoint FILE, --model NAME or --arch TEXT");
        else {   /* the shape of --data if given, else the seed's (with --channels C) */
            int ch, h, w;
            if (vae_preset_input(o->model, &ch, &h, &w) != VAE_OK) die("info: unknown model '%s' (presets: " PRESETS ")", o->model);
            if (o->channels) ch = o->channels;
            if (o->data) {
                vae_data d;
                if (o->channels) die("info: the data decides the channels; give --data or --channels, not both");
                load_data(&d, o->data, VAE_SPLIT_TEST, h);
                ch = d.c;
                preset_size(o->model, d.c, d.h, d.w, &h, &w);
                vae_data_free(&d);
            }
            if (vae_arch_preset(arch, sizeof arch, o->model, ch, h, w, o->hidden, o->latent) != VAE_OK)
                die("info: model '%s' does not take %d channels of %dx%d", o->model, ch, h, w);
        }
        c.loss = VAE_LOSS_MSE;   /* the loss does not change the table; MSE accepts any decoder */
        if (vae_model_init(&m, arch, &c, VAE_INFERENCE) != VAE_OK) die("%s", m.error);
    }
    printf("%3s  %-10s %-40s %-14s %10s\n", "#", "layer", "name", "output", "params");
    for (i = 0; i < m.nlayers; i++) { vae_model_layer_row(&m, i, row, sizeof row); printf("%s\n", row); }
    if (o->file)
        printf("trained %d epoch(s), %lld step(s); loss %s, optimizer %s, lr %g, beta %g, batch %d\n", m.epoch,
               (long long)m.step, m.cfg.loss == VAE_LOSS_BCE ? "bce" : "mse",
               m.cfg.optim == VAE_OPTIM_SGD ? "sgd" : m.cfg.optim == VAE_OPTIM_ADAMW ? "adamw" : "adam",
               m.cfg.lr, m.cfg.beta, m.cfg.batch);
    printf("latent %d\n", m.latent);
    printf("params %lu\n", (unsigned long)m.nparams);
    vae_model_free(&m);
}

/* ------------------------------------------------------------------ encode, decode */

/* The latent shape of one image: (latent) for a flat code, (C, H, W) for a spatial one. */
static int latent_dims(const vae_model *m, int *shape)
{
    const vae_layer *s = &m->layers[m->sample_layer];
    if (s->h == 1 && s->w == 1) { shape[0] = m->latent; return 1; }
    shape[0] = s->c; shape[1] = s->h; shape[2] = s->w;
    return 3;
}

static void cmd_encode(opts *o)
{
    vae_model m;
    vae_data d;
    vae_tensor_info t[2];
    char err[VAE_ERROR_SIZE];
    float *x, *mu, *lv;
    int n, done, k, i, chunk = o->batch && o->batch < 256 ? o->batch : o->batch ? 256 : 32, nd, shape[3];
    if (!o->out) die("encode: -o latents.safetensors is required");
    open_model_data(o, &m, chunk, VAE_INFERENCE, &d);
    n = o->n && o->n < d.n ? o->n : d.n;
    x = (float *)malloc(sizeof(float) * (size_t)chunk * m.in_size);
    mu = (float *)malloc(sizeof(float) * (size_t)n * m.latent);
    lv = (float *)malloc(sizeof(float) * (size_t)n * m.latent);
    if (!x || !mu || !lv) die("out of memory");
    for (done = 0; done < n; done += k) {
        uint32_t idx[256];
        k = n - done < chunk ? n - done : chunk;
        for (i = 0; i < k; i++) idx[i] = (uint32_t)(done + i);
        vae_data_batch(&d, idx, k, x);
        if (vae_model_encode(&m, x, k, mu + (size_t)done * m.latent, lv + (size_t)done * m.latent) != VAE_OK) die("%s", m.error);
    }
    nd = latent_dims(&m, shape);
    memset(t, 0, sizeof t);
    for (k = 0; k < 2; k++) {
        snprintf(t[k].name, sizeof t[k].name, "%s", k ? "logvar" : "mu");
        t[k].ndim = 1 + nd; t[k].shape[0] = n;
        for (i = 0; i < nd; i++) t[k].shape[1 + i] = shape[i];
        t[k].data = k ? lv : mu;
    }
    if (vae_tensors_save(o->out, t, 2, err) != VAE_OK) die("%s", err);
    printf("wrote %s: mu and logvar of %d images, %d latents each\n", o->out, n, m.latent);
    free(x); free(mu); free(lv); vae_model_free(&m); vae_data_free(&d);
}

static void cmd_decode(opts *o)
{
    vae_model m;
    vae_data z;
    float *img;
    const char *name = "z";
    int png;
    if (!o->in) die("decode: -i latents.safetensors is required");
    if (!o->out) die("decode: -o out.safetensors|out.png is required");
    png = ends_with(o->out, ".png");
    if (!png && !ends_with(o->out, ".safetensors")) die("decode: -o must end in .png or .safetensors");
    open_model(o, &m, o->batch ? o->batch : 32, VAE_INFERENCE, NULL);
    /* z when the file has it (codes of your own), else the encoder's mu */
    if (vae_data_load_safetensors(&z, o->in, name) != VAE_OK) {
        if (!strstr(z.error, "no tensor 'z'")) die("%s", z.error);
        name = "mu";
        if (vae_data_load_safetensors(&z, o->in, name) != VAE_OK) {
            if (strstr(z.error, "no tensor 'mu'")) die("%s: no tensor 'z' or 'mu' to decode", o->in);
            die("%s", z.error);
        }
    }
    if (!z.values) die("%s: tensor '%s' must be F32", o->in, name);
    if ((long)z.c * z.h * z.w != m.latent)
        die("%s: tensor '%s' holds %ld values per image, the model's latent has %d", o->in, name, (long)z.c * z.h * z.w, m.latent);
    img = (float *)malloc(sizeof(float) * (size_t)z.n * m.out_size);   /* out_c: 1 for seed 004 */
    if (!img) die("out of memory");
    if (vae_model_decode(&m, z.values, z.n, img) != VAE_OK) die("%s", m.error);
    if (png) write_grid(o->out, img, z.n, m.out_c, m.in_h, m.in_w, (int)ceil(sqrt((double)z.n)));
    else {
        vae_tensor_info t;
        char err[VAE_ERROR_SIZE];
        memset(&t, 0, sizeof t);
        snprintf(t.name, sizeof t.name, "images");
        t.ndim = 4; t.shape[0] = z.n; t.shape[1] = m.out_c; t.shape[2] = m.in_h; t.shape[3] = m.in_w; t.data = img;
        if (vae_tensors_save(o->out, &t, 1, err) != VAE_OK) die("%s", err);
        printf("wrote %s: images %dx%dx%dx%d from '%s'\n", o->out, z.n, m.out_c, m.in_h, m.in_w, name);
    }
    free(img); vae_model_free(&m); vae_data_free(&z);
}

int main(int argc, char **argv)
{
    opts o;
    parse(&o, argc, argv);
#ifndef _OPENMP
    if (o.threads > 1) fprintf(stderr, "vae: note: built without -fopenmp, so --threads %d runs on one thread\n", o.threads);
#endif
    if (o.weights && o.resume) die("--weights and --resume exclude each other");
    if (strcmp(o.cmd, "train") == 0) cmd_train(&o);
    else if (strcmp(o.cmd, "encode") == 0) cmd_encode(&o);
    else if (strcmp(o.cmd, "decode") == 0) cmd_decode(&o);
    else if (strcmp(o.cmd, "eval") == 0) cmd_eval(&o);
    else if (strcmp(o.cmd, "sample") == 0) cmd_sample(&o);
    else if (strcmp(o.cmd, "recon") == 0) cmd_recon(&o);
    else if (strcmp(o.cmd, "interp") == 0) cmd_interp(&o);
    else if (strcmp(o.cmd, "info") == 0) cmd_info(&o);
    else if (strcmp(o.cmd, "help") == 0 || strcmp(o.cmd, "--help") == 0 || strcmp(o.cmd, "-h") == 0) fputs(usage, stdout);
    else { fprintf(stderr, "vae: unknown command '%s'\n%s", o.cmd, usage); return 2; }
    return 0;
}
