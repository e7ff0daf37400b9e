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
