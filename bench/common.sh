# common.sh - helpers shared by the benchmark scripts (sourced): sizes, clocks, sinks, result rows.
#
# Every benchmark prints its own figures, and also appends one line per figure to
# $MXLANE_BENCH_TABLE when that is set (make bench sets it and prints the table at the end):
#     what<TAB>mxlane<TAB>Postfix<TAB>ratio<TAB>note
#
# MXLANE_BENCH_SCALE (default 1) multiplies every size, e.g. 0.1 for a quick run.

. "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/fixtures/lib.sh"

BENCH_SCALE=${MXLANE_BENCH_SCALE:-1}

# bench_scaled N [MIN]: N times the scale, at least MIN (default 1).
bench_scaled() {
    awk -v n="$1" -v s="$BENCH_SCALE" -v min="${2:-1}" 'BEGIN { v = int(n * s + 0.5); print (v < min ? min : v) }'
}

bench_now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# bench_rate COUNT MS: COUNT per second, rounded.
bench_rate() { awk -v n="$1" -v ms="$2" 'BEGIN { printf "%.0f", (ms > 0 ? n * 1000 / ms : 0) }'; }

# bench_ratio A B: A / B with two decimals.
bench_ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "-" }'; }

# bench_row WHAT MXLANE POSTFIX RATIO NOTE: one result for the make bench table.
bench_row() {
    [ -n "${MXLANE_BENCH_TABLE:-}" ] || return 0
    printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" >> "$MXLANE_BENCH_TABLE"
}

# bench_sink NAME IP PORT: Postfix's smtp-sink as fast as it goes (no dump, pipelining on),
# as user nobody; its -c counters go to $FX/sinks/NAME.counters.
bench_sink() {
    local name=$1 ip=$2 port=$3
    fx_need "$FX_SMTP_SINK"
    mkdir -p "$FX/sinks"
    "$FX_SMTP_SINK" -c -u nobody -h "$name" -m 1000 "$ip:$port" 1024 \
        > "$FX/sinks/$name.counters" 2> "$FX/sinks/$name.stderr" &
    fx_register_pid $!
    fx_register_log "$FX/sinks/$name.stderr"
    fx_wait_port "$ip" "$port" || fx_fatal "smtp-sink $name does not listen on $ip:$port"
}

# bench_sink_messages NAME: messages the sink took so far (its last mesg= counter).
bench_sink_messages() {
    local n
    n=$(tr '\r' '\n' < "$FX/sinks/$1.counters" 2>/dev/null | sed -n 's/.*mesg=\([0-9]*\).*/\1/p' | tail -n 1)
    echo "${n:-0}"
}

# bench_table FILE: the rows gathered in FILE as one aligned table.
bench_table() {
    awk -F'\t' '
        { for (i = 1; i <= 5; i++) { c[NR, i] = $i; if (length($i) > w[i]) w[i] = length($i) } }
        END {
            h[1] = "benchmark"; h[2] = "mxlane"; h[3] = "Postfix"; h[4] = "mxlane/Postfix"; h[5] = "notes"
            for (i = 1; i <= 5; i++) if (length(h[i]) > w[i]) w[i] = length(h[i])
            fmt = "%-" w[1] "s  %" w[2] "s  %" w[3] "s  %" w[4] "s  %s\n"
            printf fmt, h[1], h[2], h[3], h[4], h[5]
            for (r = 1; r <= NR; r++) printf fmt, c[r, 1], c[r, 2], c[r, 3], c[r, 4], c[r, 5]
        }' "$1"
}

# bench_intake_row OUTPUT: the table row for intake.sh, from the figures it printed.
bench_intake_row() {
    awk '
        /^intake: / { what = $2 " msgs x " $5 " rcpts" }
        /Postfix alone/ { for (i = 1; i <= NF; i++) if ($(i + 1) == "msg/s") pf = $i }
        /Postfix \+ mxlane-milter/ { for (i = 1; i <= NF; i++) if ($(i + 1) == "msg/s") mx = $i }
        /^  ratio \(milter rate/ { ratio = $7 }
        END {
            if (mx == "" || pf == "") exit
            if (ratio == "") ratio = (pf > 0 ? mx / pf : 0)
            printf "intake %s (msg/s)\t%s\t%s\t%.2f\tmedians of the rounds; milter capture vs Postfix holding them\n", what, mx, pf, ratio
        }' "$1"
}

# make bench runs this file as a command: bash common.sh table FILE | intake-row OUTPUT
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    case ${1:-} in
        table) bench_table "$2" ;;
        intake-row) bench_intake_row "$2" ;;
        *) echo "usage: bash common.sh table FILE | intake-row OUTPUT" >&2; exit 1 ;;
    esac
fi
