#!/bin/bash
# fuzz.sh: builds the libFuzzer targets (fuzz/) and runs each for a bounded time from its seed corpus.
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET (default 20)] [TARGET...]
# Exit 0 when every target ran clean for its budget; 1 on a crash, a leak, a timeout or a build failure.
# A crashing input is kept as $MXLANE_FUZZ_OUT/<target>/crash-* (default: build/fuzz; the targets are in bin/).
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
budget=${1:-20}
shift $(( $# > 0 ? 1 : 0 ))
out=${MXLANE_FUZZ_OUT:-$top/build/fuzz}
jobs=${MXLANE_FUZZ_JOBS:-2}

command -v clang++ >/dev/null || { echo "fuzz: clang++ not installed (scripts/deps.sh installs clang)" >&2; exit 1; }
pkg-config --exists gmime-3.0 ||
    { echo "fuzz: GMime not installed (the mime_gmime target needs it): apt-get install libgmime-3.0-dev (scripts/deps.sh)" >&2; exit 1; }
mkdir -p "$out"
if ! make -s -j"$jobs" -f "$top/fuzz/Makefile" SRCDIR="$top" OUT="$out" > "$out/build.log" 2>&1; then
    echo "fuzz: build failed:"; tail -30 "$out/build.log"
    exit 1
fi
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=($(make -s -f "$top/fuzz/Makefile" SRCDIR="$top" OUT="$out" print-targets))

failed=0
for t in "${targets[@]}"; do
    work=$out/run/$t
    mkdir -p "$work/corpus"
    # New inputs go to a scratch corpus; the seeds in fuzz/corpus stay as committed.
    (cd "$work" && ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        "$out/bin/$t" -max_total_time="$budget" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
        -print_final_stats=1 "$work/corpus" "$top/fuzz/corpus/$t" > "$work/run.log" 2>&1)
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/run.log")
    if [ $rc -eq 0 ]; then
        echo "fuzz: $t clean (${execs:-?} runs in ${budget}s)"
    else
        failed=$((failed + 1))
        echo "fuzz: $t FAILED (exit $rc); input kept in $work:"
        ls "$work" | grep -E '^(crash|leak|timeout|oom|slow-unit)-' | sed 's/^/    /'
        grep -m1 -A12 -E 'ERROR: (AddressSanitizer|libFuzzer|LeakSanitizer)|runtime error' "$work/run.log" | sed 's/^/    | /'
    fi
done
echo "fuzz: ${#targets[@]} targets, $failed failed"
[ $failed -eq 0 ]
