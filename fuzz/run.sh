#!/usr/bin/env bash
# Coverage-guided fuzzing of the wire-format rename with libFuzzer + AddressSanitizer + UBSan.
#   apt-get install clang   # once
#   fuzz/run.sh [SECONDS]   # default 600
# Seeds: every model under tests/fixtures and onnx's backend test data. New crash inputs land in
# fuzz/out/; copy them to tests/fuzz_corpus/ so tests/test_fuzz_regressions.py keeps them fixed.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-600}"
mkdir -p fuzz/out/corpus fuzz/out/crashes
clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -Icsrc \
  fuzz/rename_fuzzer.cpp csrc/onnx_wire.cpp -o fuzz/out/rename_fuzzer
seeds=fuzz/out/seeds
mkdir -p "$seeds"
cp tests/fixtures/*.onnx "$seeds"/ 2>/dev/null || true
cp tests/fuzz_corpus/* "$seeds"/ 2>/dev/null || true
python3 - "$seeds" <<'PY'
import glob, os, shutil, sys
try:
    import onnx
except ImportError:
    sys.exit(0)
root = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data")
for i, p in enumerate(sorted(glob.glob(os.path.join(root, "*", "*", "model.onnx")))[:400]):
    shutil.copy(p, os.path.join(sys.argv[1], f"backend_{i}.onnx"))
PY
fuzz/out/rename_fuzzer fuzz/out/corpus "$seeds" -max_total_time="$secs" -max_len=262144 -timeout=10 \
  -rss_limit_mb=2048 -artifact_prefix=fuzz/out/crashes/ -print_final_stats=1 2>&1 | tail -25
