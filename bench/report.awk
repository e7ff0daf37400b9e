# bench/report.awk - the training table and the summary against issue 5, from the "@" lines
# that build/peak, build/gemm_bench and bench/compare_torch.sh print (see bench/run.sh):
#   @ peak <isa> <threads> <GFLOP/s>
#   @ gemm <group> <MxNxK> <threads> <kernel|openblas> <median GFLOP/s> <best GFLOP/s>
#   @ train <model> <threads> <vae.h|native|pytorch|pytorch-default> <images/s> <peak RSS> <training RSS> <data RSS>
#   @ pair <model> <threads> <native|pytorch|pytorch-default> <median of the rounds' ratios vae.h / that>
# PyTorch runs with one BLAS thread ("pytorch") and with OpenBLAS's default pool, which also
# takes the second core ("pytorch-default"; see bench/compare_torch.sh). A 1-thread figure is
# compared with "pytorch" at 1 thread; a 2-thread one with PyTorch's best on 2 cores: the
# fastest of the default run at 1 thread and both runs at 2 threads.
# Where the two ran side by side in every round (plain vs native; vae.h vs PyTorch at 1
# thread) the verdict takes the median of the rounds' ratios, and the ratio of the medians is
# shown beside it; PyTorch's best on 2 cores mixes runs of different rounds, so there the
# medians are compared.
function r(a, b) { return (a != "" && a != "-" && b != "" && b != "-" && b > 0) ? a / b : "" }
function fx(v, fmt) { return v == "" ? "-" : sprintf(fmt, v) }
function num(v) { return (v == "" || v == "-") ? "-" : v >= 100 ? sprintf("%.0f", v) : sprintf("%.1f", v) }
function val(v) { return (v == "-") ? "" : v }
function faster(a, b) { a = val(a); b = val(b); return (a == "" || (b != "" && b + 0 > a + 0)) ? b : a }
# PyTorch's yardstick for vae.h at t threads ("" when not measured)
function pt(m, t) {
  if (t == 1) return val(img[m, 1, "pytorch"])
  return faster(faster(img[m, 1, "pytorch-default"], img[m, 2, "pytorch"]), img[m, 2, "pytorch-default"])
}
# vae.h's training figure for model m at t threads against PyTorch's yardstick, target x
# The ratio a verdict takes: the rounds' paired median p when measured, else the medians' ratio q;
# beside(p, q) is the text that shows q next to it.
function judged(p, q) { return val(p) != "" ? p : q }
function beside(p, q) { return (val(p) != "" && q != "") ? sprintf(" (ratio of the medians %.2f)", q) : "" }
function trainrow(m, t, fig, tgt, x,   q, p, j) {
  q = r(img[m, t, "vae.h"], pt(m, t)); p = t == 1 ? pair[m, t, "pytorch"] : ""; j = judged(p, q)
  row(fig, tgt, j == "" ? "-" : sprintf("%s vs %s img/s: %.2fx%s", num(img[m, t, "vae.h"]), num(pt(m, t)), j, beside(p, q)),
      j == "" ? "" : j >= x)
}
function row(fig, tgt, meas, ok) {
  printf "| %s | %s | %s | %s |\n", fig, tgt, meas, ok == "" ? "not measured" : ok ? "✓" : "✗"
}
$1 == "@" && $2 == "peak"  { peak[$3, $4] = $5 }
$1 == "@" && $2 == "gemm"  { g[$3, $4, $5, $6] = $7; gb[$3, $4, $5, $6] = $8 }
$1 == "@" && $2 == "pair"  { pair[$3, $4, $5] = $6 }
$1 == "@" && $2 == "train" { img[$3, $4, $5] = $6; prss[$3, $4, $5] = $7; trss[$3, $4, $5] = $8; drss[$3, $4, $5] = $9 }
END {
  printf "\n== training summary (median images/s; peak RSS of the whole process; \"training adds\" = peak RSS\n"
  printf "   while training minus RSS with the data set loaded, both programs holding it as float32)\n"
  printf "%-5s %3s %12s %22s %20s %14s %18s %18s\n", "model", "thr", "vae.h img/s", "-march=native (ratio)",
         "pytorch 1blas/deflt", "vae.h/pytorch", "peak RSS MB v/pt", "training adds MB v/pt"
  split("mlp 1,mlp 2,conv 1,conv 2", cfgs, ",")
  for (c = 1; c <= 4; c++) {
    split(cfgs[c], mt, " "); m = mt[1]; t = mt[2]
    if (!((m, t, "vae.h") in img)) continue
    v = img[m, t, "vae.h"]; nv = img[m, t, "native"]; p = pt(m, t)
    ad_v = r(trss[m, t, "vae.h"] - drss[m, t, "vae.h"], 1); ad_p = r(trss[m, t, "pytorch"] - drss[m, t, "pytorch"], 1)
    if (trss[m, t, "vae.h"] == "-" || trss[m, t, "vae.h"] == "") ad_v = ""
    if (trss[m, t, "pytorch"] == "-" || trss[m, t, "pytorch"] == "") ad_p = ""
    printf "%-5s %3d %12s %22s %20s %14s %18s %18s\n", m, t, num(v),
           (nv == "" || nv == "-") ? "-" : num(nv) " (" fx(r(v, nv), "%.2f") ")",
           num(img[m, t, "pytorch"]) " / " num(img[m, t, "pytorch-default"]), fx(r(v, p), "%.2fx"), num(prss[m, t, "vae.h"]) " / " num(prss[m, t, "pytorch"]),
           fx(ad_v, "%.0f") " / " fx(ad_p, "%.0f")
  }

  printf "\n== summary against issue 5 (ratios from this run: medians of the rounds' ratios where contenders ran side by side, else of the figures)\n"
  printf "| figure | target | measured | |\n|---|---|---|---|\n"
  # 1. AVX2 GEMM, 1 thread, squares 256-1024 vs OpenBLAS
  meas = ""; worst = ""
  for (s = 256; s <= 1024; s *= 2) {
    d = s "x" s "x" s; q = r(g["square", d, 1, "avx2"], g["square", d, 1, "openblas"])
    if (q == "") continue
    meas = meas (meas == "" ? "" : ", ") s "³ " sprintf("%.2fx", q)
    if (worst == "" || q < worst) worst = q
  }
  row("AVX2 GEMM, 1 thread, 256–1024 squares", "≥ 0.90x OpenBLAS", meas == "" ? "-" : meas, worst == "" ? "" : worst >= 0.90)
  # 2. AVX2 GEMM, 1 thread, MLP shapes vs OpenBLAS
  meas = ""; worst = ""
  split("128x400x784 128x784x400 400x784x128 128x20x400", ms, " ")
  for (i = 1; i <= 4; i++) {
    q = r(g["mlp", ms[i], 1, "avx2"], g["mlp", ms[i], 1, "openblas"])
    if (q == "") continue
    meas = meas (meas == "" ? "" : ", ") ms[i] " " sprintf("%.2fx", q)
    if (worst == "" || q < worst) worst = q
  }
  row("AVX2 GEMM, 1 thread, MLP shapes", "≥ 0.85x OpenBLAS", meas == "" ? "-" : meas, worst == "" ? "" : worst >= 0.85)
  # 3. GEMM at 1024^3 vs the FMA peak, 1 thread
  d = "1024x1024x1024"; a1 = g["square", d, 1, "avx2"]; q = r(a1, peak["avx2", 1])
  row("GEMM at 1024³, 1 thread", "≥ 80% of the FMA peak",
      q == "" ? "-" : sprintf("%.1f of %.1f GFLOP/s: %.0f%%", a1, peak["avx2", 1], 100 * q), q == "" ? "" : q >= 0.80)
  # 4. 2 threads vs 1 at 1024^3
  a2 = g["square", d, 2, "avx2"]; q = r(a2, a1); qb = r(gb["square", d, 2, "avx2"], gb["square", d, 1, "avx2"])
  row("2 threads vs 1 at 1024³ (AVX2)", "≥ 1.8x", q == "" ? "-" : sprintf("%.1f vs %.1f GFLOP/s: %.2fx (best reps: %.2fx)", a2, a1, q, qb),
      q == "" ? "" : q >= 1.8)
  # 5-8. training against PyTorch
  trainrow("mlp", 1, "MLP training, 1 thread", "≥ 1.6x PyTorch 1 thread", 1.6)
  trainrow("mlp", 2, "MLP training, 2 threads", "≥ 2.5x PyTorch best on 2 cores", 2.5)
  trainrow("conv", 1, "seed-002 conv training, 1 thread", "≥ 2x PyTorch", 2)
  trainrow("conv", 2, "seed-002 conv training, 2 threads", "≥ 2.5x PyTorch best on 2 cores", 2.5)
  # 9. plain cc -O2 vs -march=native, every training configuration
  meas = ""; worst = ""
  for (c = 1; c <= 4; c++) {
    split(cfgs[c], mt, " "); qm = r(img[mt[1], mt[2], "vae.h"], img[mt[1], mt[2], "native"])
    p = pair[mt[1], mt[2], "native"]; q = judged(p, qm)
    if (q == "") continue
    meas = meas (meas == "" ? "" : ", ") mt[1] " " mt[2] "t " sprintf("%.2f", q) beside(p, qm)
    if (worst == "" || q < worst) worst = q
  }
  row("plain `cc -O2` vs `-march=native` (training, plain/native)", "within 5% (≥ 0.95)", meas == "" ? "-" : meas,
      worst == "" ? "" : worst >= 0.95)
}
