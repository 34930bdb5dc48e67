#!/usr/bin/env bash
# Sets everything up and runs the whole test suite: the C unit tests, the
# busted specs inside the novapipe host, and the end-to-end specs against the
# built binary; then all of it again in a build with AddressSanitizer and
# UndefinedBehaviorSanitizer. Ends with a line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh --asan || exit 2

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

passed=0
failed=0
for dir in build build-asan; do
  echo "== ctest in $dir"
  log=$(mktemp)
  ctest --test-dir "$dir" --output-on-failure -j 2 2>&1 | tee "$log"
  # ctest's summary: "100% tests passed, 0 tests failed out of 5"
  summary=$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -1)
  rm -f "$log"
  if [[ -z $summary ]]; then
    echo "no ctest summary from $dir: counting it as a failure"
    failed=$((failed + 1))
    continue
  fi
  f=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$summary")
  t=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\2/' <<<"$summary")
  passed=$((passed + t - f))
  failed=$((failed + f))
done
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
