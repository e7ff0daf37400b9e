#!/bin/sh
# The report `make bench` prints, from one run: the machine, the FMA peak (build/peak),
# GEMM per kernel against OpenBLAS (build/gemm_bench, tests/test_gemm.c's bench mode),
# training throughput and memory against PyTorch and against a -march=native build
# (bench/compare_torch.sh), then every figure against issue 5's targets.
# Benchmarks are not tests: this prints numbers and never fails on a time.
#
# Usage: sh bench/run.sh   (make bench builds what it needs first)
#   REPS=n     reps of the peak and GEMM benchmarks (default 5)
#   ROUNDS=n   rounds of each training comparison (default 5)
# The programs print lines starting with "@" for the summary; this script hides them.
B=${B:-build}
REPS=${REPS:-5}
ROUNDS=${ROUNDS:-5}
RAW=$(mktemp)
trap 'rm -f "$RAW"' EXIT
trap 'exit 130' INT TERM
start=$(date +%s)

# run a program, show its output as it comes without the "@" lines, keep everything in RAW
show() { "$@" 2>&1 | tee -a "$RAW" | awk '!/^@/ { print; fflush() }'; }
t0=$start; nsec=0
took() { now=$(date +%s); [ $nsec -gt 1 ] && echo "(that took $((now - t0)) s)"; t0=$now; }
section() { took; nsec=$((nsec + 1)); printf '\n== %s\n' "$*"; }

echo "vae.h benchmark report ($(date -u '+%Y-%m-%d %H:%M UTC'))"

section "machine"
cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2> /dev/null)
[ -n "$cpu" ] || cpu=$(sysctl -n machdep.cpu.brand_string 2> /dev/null)
[ -n "$cpu" ] || cpu="unknown"
cores=$(getconf _NPROCESSORS_ONLN 2> /dev/null || nproc 2> /dev/null || echo "?")
isa=$(awk '/^flags/ { for (i = 2; i <= NF; i++) if ($i == "avx2" || $i == "fma" || $i == "avx512f") s = s " " $i; print s; exit }' /proc/cpuinfo 2> /dev/null)
echo "CPU:            $cpu ($(uname -m)), $cores cores online; ISA:${isa:- unknown}"
echo "GEMM kernel:    $($B/gemm_bench kernels | head -n 1)   (chosen at run time)"
echo "compiler:       $(${CC:-cc} --version 2> /dev/null | head -n 1); CFLAGS ${CFLAGS:-?} ${OPENMP:-(no OpenMP)}"
echo "OpenBLAS:       $($B/gemm_bench kernels | sed -n 2p)"
tv=$(${PYTHON:-/usr/bin/python3} -c 'import torch; print(torch.__version__)' 2> /dev/null)
echo "PyTorch:        ${tv:-not installed (apt-get install python3-torch)}"
if [ -r /proc/loadavg ]; then
  la=$(cut -d' ' -f1-3 /proc/loadavg)
  busy=$(echo "$la $cores" | awk '{ print ($1 > 0.5) ? " -- other jobs are running: expect noise, trust the ratios more than the figures" : "" }')
  echo "load average:   $la$busy"
fi

section "FMA peak (bench/peak.c)"
show $B/peak "$REPS"
p1=$(awk '$1 == "@" && $2 == "peak" && $3 == "avx2" && $4 == 1 { print $5 }' "$RAW")
p2=$(awk '$1 == "@" && $2 == "peak" && $3 == "avx2" && $4 == 2 { print $5 }' "$RAW")

section "GEMM (tests/test_gemm.c bench mode)"
if [ -n "$p1" ]; then show $B/gemm_bench bench "$REPS" --peak "$p1,${p2:-0}"
else show $B/gemm_bench bench "$REPS"; fi

section "training: vae.h (plain cc -O2, and -march=native) vs PyTorch (bench/compare_torch.sh)"
for cfg in "mlp 1" "mlp 2" "conv 1" "conv 2"; do
  set -- $cfg
  echo "-- $1, $2 thread(s), $ROUNDS rounds"
  show sh bench/compare_torch.sh "$2" "$ROUNDS" "$1"
done

took
# The training table and the summary against issue 5, from the "@" lines.
awk -f bench/report.awk "$RAW"
echo
echo "bench time: $(( $(date +%s) - start )) s"
