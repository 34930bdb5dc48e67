#!/usr/bin/env bash
# Fuzzes the line assembler (engine/linebuf.c) with libFuzzer for a while.
#   scripts/fuzz.sh [seconds]      (needs clang: apt-get install clang)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v clang >/dev/null || { echo "fuzz: clang is missing; apt-get install clang" >&2; exit 2; }
mkdir -p build-fuzz/corpus
clang -g -O1 -fsanitize=fuzzer,address,undefined -Iengine \
  engine/tests/fuzz_linebuf.c engine/linebuf.c -o build-fuzz/fuzz_linebuf
build-fuzz/fuzz_linebuf -max_total_time="${1:-60}" -max_len=4096 build-fuzz/corpus
