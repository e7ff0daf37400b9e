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

# --- latents and images as safetensors: encode, decode, --data FILE.safetensors, --weights
mkst() {   # $1 file, $2 JSON header, $3 bytes of zero data: a hand-made safetensors file
  hdr=$2
  while [ $((${#hdr} % 8)) -ne 0 ]; do hdr="$hdr "; done
  n=${#hdr}
  printf "$(printf '\\%03o\\%03o' $((n % 256)) $((n / 256)))\\000\\000\\000\\000\\000\\000" > "$1"
  printf '%s' "$hdr" >> "$1"
  head -c "$3" /dev/zero >> "$1"
}
has() { grep -aq "$2" "$1"; }   # $1 file, $2 text in its header
"$VAE" encode "$T/m1.st" --data shapes -n 10 -o "$T/lat.safetensors" > /dev/null 2>&1
check "encode writes mu and logvar, 10 x latent" \
  'has "$T/lat.safetensors" "\"mu\":{\"dtype\":\"F32\",\"shape\":\[10,4\]" && has "$T/lat.safetensors" "\"logvar\":{\"dtype\":\"F32\",\"shape\":\[10,4\]"'
"$VAE" decode "$T/m1.st" -i "$T/lat.safetensors" -o "$T/dec.safetensors" > /dev/null 2>&1
check "decode writes images N x C x H x W" 'has "$T/dec.safetensors" "\"images\":{\"dtype\":\"F32\",\"shape\":\[10,1,28,28\]"'
"$VAE" decode "$T/m1.st" -i "$T/lat.safetensors" -o "$T/dec.png" > /dev/null 2>&1
check "decode writes a PNG" '[ "$(head -c 4 "$T/dec.png" | od -An -c | tr -d " ")" = "211PNG" ]'
"$VAE" eval "$T/m1.st" --data "$T/dec.safetensors" > "$T/evst.txt" 2>&1
check "--data FILE.safetensors (F32 images) evaluates" 'grep -q "^10 test images" "$T/evst.txt"'
"$VAE" encode --model mlp --hidden 64 --latent 4 --weights "$T/m1.st" --data shapes -n 10 -o "$T/lat2.safetensors" > /dev/null 2>&1
check "--model mlp --weights FILE encodes exactly as the checkpoint does" 'cmp -s "$T/lat.safetensors" "$T/lat2.safetensors"'
for c in eval sample recon interp info; do
  if "$VAE" $c --model mlp --hidden 64 --latent 4 --weights "$T/m1.st" --data shapes -o "$T/w.png" > /dev/null 2>&1
  then ok "$c takes --model mlp --weights FILE"; else bad "$c takes --model mlp --weights FILE"; fi
done
"$VAE" train --model mlp --hidden 64 --latent 4 --weights "$T/m1.st" --data shapes --batch 50 --epochs 0 --quiet --out "$T/fromw.st" > /dev/null 2>&1
"$VAE" encode "$T/fromw.st" --data shapes -n 10 -o "$T/lat3.safetensors" > /dev/null 2>&1
check "train --weights starts from the given weights" 'cmp -s "$T/lat.safetensors" "$T/lat3.safetensors"'
fails_with() {   # $1 description, $2 text the message must hold, then the command
  d=$1; want=$2; shift 2
  if "$@" > "$T/err.txt" 2>&1; then bad "$d (accepted)"; elif grep -q "vae: .*$want" "$T/err.txt"; then ok "$d"; else bad "$d: $(cat "$T/err.txt")"; fi
}
fails_with "--data FILE.safetensors without 'images' names it" "no tensor 'images'" "$VAE" eval "$T/m1.st" --data "$T/lat.safetensors"
fails_with "decode of a file without z or mu names them" "no tensor 'z' or 'mu'" "$VAE" decode "$T/m1.st" -i "$T/dec.safetensors" -o "$T/x.png"
mkst "$T/rank.safetensors" '{"images":{"dtype":"F32","shape":[2,4],"data_offsets":[0,32]}}' 32
fails_with "'images' of rank 2 is refused" "'images' has 2 dims" "$VAE" eval "$T/m1.st" --data "$T/rank.safetensors"
mkst "$T/i64.safetensors" '{"images":{"dtype":"I64","shape":[1,1,28,28],"data_offsets":[0,6272]}}' 6272
fails_with "'images' of dtype I64 is refused" "'images' is I64" "$VAE" eval "$T/m1.st" --data "$T/i64.safetensors"
mkst "$T/u8.safetensors" '{"images":{"dtype":"U8","shape":[3,1,28,28],"data_offsets":[0,2352]}}' 2352
"$VAE" eval "$T/m1.st" --data "$T/u8.safetensors" > "$T/evu8.txt" 2>&1
check "--data FILE.safetensors (U8 images) evaluates" 'grep -q "^3 test images" "$T/evu8.txt"'
"$VAE" train --model conv --data "$T/dec.safetensors" --batch 5 --epochs 1 --quiet --out "$T/convst.st" > "$T/convst.txt" 2>&1
check "train --model conv on 28x28 F32 safetensors images (padded to 32)" 'grep -q "^epoch   1" "$T/convst.txt"'
"$VAE" train --model conv --frozen-bn --data "$T/dec.safetensors" --batch 5 --epochs 1 --quiet --out "$T/convfz.st" > "$T/convfz.txt" 2>&1
check "train --frozen-bn trains and records frozen_stats 1 in the checkpoint" \
  'grep -q "^epoch   1" "$T/convfz.txt" && head -c 4096 "$T/convfz.st" | grep -aq "\"frozen_stats\":\"1\"" && head -c 4096 "$T/convst.st" | grep -aq "\"frozen_stats\":\"0\""'
fails_with "--resume refuses --frozen-bn (the checkpoint decides)" "drop the other model and optimizer flags" \
  "$VAE" train --data "$T/dec.safetensors" --resume "$T/convst.st" --frozen-bn --epochs 1 --out "$T/x.st"
mkst "$T/part.safetensors" '{"img_to_hidden.bias":{"dtype":"F32","shape":[64],"data_offsets":[0,256]}}' 256
fails_with "--weights missing a tensor names it" "tensor 'img_to_hidden.weight' is missing" \
  "$VAE" info --model mlp --hidden 64 --latent 4 --weights "$T/part.safetensors"
mkst "$T/extra.safetensors" '{"bogus.weight":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}' 4
fails_with "--weights with an extra tensor names it" "unexpected tensor 'bogus.weight'" \
  "$VAE" info --model mlp --weights "$T/extra.safetensors"
fails_with "--weights of the wrong shape names the tensor" "tensor 'img_to_hidden.weight' has shape \[64,784\]" \
  "$VAE" info --model mlp --hidden 32 --latent 4 --weights "$T/m1.st"
fails_with "--weights without --model is refused" "model" "$VAE" info --weights "$T/m1.st"
fails_with "FILE and --weights together are refused" "not both" "$VAE" info "$T/m1.st" --model mlp --weights "$T/m1.st"
fails_with "decode -o needs .png or .safetensors" "png or .safetensors" "$VAE" decode "$T/m1.st" -i "$T/lat.safetensors" -o "$T/x.txt"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
