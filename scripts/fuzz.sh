#!/usr/bin/env bash
# Fuzzes a parser of novapipe's with libFuzzer under AddressSanitizer and
# UndefinedBehaviorSanitizer (needs clang: apt-get install clang).
#   scripts/fuzz.sh pyscan [seconds]    the Python scanner and its record/replay (pyscan.c, pyfacts.c)
#   scripts/fuzz.sh linebuf [seconds]   the line assembler (engine/linebuf.c)
#   scripts/fuzz.sh phiscan [seconds]   the PHI scanner (engine/phiscan.c)
#   scripts/fuzz.sh luapat [seconds]    the MRN patterns' matcher (engine/luapat.c)
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:-pyscan}
seconds=${2:-60}
command -v clang >/dev/null || { echo "fuzz: clang is missing; apt-get install clang" >&2; exit 2; }
case $target in
  pyscan)
    sources="engine/tests/fuzz_pyscan.c engine/pyscan.c engine/pyfacts.c"
    # seeds: hand-written edge cases and the bundled example's Python
    seeds=(spec/fixtures/pyscan-corpus examples/clinic/backend/app/api
           examples/clinic/backend/app/tests/{standalone,venv,integration}) ;;
  linebuf) sources="engine/tests/fuzz_linebuf.c engine/linebuf.c"; seeds=() ;;
  phiscan)
    sources="engine/tests/fuzz_phiscan.c engine/phiscan.c engine/luapat.c"
    # seeds: the unit tests' lines, one a file
    mkdir -p build-fuzz/phiscan-seeds
    grep -o 'EXPECT("[^"]*' engine/tests/test_phiscan.c | sed 's/^EXPECT("//' | split -l 1 - build-fuzz/phiscan-seeds/t
    seeds=(build-fuzz/phiscan-seeds) ;;
  luapat)
    sources="engine/tests/fuzz_luapat.c engine/luapat.c"
    mkdir -p build-fuzz/luapat-seeds
    printf 'MRN[-: ]?%%d%%d%%d%%d%%d%%d%%d?%%d?\nid MRN-1234567 and MRN:12\n' > build-fuzz/luapat-seeds/mrn
    printf '^a-b*[^%%d]+.?$\naab\n' > build-fuzz/luapat-seeds/quantifiers
    seeds=(build-fuzz/luapat-seeds) ;;
  *) echo "fuzz: unknown target '$target' (pyscan, linebuf, phiscan or luapat)" >&2; exit 2 ;;
esac
mkdir -p "build-fuzz/$target-corpus"
# shellcheck disable=SC2086
clang -g -O1 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -Iengine \
  $sources -o "build-fuzz/fuzz_$target"
"build-fuzz/fuzz_$target" -max_total_time="$seconds" -max_len=65536 -timeout=10 \
  "build-fuzz/$target-corpus" "${seeds[@]}"
