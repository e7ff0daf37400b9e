#!/bin/sh
# Command-line tests for the `vae` program: output formats, bit-exact resume, thread
# independence, and bad files and arguments (a one-line error and a nonzero exit, never a
# crash, and nothing overwritten). Usage: sh tests/cli_test.sh build/vae
VAE=${1:-build/vae}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0; fail=0
ok()   { pass=$((pass + 1)); echo "ok   cli: $1"; }
bad()  { fail=$((fail + 1)); echo "FAIL cli: $1"; }
check() { if eval "$2"; then ok "$1"; else bad "$1"; fi; }

SMALL="--data shapes --hidden 64 --latent 4 --batch 50 --seed 3 --quiet"

# --- formats
"$VAE" info --model mlp > "$T/info.txt" 2>&1
check "info --model mlp ends with params 652824" '[ "$(tail -n 1 "$T/info.txt")" = "params 652824" ]'

"$VAE" train $SMALL --epochs 1 --out "$T/m1.st" > "$T/train.txt" 2>&1
check "train writes a checkpoint" '[ -s "$T/m1.st" ]'
"$VAE" eval "$T/m1.st" --data shapes > "$T/eval.txt" 2>&1
check "eval's last line is 'nelbo <x> recon <y> kl <z>'" \
  'tail -n 1 "$T/eval.txt" | grep -Eq "^nelbo [0-9.]+ recon [0-9.]+ kl [0-9.]+$"'
"$VAE" info "$T/m1.st" > "$T/info2.txt" 2>&1
check "info FILE ends with params" 'tail -n 1 "$T/info2.txt" | grep -Eq "^params [0-9]+$"'
for c in sample recon interp; do
  "$VAE" $c "$T/m1.st" --data shapes -o "$T/$c.png" > /dev/null 2>&1
  check "$c writes a PNG" '[ "$(head -c 4 "$T/$c.png" | od -An -c | tr -d " ")" = "211PNG" ]'
done

# --- resume: 2 epochs straight == 1 epoch + resume for 1 more, byte for byte
"$VAE" train $SMALL --epochs 2 --out "$T/straight.st" > /dev/null 2>&1
"$VAE" train --data shapes --quiet --resume "$T/m1.st" --epochs 1 --out "$T/resumed.st" > /dev/null 2>&1
check "resume is bit-exact (whole checkpoint identical)" 'cmp -s "$T/straight.st" "$T/resumed.st"'

# --- threads: 1 vs 2 give the same checkpoint
"$VAE" train $SMALL --epochs 1 --threads 2 --out "$T/t2.st" > /dev/null 2>&1
check "--threads 1 and 2 give identical checkpoints" 'cmp -s "$T/m1.st" "$T/t2.st"'

# --- data sources: a folder of PGM files, CIFAR-10 batches, padding for the conv preset
# pgm SIZE DIR FIRST COUNT: COUNT SIZExSIZE gray images, ASCII (P2) and binary (P5) in turn
pgm() {
  mkdir -p "$2"
  for i in $(seq "$3" $(($3 + $4 - 1))); do
    if [ $((i % 2)) = 0 ]; then
      awk -v s="$i" -v n="$1" 'BEGIN { print "P2\n# synthetic\n" n " " n "\n255"
        for (y = 0; y < n; y++) { for (x = 0; x < n; x++) printf "%d ", (x * s + y * 7) % 256; print "" } }' > "$2/img$i.pgm"
    else
      { printf 'P5\n%d %d\n255\n' "$1" "$1"
        LC_ALL=C awk -v s="$i" -v n="$1" 'BEGIN { for (y = 0; y < n; y++) for (x = 0; x < n; x++) printf "%c", 1 + (x * s + y * 5) % 250 }'
      } > "$2/img$i.pgm"
    fi
  done
}
# cifar FILE FIRST COUNT: records with labels i % 10 and 3072 pixels each
cifar() {
  for i in $(seq "$2" $(($2 + $3 - 1))); do
    printf "\\$(printf %03o $((i % 10)))"
    LC_ALL=C awk -v s="$i" 'BEGIN { for (j = 0; j < 3072; j++) printf "%c", 1 + (j * s + int(j / 1024) * 40) % 250 }'
  done >> "$1"
}
pgm 16 "$T/pgm" 10 20
"$VAE" train --data "$T/pgm" --batch 6 --hidden 32 --latent 4 --epochs 1 --quiet --out "$T/pgm.st" > "$T/out.txt" 2>&1
check "train on a folder of PGM files" 'grep -q "^epoch   1 .* test recon" "$T/out.txt" && [ -s "$T/pgm.st" ]'
"$VAE" eval "$T/pgm.st" --data "$T/pgm" > "$T/out.txt" 2>&1
check "eval on the folder's test split (every 10th file)" 'grep -q "^2 test images" "$T/out.txt"'
mkdir -p "$T/cifar/cifar-10-batches-bin"
cifar "$T/cifar/cifar-10-batches-bin/data_batch_1.bin" 0 20
cifar "$T/cifar/cifar-10-batches-bin/test_batch.bin" 100 10
"$VAE" train --data "$T/cifar" --batch 10 --hidden 32 --latent 4 --epochs 1 --quiet --out "$T/cifar.st" > "$T/out.txt" 2>&1
check "train on CIFAR-10 batches (3x32x32)" 'grep -q "^epoch   1 " "$T/out.txt" && "$VAE" info "$T/cifar.st" | grep -Eq "^ +0 +input +3x32x32 "'
pgm 28 "$T/pgm28" 0 12
"$VAE" train --data "$T/pgm28" --model conv --batch 11 --epochs 1 --quiet --out "$T/conv.st" > "$T/out.txt" 2>&1
check "conv preset on 28x28 images pads to 1x32x32 (4029185 parameters)" \
  'grep -q "^epoch   1 " "$T/out.txt" && [ "$("$VAE" info "$T/conv.st" | tail -n 1)" = "params 4029185" ]'
"$VAE" recon "$T/conv.st" --data "$T/pgm28" -n 2 -o "$T/conv.png" > /dev/null 2>&1
check "recon pads the data to the checkpoint's size" '[ -s "$T/conv.png" ]'
pgm 16 "$T/mixed" 0 3
pgm 15 "$T/mixed15" 3 1
mv "$T/mixed15/img3.pgm" "$T/mixed/"
"$VAE" train --data "$T/mixed" --batch 1 --epochs 1 --out "$T/x.st" > "$T/out.txt" 2>&1; rc=$?
check "a folder of mixed sizes is refused, naming the file" '[ $rc -eq 1 ] && grep -q "^vae: .*img3.pgm" "$T/out.txt"'
head -c 5000 "$T/cifar/cifar-10-batches-bin/test_batch.bin" > "$T/cifar-bad.bin"
mkdir -p "$T/cifar-bad" && mv "$T/cifar-bad.bin" "$T/cifar-bad/test_batch.bin"
"$VAE" eval "$T/cifar.st" --data "$T/cifar-bad" > "$T/out.txt" 2>&1; rc=$?
check "a truncated CIFAR batch is refused, naming the file" '[ $rc -eq 1 ] && grep -q "^vae: .*test_batch.bin" "$T/out.txt"'
mkdir -p "$T/png"
for s in 1 2 3; do "$VAE" sample "$T/pgm.st" -n 1 --seed $s -o "$T/png/s$s.png" > /dev/null 2>&1; done
"$VAE" train --data "$T/png" --batch 3 --hidden 8 --latent 2 --epochs 1 --quiet --out "$T/png.st" > "$T/out.txt" 2>&1; rc=$?
if "$VAE" help | grep -q "build with stb_image.h"; then
  check "PNG without stb_image.h: a message saying how to enable it" '[ $rc -eq 1 ] && grep -q "^vae: .*stb_image.h" "$T/out.txt"'
else
  check "train on a folder of PNG files (stb_image.h)" '[ $rc -eq 0 ] && grep -q "^epoch   1 " "$T/out.txt"'
fi

# --- bad arguments
check "unknown option is refused" '! "$VAE" train --data shapes --bogus 1 --out "$T/x.st" > /dev/null 2>&1'
check "bad number is refused" '! "$VAE" train --data shapes --lr abc --out "$T/x.st" > /dev/null 2>&1'
check "missing data dir gives an error" '! "$VAE" eval "$T/m1.st" --data "$T/nonexistent" > /dev/null 2>&1'
check "unknown command is refused" '! "$VAE" frobnicate > /dev/null 2>&1'
check "a refused train left no output" '[ ! -e "$T/x.st" ]'

# --- bad files: every command fails cleanly on truncated or corrupted checkpoints
size=$(wc -c < "$T/m1.st")
echo keep > "$T/keep.png"
crashes=0; accepted=0; silent=0; clobbered=0
try_all() {   # $1: a broken checkpoint
  for c in eval sample recon interp info resume; do
    if [ $c = resume ]; then
      "$VAE" train --data shapes --quiet --resume "$1" --epochs 1 --out "$T/keep.png" > "$T/out.txt" 2>&1
    else
      "$VAE" $c "$1" --data shapes -o "$T/keep.png" > "$T/out.txt" 2>&1
    fi
    rc=$?
    if [ $rc -ge 128 ]; then crashes=$((crashes + 1)); echo "  crash ($rc): $c on $2"; fi
    if [ $rc -eq 0 ]; then accepted=$((accepted + 1)); echo "  accepted: $c on $2"; fi
    if [ $rc -ne 0 ] && ! grep -q "vae: " "$T/out.txt"; then silent=$((silent + 1)); fi
    if [ "$(cat "$T/keep.png")" != keep ]; then clobbered=$((clobbered + 1)); echo keep > "$T/keep.png"; fi
  done
}
for n in 0 1 7 8 9 16 100 $((size / 2)) $((size - 100)) $((size - 4)) $((size - 1)); do
  head -c $n "$T/m1.st" > "$T/trunc.st"
  try_all "$T/trunc.st" "truncated to $n"
done
# corrupt single bytes at spread-out offsets (header length, JSON, tensor data)
for off in 0 3 7 8 20 40 80 160 300 600 1000 2000; do
  [ $off -ge $size ] && continue
  cp "$T/m1.st" "$T/flip.st"
  printf '\377' | dd of="$T/flip.st" bs=1 seek=$off conv=notrunc 2> /dev/null
  try_all "$T/flip.st" "byte $off set to 0xff"
done
check "broken checkpoints never crash a command" '[ $crashes -eq 0 ]'
check "broken checkpoints are refused with exit != 0" '[ $accepted -eq 0 ]'
check "every refusal prints a 'vae: ' message" '[ $silent -eq 0 ]'
check "a failing command overwrote nothing" '[ $clobbered -eq 0 ]'

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
