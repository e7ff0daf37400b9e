#!/bin/sh
# VAE training throughput and memory: vae.h against PyTorch 1.13 (Debian python3-torch), and
# vae.h's plain `cc -O2` build (runtime dispatch) against its -march=native build, on the same
# machine in the same run. The contenders alternate, the first one rotating from round to
# round, and medians are compared, so that noise from a shared machine hits all of them.
# Contenders that ran in every round are also compared round by round: the median of the
# rounds' ratios (vae.h over each other contender) follows a slow change of load better than
# the ratio of the medians does, since both runs of a round see about the same neighbours.
#
# Usage: sh bench/compare_torch.sh [threads] [rounds] [mlp|conv]
#   STEPS=n      timed steps per run (default 400 for mlp, 40 for conv), cut short after
#   SECS=t       seconds of timed steps (default 2 for mlp, 4 for conv; 0 = no limit), so the
#                comparison keeps to its time on a busy machine
#   NATIVE=0     leave out build/train_bench_native even when it is built
#   TORCH=file   the PyTorch script (default bench/torch_vae.py), run by PYTHON (default
#                /usr/bin/python3: Debian's, which has python3-torch)
# PyTorch runs twice per round. Debian's PyTorch hands its matrix products to the system
# BLAS (OpenBLAS), whose own thread pool ignores torch.set_num_threads: left alone it keeps
# every core busy even at "1 thread" (about 180% CPU here) and, at 2 threads, fights
# PyTorch's OpenMP threads. So "pytorch" runs with OPENBLAS_NUM_THREADS=1 (PyTorch's own
# threads only: truly one core at 1 thread) and "pytorch-default" as the reference script
# runs it, environment untouched. The 1-thread ratio uses "pytorch" (the default run is not
# one thread); at 2 threads the faster of the two counts.
# Needs build/train_bench (make build/train_bench; make bench builds everything).
# Besides the human-readable lines it prints, for bench/run.sh:
#   @ train <model> <threads> <who> <images/s> <peak_rss_mb> <train_rss_mb> <data_rss_mb>
# with who = vae.h, native, pytorch or pytorch-default, medians over the rounds, and "-" where
# not measured; and for each contender other than vae.h
#   @ pair <model> <threads> <who> <median over the rounds of vae.h's images/s over who's>
T=${1:-1}; R=${2:-5}; M=${3:-mlp}
if [ "$M" = conv ]; then STEPS=${STEPS:-40}; SECS=${SECS:-4}; else STEPS=${STEPS:-400}; SECS=${SECS:-2}; fi
TORCH=${TORCH:-bench/torch_vae.py}; PYTHON=${PYTHON:-/usr/bin/python3}
[ -x build/train_bench ] || { echo "run: make build/train_bench"; exit 1; }

who="vae.h"
if [ "${NATIVE:-1}" != 0 ] && [ -x build/train_bench_native ]; then who="$who native"; fi
if "$PYTHON" -c 'import torch' 2> /dev/null; then who="$who pytorch pytorch-default"
else echo "(pytorch skipped: $PYTHON cannot import torch; apt-get install python3-torch)"; fi
n=$(echo $who | wc -w)

label() { case $1 in vae.h) echo "vae.h";; native) echo "vae.h -march=native";; pytorch) echo "pytorch (1 BLAS thread)";;
          *) echo "pytorch (default BLAS threads)";; esac; }

# One run of contender $1; sets img, peak, train, data ("-" where missing).
run_one() {
  case $1 in
    vae.h)  out=$(build/train_bench --model "$M" --threads "$T" --steps "$STEPS" --seconds "$SECS" 2>&1) ;;
    native) out=$(build/train_bench_native --model "$M" --threads "$T" --steps "$STEPS" --seconds "$SECS" 2>&1) ;;
    pytorch) out=$(OPENBLAS_NUM_THREADS=1 "$PYTHON" "$TORCH" "$M" --threads "$T" --steps "$STEPS" --seconds "$SECS" 2>&1) ;;
    *)      out=$("$PYTHON" "$TORCH" "$M" --threads "$T" --steps "$STEPS" --seconds "$SECS" 2>&1) ;;
  esac
  st=$?
  img=$(echo "$out" | awk '/train_images_per_s/ { print $5 }')
  peak=$(echo "$out" | awk '/^peak_rss_mb/ { print $2 }')
  train=$(echo "$out" | awk '/^train_rss_mb/ { print $2 }')
  data=$(echo "$out" | awk '/^train_rss_mb/ { print $4 }')
  if [ $st -ne 0 ] || [ -z "$img" ]; then
    echo "  $(label "$1") failed (exit $st):"; echo "$out" | tail -n 3 | sed 's/^/    /'
  fi
  img=${img:--}; peak=${peak:--}; train=${train:--}; data=${data:--}
}

# median of the numeric arguments, "-" when there are none
med() { echo "$@" | tr ' ' '\n' | grep '^[0-9.]*$' | grep . | sort -g |
        awk '{ v[NR] = $1 } END { if (!NR) print "-"; else print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# per contender, the space-separated values of each round, in variables like img_vae_h
key() { echo "$1" | tr -c 'a-z\n' '_'; }
r=1
while [ "$r" -le "$R" ]; do
  line="round $r:"
  i=0
  while [ $i -lt "$n" ]; do
    w=$(echo $who | awk -v k=$(( (i + r - 1) % n + 1 )) '{ print $k }')
    run_one "$w"
    k=$(key "$w")
    eval "img_$k=\"\$img_$k $img\"; peak_$k=\"\$peak_$k $peak\"; train_$k=\"\$train_$k $train\"; data_$k=\"\$data_$k $data\""
    line="$line $(label "$w") $img,"
    i=$((i + 1))
  done
  echo "$line" | sed 's/,$/ images\/s/'
  # this round's ratios of vae.h to the contenders it ran beside (paired: same round, same load)
  v=$(echo $img_vae_h | awk '{ print $NF }')
  for w in $who; do
    [ "$w" = vae.h ] && continue
    k=$(key "$w")
    eval "o=\$(echo \$img_$k | awk '{ print \$NF }')"
    eval "pair_$k=\"\$pair_$k $(echo "$v $o" | awk '$1 + 0 > 0 && $2 + 0 > 0 { printf "%.4f", $1 / $2; exit } { print "-" }')\""
  done
  r=$((r + 1))
done

summary="$M threads $T: median"
for w in $who; do
  k=$(key "$w")
  eval "mi=\$(med \$img_$k); mp=\$(med \$peak_$k); mt=\$(med \$train_$k); md=\$(med \$data_$k)"
  echo "@ train $M $T $w $mi $mp $mt $md"
  eval "med_$k=$mi"
  summary="$summary $(label "$w") $mi,"
done
# the median over the rounds of the paired ratios
for w in $who; do
  [ "$w" = vae.h ] && continue
  k=$(key "$w")
  eval "pmed_$k=\$(med \$pair_$k)"
  eval "echo \"@ pair $M $T $w \$pmed_$k\""
done
ratio() { echo "$1 $2" | awk '$1 != "-" && $2 != "-" && $2 > 0 { printf "%.2fx", $1 / $2; exit } { printf "-" }'; }
best() { echo "$1 $2" | awk '{ a = $1 == "-" ? 0 : $1; b = $2 == "-" ? 0 : $2; v = a > b ? a : b; print (v > 0 ? v : "-") }'; }
case " $who " in *" pytorch "*)
  if [ "$T" = 1 ]; then summary="$summary vae.h/pytorch $(ratio "$med_vae_h" "$med_pytorch") (PyTorch on one thread; median of the rounds' ratios $(printf '%.2f' "$pmed_pytorch")x),"
  else summary="$summary vae.h/pytorch $(ratio "$med_vae_h" "$(best "$med_pytorch" "$med_pytorch_default")") (the faster PyTorch at $T threads; make bench's summary uses PyTorch's best on $T cores, which also counts its untouched 1-thread run),"; fi ;; esac
case " $who " in *" native "*) summary="$summary plain/native $(ratio "$med_vae_h" "$med_native") (median of the rounds' ratios $(printf '%.2f' "$pmed_native")x)," ;; esac
echo "$summary" | sed 's/,$//'
