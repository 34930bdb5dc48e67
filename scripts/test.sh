#!/usr/bin/env bash
# Sets everything up and runs the whole test suite: the C unit tests, the
# busted specs inside the novapipe host, and the end-to-end specs against the
# built binary; then all of it again in a build with AddressSanitizer and
# UndefinedBehaviorSanitizer. Ends with a line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh --asan --test || exit 2

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

passed=0
failed=0
status=0
for dir in build build-asan; do
  echo "== ctest in $dir"
  ctest --test-dir "$dir" --output-on-failure -j 2 || status=1
  # Count single tests from ctest's full log: busted's TAP lines and the C
  # unit tests' own "N passed, N failed".
  log=$dir/Testing/Temporary/LastTest.log
  if [[ ! -s $log ]]; then
    echo "no test log in $dir: counting it as a failure"
    failed=$((failed + 1))
    status=1
    continue
  fi
  ok=$(grep -c '^ok ' "$log")
  bad=$(grep -c '^not ok ' "$log")
  read -r cp cf < <(sed -nE 's/^([0-9]+) passed, ([0-9]+) failed$/\1 \2/p' "$log" | awk '{p+=$1; f+=$2} END {print p+0, f+0}')
  passed=$((passed + ok + cp))
  failed=$((failed + bad + cf))
done
# A ctest entry that failed without a failing test line (a crash, a
# sanitizer report at exit) still fails the run.
if [[ $status -ne 0 && $failed -eq 0 ]]; then failed=1; fi
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
