#!/bin/bash
# test.sh: installs what is missing, builds, and runs the whole test suite (make check),
# then the unit tests again under AddressSanitizer and UBSan. Exit 0 only when all pass.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
# took STEP: how long the step that just ended took (CI has two cores and a time limit).
t0=$SECONDS
took() { echo "   ($1 took $((SECONDS - t0)) s)"; t0=$SECONDS; }
bash "$top/scripts/deps.sh" || exit 1
took "installing what was missing"
bash "$top/scripts/build.sh" || exit 1
took "the build"
build=${MXLANE_BUILD:-$top/build}

status=0
cd "$build"
make -j2 check >check.out 2>&1 || status=1
took "make check"
grep -E '^(PASS|FAIL|XFAIL|XPASS|ERROR|SKIP):' check.out
for log in $(find tests -name '*.log' ! -name test-suite.log); do
  if grep -qE '^(FAIL|ERROR)' "${log%.log}.trs" 2>/dev/null; then
    echo "---- $log"; tail -40 "$log"
  fi
done

if [ "${MXLANE_SKIP_SANITIZERS:-0}" != 1 ]; then
  echo "== unit tests under AddressSanitizer + UBSan"
  # Only what the unit tests link: the daemons' own sanitizer builds would double
  # this step's time on CI's two cores and add no test. Unoptimised, with line
  # tables only (-g1: enough for the reports' file:line): the instrumented -O1 -g
  # build took 25 of CI's 48 minutes, this one a third of that, and the tests
  # run a little longer.
  san_build=$top/build-sanitizers
  san_flags="-g1 -O0"
  # Objects built with other flags are not rebuilt by make: start again.
  [ "$(cat "$san_build/flags" 2>/dev/null)" = "$san_flags" ] || rm -rf "$san_build"
  mkdir -p "$san_build"
  if [ ! -f "$san_build/Makefile" ] || [ "$top/configure" -nt "$san_build/Makefile" ]; then
    (cd "$san_build" && "$top/configure" --enable-werror --enable-sanitizers CXXFLAGS="$san_flags" > configure.out 2>&1) ||
      { cat "$san_build/configure.out"; exit 1; }
    echo "$san_flags" > "$san_build/flags"
  fi
  { make -C "$san_build/libshared" -j2 libmxlane.a && make -C "$san_build/milter" -j2 libintake.a &&
      make -C "$san_build/qrunner" -j2 libqrunner.a && make -C "$san_build/tests" -j2 unit/unit_tests; } \
    > "$san_build/make.out" 2>&1 || { tail -40 "$san_build/make.out"; echo "FAIL: sanitizer build ($san_build/make.out)"; exit 1; }
  (cd "$san_build/tests" &&
     ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ./unit/unit_tests > ../sanitizers.out 2>&1)
  san=$?
  tail -1 "$san_build/sanitizers.out"
  [ $san -eq 0 ] || { echo "FAIL: unit tests under sanitizers"; grep -B2 -A20 -m3 'ERROR\|runtime error' "$san_build/sanitizers.out"; status=1; }
  took "the sanitizer build and its unit tests"
fi

if [ "${MXLANE_SKIP_FUZZ:-0}" != 1 ]; then
  echo "== fuzzers, ${MXLANE_FUZZ_SECONDS:-10} s each"
  if MXLANE_FUZZ_OUT=$build/fuzz bash "$top/scripts/fuzz.sh" "${MXLANE_FUZZ_SECONDS:-10}" > "$build/fuzz.out" 2>&1; then
    echo "PASS: fuzz" >> "$build/check.out"; tail -1 "$build/fuzz.out"
  else
    echo "FAIL: fuzz" >> "$build/check.out"; grep -v ' clean ' "$build/fuzz.out" | tail -40; status=1
  fi
  took "the fuzzers"
fi

# Parts of passing tests that could not run here (fx_skip_part): counted and named.
parts=$(cd "$build" && for log in $(find tests -name '*.log' ! -name test-suite.log | sort); do
          grep -q '^:test-result: PASS' "${log%.log}.trs" 2>/dev/null && sed -n "s|^SKIP: |SKIP: ${log%.log} part: |p" "$log"
        done)
[ -n "$parts" ] && printf '%s\n' "$parts"
pass=$(grep -cE '^(PASS|XFAIL):' "$build/check.out")
fail=$(grep -cE '^(FAIL|ERROR|XPASS):' "$build/check.out")
skip=$(( $(grep -cE '^SKIP:' "$build/check.out") + $(printf '%s' "$parts" | grep -c '^SKIP:') ))
[ "$status" -eq 0 ] || [ "$fail" -gt 0 ] || fail=1
echo "tests: $pass passed, $fail failed, $skip skipped"
exit $status
