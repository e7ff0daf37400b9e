#!/bin/sh
# VAE training throughput, vae.h against PyTorch 1.13 (Debian python3-torch) on the same
# machine in the same run. The contenders alternate and the medians are compared, so that
# noise from a shared machine hits both.
# Usage: sh bench/compare_torch.sh [threads] [rounds] [mlp|conv]   (STEPS=n to change the length)
T=${1:-1}; R=${2:-5}; M=${3:-mlp}
if [ "$M" = conv ]; then STEPS=${STEPS:-40}; else STEPS=${STEPS:-400}; fi
TORCH=${TORCH:-../shared/reference/torch_vae.py}
[ -x build/train_bench ] || { echo "run: make build/train_bench"; exit 1; }
/usr/bin/python3 -c 'import torch' 2> /dev/null || { echo "skipped: /usr/bin/python3 has no torch (apt-get install python3-torch)"; exit 0; }
ours=""; theirs=""
for r in $(seq "$R"); do
  a=$(build/train_bench --model "$M" --threads "$T" --steps "$STEPS" | awk '/train_images_per_s/ { print $5 }')
  b=$(/usr/bin/python3 "$TORCH" "$M" --threads "$T" --steps "$STEPS" | awk '/train_images_per_s/ { print $5 }')
  echo "round $r: vae.h $a img/s, pytorch $b img/s"
  ours="$ours $a"; theirs="$theirs $b"
done
med() { echo "$@" | tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
mo=$(med $ours); mt=$(med $theirs)
echo "$M threads $T: median vae.h $mo img/s, pytorch $mt img/s, ratio $(echo "$mo $mt" | awk '{ printf "%.2f", $1 / $2 }')x"
