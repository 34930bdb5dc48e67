#!/usr/bin/env bash
# Sets novapipe up on Debian 12: installs the Debian packages it needs (as
# root; otherwise prints the one apt-get line to run) and builds build/novapipe.
#   scripts/setup.sh            packages + release build in build/
#   scripts/setup.sh --asan     also a sanitizer build in build-asan/
#   scripts/setup.sh --test     also what only the test suite needs (chromium,
#                               which renders the HTML reports in the specs,
#                               strace; python3-jsonschema, which checks
#                               the SARIF files against their schema;
#                               CPython's test suite, whose output the PHI
#                               corpus's negatives are drawn from; and vim,
#                               whose save by rename fs.watch's spec makes)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake pkg-config
  liblua5.4-dev lua5.4 libssl-dev lua-filesystem-dev lua-cjson-dev lua-busted lua-expat lua-argparse
  python3 python3-pytest python3-pytest-cov python3-pytest-xdist python3-coverage
  postgresql redis-server util-linux git
  # the bundled example backend (examples/clinic)
  python3-fastapi python3-sqlalchemy python3-psycopg2 python3-pydantic python3-httpx python3-cryptography
)

asan=0
for arg in "$@"; do
  case $arg in
    --asan) asan=1 ;;
    --test) packages+=(chromium fonts-dejavu-core strace python3-yaml python3-jsonschema libpython3.11-testsuite vim) ;;
    *) echo "novapipe setup: unknown option $arg (--asan, --test)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]]; then
    echo "novapipe setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "novapipe setup: missing Debian packages; run as root:" >&2
    echo "  apt-get install -y ${missing[*]}" >&2
    exit 2
  fi
fi

build() {
  local dir=$1; shift
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
  cmake --build "$dir" -j "$(nproc)" >/dev/null
}

build build
if ((asan)); then
  build build-asan -DNOVAPIPE_SANITIZE=ON
fi
echo "novapipe setup: built build/novapipe"
