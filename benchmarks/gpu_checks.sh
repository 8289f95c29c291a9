#!/usr/bin/env bash
# The GPU checks of the YOLO decode and NMS kernels in one go, for a machine with an NVIDIA GPU, the CUDA
# toolkit (nvcc, compute-sanitizer, ncu on PATH) and torch with CUDA. From the repository root:
#
#   benchmarks/gpu_checks.sh [OUT_DIR] [STEP ...]
#
# OUT_DIR defaults to benchmarks/results/gpu-<date>; STEPs (default: all, in this order):
#   build     pip install --no-build-isolation --no-deps -v .  -> build.log, cmake-status.txt, build_info.json
#   test      python -m pytest -m gpu -v tests/test_decode.py tests/test_nms*.py  -> pytest_gpu.log
#   sanitize  compute-sanitizer memcheck, racecheck, synccheck, initcheck over the GPU tests (without
#             the 20-run determinism test, for time)             -> sanitizer-<tool>.log, sanitizer-summary.txt
#   ncu       ncu --clock-control none --set full on one decode_kernel launch per configuration
#             (B=1/32/128, fp32/fp16, 1%/7%/100% candidates)   -> ncu-<config>.ncu-rep/.txt, ncu-summary.txt
#   bench     python benchmarks/decode.py (every implementation, B=1/8/32/128) and benchmarks/nms.py (B=1/32,
#             K=1000, D=300) -> decode.*, nms.* (json/md/png) here
#             and in benchmarks/results/
# Each step appends "step: exit status" to OUT_DIR/steps.txt and the script goes on after a failure,
# so one run leaves every result; it exits non-zero if any step failed. Rough times on an H200 with 16
# cores: build 2 min, test 1 min, sanitize 5-10 min, ncu 3 min, bench 6-8 min (steps can be run in
# separate calls, e.g. `benchmarks/gpu_checks.sh out build test` then `... out sanitize`).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-benchmarks/results/gpu-$(date +%F)}
shift || true
STEPS=${*:-build test sanitize ncu bench}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
PY=${PYTHON:-python}
failed=0

step() {  # step NAME COMMAND...: run, record the exit status
  local name=$1
  shift
  echo "== $name: $*" | tee -a "$OUT/steps.txt"
  "$@"
  local rc=$?
  echo "$name: exit $rc" | tee -a "$OUT/steps.txt"
  [ $rc -eq 0 ] || failed=1
}

build() {
  { nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,memory.total --format=csv; nvcc --version | tail -2;
    $PY -c "import torch; print('torch', torch.__version__, torch.version.cuda)"; } > "$OUT/environment.txt" 2>&1
  # needs scikit-build-core, pybind11, numpy, onnx installed (no network is assumed)
  $PY -m pip install --no-build-isolation --no-deps -v . > "$OUT/build.log" 2>&1 || return 1
  grep "trtdeploy:" "$OUT/build.log" > "$OUT/cmake-status.txt" || true
  grep -iE "warning" "$OUT/build.log" | grep -iE "yolo|decode" > "$OUT/build-warnings.txt" || true
  cat "$OUT/cmake-status.txt" "$OUT/build-warnings.txt"
  $PY -c "import json, trtdeploy._C as c; print(json.dumps(c.build_info(), indent=1))" > "$OUT/build_info.json"
}

gpu_test() {
  $PY -m pytest -m gpu -v -rs tests/test_decode.py tests/test_nms.py tests/test_nms_plugin_host.py \
    > "$OUT/pytest_gpu.log" 2>&1
  local rc=$?
  tail -3 "$OUT/pytest_gpu.log"
  return $rc
}

sanitize() {
  local rc=0 tool
  : > "$OUT/sanitizer-summary.txt"
  for tool in memcheck racecheck synccheck initcheck; do
    compute-sanitizer --tool "$tool" --print-limit 50 $PY -m pytest -m gpu -q -p no:cacheprovider \
      -k "not deterministic" tests/test_decode.py tests/test_nms.py > "$OUT/sanitizer-$tool.log" 2>&1 || rc=1
    { echo "-- $tool"; grep -E "ERROR SUMMARY|RACECHECK SUMMARY|passed|failed" "$OUT/sanitizer-$tool.log"; } \
      >> "$OUT/sanitizer-summary.txt"
  done
  cat "$OUT/sanitizer-summary.txt"
  return $rc
}

profile() {
  local rc=0 b dt f name
  : > "$OUT/ncu-summary.txt"
  for b in 1 32 128; do
    for dt in float32 float16; do
      for f in 0.01 0.07 1.0; do
        name="B${b}-${dt}-${f}"
        # decode.py runs the kernel once to check its count, 5 warm-ups, then --iters timed calls:
        # profile the 4th launch (kernel replay restores the workspace between passes)
        ncu --clock-control none --set full --kernel-name regex:decode_kernel --launch-skip 3 --launch-count 1 \
          -f -o "$OUT/ncu-$name" $PY benchmarks/decode.py --impls "CUDA kernel" --batches "$b" --dtypes "$dt" \
          --candidates "$f" --iters 2 --name "ncu-$name" --out "$OUT/ncu-tmp" > "$OUT/ncu-$name.log" 2>&1 || rc=1
        ncu -i "$OUT/ncu-$name.ncu-rep" --page details > "$OUT/ncu-$name.txt" 2>&1 || rc=1
        { echo "-- $name"; grep -E "^ +(Duration|Memory Throughput|DRAM Throughput|Compute \(SM\) Throughput|Achieved Occupancy|Registers Per Thread|Grid Size) " \
          "$OUT/ncu-$name.txt"; } >> "$OUT/ncu-summary.txt"
      done
    done
  done
  rm -rf "$OUT/ncu-tmp"
  cat "$OUT/ncu-summary.txt"
  return $rc
}

bench() {
  $PY benchmarks/decode.py --out "$OUT" && cp "$OUT"/decode.json "$OUT"/decode.md "$OUT"/decode.png benchmarks/results/ \
    && $PY benchmarks/nms.py --out "$OUT" && cp "$OUT"/nms.json "$OUT"/nms.md "$OUT"/nms.png benchmarks/results/
}

for s in $STEPS; do
  case $s in
    build) step build build ;;
    test) step test gpu_test ;;
    sanitize) step sanitize sanitize ;;
    ncu) step ncu profile ;;
    bench) step bench bench ;;
    *) echo "unknown step $s (build test sanitize ncu bench)"; failed=1 ;;
  esac
done
echo "results in $OUT"
exit $failed
