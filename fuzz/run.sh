#!/usr/bin/env bash
# Coverage-guided fuzzing on the stable toolchain: libFuzzer (libfuzzer-sys) with the
# SanitizerCoverage instrumentation that stable rustc exposes through -C flags.
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]     (default: 10 s, every target)
# Corpora live in fuzz/corpus/<target> (kept out of git); crashes land in fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-10}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(csr ocsp_request timestamp_query cms path_pool grpc_messages)
fi
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares -Cdebug-assertions -Coverflow-checks --cfg fuzzing"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR_FUZZ:-../target/fuzz}"
# An explicit --target keeps the instrumentation off build scripts and proc macros.
triple="$(rustc -vV | sed -n 's/^host: //p')"
cargo build --release --bins --quiet --target "$triple"
bin="$CARGO_TARGET_DIR/$triple/release"
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  echo "== fuzz $t for ${secs}s"
  "$bin/$t" "corpus/$t" -max_total_time="$secs" -artifact_prefix="artifacts/$t/" \
    -print_final_stats=1 -rss_limit_mb=2048 2>&1 | grep -E "stat::number_of_executed_units|stat::new_units_added|ERROR|panicked|SUMMARY" || true
  if ls "artifacts/$t"/crash-* >/dev/null 2>&1; then
    echo "fuzz target $t found a crash: see fuzz/artifacts/$t"
    exit 1
  fi
done
