# vae.h - build, test and demo. Everything builds from one header; no configure step.
#   make            build/vae and the examples
#   make test       unit tests + command-line tests; ends with "N passed, M failed"
#   make bench      one benchmark report: FMA peak, GEMM vs OpenBLAS, training vs PyTorch
#   make demo       train on the built-in shapes (about a minute), write sample/recon/interp PNGs
#   make test-neon  the tests for aarch64 under qemu (NEON kernel checked against scalar)
#   make test-wasm  the tests built with emcc -msimd128, run under node
#   make test-asan  the tests under AddressSanitizer + UndefinedBehaviorSanitizer
#   make test-cxx   the header compiled as C++, and as C99 with VAE_STATIC and VAE_NO_STDIO
#   make test-torch every preset against its seed's PyTorch module (needs Debian's python3-torch)
CC      ?= cc
CFLAGS  ?= -O2 -std=c99 -Wall -Wextra -pedantic
# OpenMP when the compiler can link it (gcc ships libgomp; clang needs libomp-dev), else none.
OPENMP  ?= $(shell printf 'int main(void){return 0;}\n' | $(CC) -fopenmp -x c - -o /dev/null 2>/dev/null && echo -fopenmp)
LDLIBS  ?= -lm
B       := build

# PNG and JPEG folders for `vae train --data DIR` when stb_image.h is there (Debian libstb-dev).
STB_DIR ?= /usr/include/stb
STB     := $(if $(wildcard $(STB_DIR)/stb_image.h),-DVAE_USE_STB_IMAGE -I$(STB_DIR))

EXAMPLES := $(B)/vae
DEPS     := vae.h

.PHONY: all test bench demo test-neon test-wasm test-asan test-cxx test-torch clean

all: $(EXAMPLES)

$(B):
	mkdir -p $(B)

$(B)/vae: examples/vae.c $(DEPS) | $(B)
	$(CC) $(CFLAGS) $(OPENMP) $(STB) $< -o $@ $(LDLIBS)

TESTS := $(B)/test_vae $(B)/test_gemm $(B)/test_elem $(B)/test_safetensors $(B)/test_formats

$(B)/test_%: tests/test_%.c $(DEPS) | $(B)
	$(CC) $(CFLAGS) $(OPENMP) $< -o $@ $(LDLIBS)

# Each suite ends with "N passed, M failed"; tests/run_suites.sh adds them up in its last line.
test: $(TESTS) $(B)/vae
	@sh tests/run_suites.sh $(B)/test_vae $(B)/test_gemm $(B)/test_elem $(B)/test_safetensors $(B)/test_formats "sh tests/cli_test.sh $(B)/vae"

# vae.h against PyTorch: forward, losses, gradients and one optimizer step of every preset,
# and weights both ways (tests/test_torch.py). Skipped, with a message, without torch.
PYTHON ?= /usr/bin/python3
test-torch: $(B)/test_torch $(B)/vae
	@if $(PYTHON) -c 'import torch' > /dev/null 2>&1; then $(PYTHON) tests/test_torch.py $(B); \
	else echo "SKIP test-torch: $(PYTHON) cannot import torch (on Debian: apt-get install python3-torch)"; fi

$(B)/train_bench: bench/train_bench.c $(DEPS) | $(B)
	$(CC) $(CFLAGS) $(OPENMP) $< -o $@ $(LDLIBS)

# The same training benchmark built for this very CPU, to show what runtime dispatch costs.
# Left out (with a note) where the compiler has no -march=native.
$(B)/train_bench_native: bench/train_bench.c $(DEPS) | $(B)
	$(CC) $(CFLAGS) -march=native $(OPENMP) $< -o $@ $(LDLIBS) || echo "(no -march=native build: left out of make bench)"

$(B)/peak: bench/peak.c | $(B)
	$(CC) $(CFLAGS) $(OPENMP) $< -o $@ $(LDLIBS)

# GEMM per kernel, side by side with OpenBLAS when libopenblas-dev is installed.
OPENBLAS_INC := /usr/include/x86_64-linux-gnu/openblas-pthread
$(B)/gemm_bench: tests/test_gemm.c $(DEPS) | $(B)
	if [ -f $(OPENBLAS_INC)/cblas.h ]; then \
	  $(CC) $(CFLAGS) $(OPENMP) -DVAE_TEST_OPENBLAS -I$(OPENBLAS_INC) $< -o $@ -lopenblas $(LDLIBS); \
	else $(CC) $(CFLAGS) $(OPENMP) $< -o $@ $(LDLIBS); fi

# One report: machine, FMA peak, GEMM per kernel vs OpenBLAS, training vs PyTorch and vs a
# -march=native build, and a summary against issue 5's targets (bench/run.sh). About 6 min
# on a quiet 2-core machine; REPS=n and ROUNDS=n change its length. Benchmarks are not
# tests: they print numbers and never fail on a time.
bench: $(B)/peak $(B)/gemm_bench $(B)/train_bench $(B)/train_bench_native
	@CC="$(CC)" CFLAGS="$(CFLAGS)" OPENMP="$(OPENMP)" B=$(B) sh bench/run.sh

demo: $(B)/vae
	$(B)/vae train --data shapes --epochs 25 --batch 64 --latent 16 --hidden 400 --threads 2 --out $(B)/demo.safetensors
	$(B)/vae sample $(B)/demo.safetensors -n 64 -o $(B)/demo-samples.png
	$(B)/vae recon  $(B)/demo.safetensors --data shapes -n 16 -o $(B)/demo-recon.png
	$(B)/vae interp $(B)/demo.safetensors --data shapes -n 6 -o $(B)/demo-interp.png
	$(B)/vae eval   $(B)/demo.safetensors --data shapes

# aarch64: cross-compiled, run under qemu user mode (binfmt is not registered: call qemu).
test-neon: | $(B)
	for t in vae gemm elem; do aarch64-linux-gnu-gcc $(CFLAGS) $(OPENMP) tests/test_$$t.c -o $(B)/arm64_$$t $(LDLIBS) || exit 1; done
	@OMP_NUM_THREADS=2 sh tests/run_suites.sh "qemu-aarch64 -L /usr/aarch64-linux-gnu $(B)/arm64_vae" \
	  "qemu-aarch64 -L /usr/aarch64-linux-gnu $(B)/arm64_gemm quick" "qemu-aarch64 -L /usr/aarch64-linux-gnu $(B)/arm64_elem"

# WASM SIMD128 under node. NODE_PATH lets Debian's emcc find its JS tools.
test-wasm: | $(B)
	for t in vae gemm elem; do NODE_PATH=/usr/share/nodejs emcc -O2 -msimd128 -sALLOW_MEMORY_GROWTH=1 \
	  -sTOTAL_STACK=4194304 -sSINGLE_FILE=1 tests/test_$$t.c -o $(B)/wasm_$$t.js || exit 1; done
	@sh tests/run_suites.sh "node $(B)/wasm_vae.js" "node $(B)/wasm_gemm.js quick" "node $(B)/wasm_elem.js"

SAN := -std=c99 -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
test-asan: | $(B)
	for t in vae gemm elem safetensors formats; do $(CC) $(SAN) tests/test_$$t.c -o $(B)/asan_$$t $(LDLIBS) || exit 1; done
	$(CC) $(SAN) $(STB) examples/vae.c -o $(B)/vae_asan $(LDLIBS)
	@sh tests/run_suites.sh $(B)/asan_vae "$(B)/asan_gemm quick" $(B)/asan_elem $(B)/asan_safetensors "$(B)/asan_formats --quick" \
	  "sh tests/cli_test.sh $(B)/vae_asan"

test-cxx: | $(B)
	printf '#define VAE_IMPLEMENTATION\n#include "vae.h"\nint main(void){ return vae_result_string(VAE_OK)[0] != 111; }\n' > $(B)/cxx.cpp
	$(CXX) -std=c++11 -Wall -Wextra -pedantic -Werror -I. $(B)/cxx.cpp -o $(B)/cxx && $(B)/cxx
	printf '#define VAE_STATIC\n#define VAE_IMPLEMENTATION\n#include "vae.h"\nint main(void){ return vae_result_string(VAE_OK)[0] != 111; }\n' > $(B)/static.c
	$(CC) -std=c99 -Wall -Wextra -pedantic -Werror -I. $(B)/static.c -o $(B)/static $(LDLIBS) && $(B)/static
	$(CC) -std=c99 -Wall -Wextra -pedantic -Werror -DVAE_NO_STDIO -I. -c $(B)/static.c -o $(B)/nostdio.o

clean:
	rm -rf $(B)
