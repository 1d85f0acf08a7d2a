#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs the external verifiers it needs (openssl,
# SoftHSM2, PostgreSQL, Prometheus, certbot, lego, pebble, a Python venv with pkilint and grpcio), then formatting, clippy and every test.
# External tools are always required: a missing one fails its test (only ECCA_ALLOW_SKIP=1,
# never set here, lets tests skip; see tests/common/tools.rs).
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v openssl >/dev/null; then
  echo "== installing openssl"
  as_root apt-get update -qq && as_root apt-get install -y -qq openssl
fi
if ! command -v sqlite3 >/dev/null; then
  echo "== installing sqlite3"
  as_root apt-get update -qq && as_root apt-get install -y -qq sqlite3
fi
if ! command -v softhsm2-util >/dev/null; then
  echo "== installing softhsm2 (PKCS#11 token for the HSM tests)"
  as_root apt-get update -qq && as_root apt-get install -y -qq softhsm2
fi
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "== installing postgresql (throwaway clusters for the store and scale-out tests)"
  as_root apt-get update -qq && as_root apt-get install -y -qq postgresql
fi
if ! command -v promtool >/dev/null; then
  echo "== installing prometheus (scrapes the metrics listener; promtool checks the exposition)"
  as_root apt-get update -qq && as_root apt-get install -y -qq --no-install-recommends prometheus
fi
if ! command -v chromedriver >/dev/null || ! command -v chromium >/dev/null; then
  echo "== installing chromium and chromium-driver (the console, opened headless by selenium)"
  as_root apt-get update -qq && as_root apt-get install -y -qq --no-install-recommends chromium chromium-driver
fi
if ! command -v certbot >/dev/null || ! command -v lego >/dev/null || ! command -v pebble >/dev/null; then
  echo "== installing certbot, lego and pebble (ACME clients, and the reference ACME server)"
  as_root apt-get update -qq && as_root apt-get install -y -qq --no-install-recommends certbot lego pebble
fi
if ! python3 -m venv --help >/dev/null 2>&1; then
  echo "== installing python3-venv"
  as_root apt-get update -qq && as_root apt-get install -y -qq python3-venv
fi

venv="${ECCA_VENV:-target/test-venv}"
stamp="$venv/.requirements"
if ! cmp -s tests/python/requirements.txt "$stamp" 2>/dev/null; then
  echo "== preparing $venv (pkilint, grpcio, gmssl, selenium)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/python/requirements.txt
  cp tests/python/requirements.txt "$stamp"
fi

export ECCA_PYTHON="$PWD/$venv/bin/python"
export ECCA_TOOLS_DIR="$PWD/$venv/bin"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== fuzz smoke (coverage-guided, stable toolchain): 10 s per target"
bash fuzz/run.sh "${ECCA_FUZZ_SECONDS:-10}"
echo "== cargo test"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
cargo test --workspace 2>&1 | tee "$log"
# One closing line for the whole suite (cargo prints one per test binary).
awk '/^test result:/ { p += $4; f += $6 } END { printf "summary: %d passed, %d failed\n", p, f }' "$log"
