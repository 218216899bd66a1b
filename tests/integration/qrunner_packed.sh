#!/bin/bash
# qrunner_packed: messages stored with their recipients packed in one record (as the milter stores
# them) are expanded by the qrunner before it claims; a qrunner killed with SIGKILL while it expands
# a big backlog leaves every recipient to be delivered exactly once by the next run.
. "$(dirname "$0")/../fixtures/lib.sh"
fx_init qrunner_packed
MKJOB=$MXLANE_BUILDDIR/tests/tools/mkjob
fx_need_built "$FX_QRUNNER" "$FX_CTL" "$MKJOB"

SINK=$(fx_port 4)
fx_pysink_start "$FX/sink" "127.0.0.1:$SINK"
common=(delivery_mode=relay notify_sender=none "retry_schedule=1h" "queue_directory=$FX/queue")
# Nothing listens on the dead port: whatever a killed run claims is deferred, never delivered twice.
fx_write_conf "$FX/dead.conf" "${common[@]}" "relay_host=[127.0.0.1]:$FX_DEAD_PORT"
fx_write_conf "$FX/mxlane.conf" "${common[@]}" "relay_host=[127.0.0.1]:$SINK"
printf 'From: news@sender.test\nSubject: packed\n\nbody\n' > "$FX/msg.txt"

# 3,000 messages of 10 recipients: 3,000 packed records, 30,000 recipients to expand.
for i in $(seq 1 30000); do echo "r$i@packed.test"; done > "$FX/rcpts"
job=$("$MKJOB" "$FX/queue" "$FX/msg.txt" --name packed --per-message 10 < "$FX/rcpts")
fx_check "the job is stored" test -n "$job"
fx_check_eq "counted queued before any expansion" 30000 \
    "$("$FX_CTL" -c "$FX/mxlane.conf" jobs --json | "$FX_PYTHON" -c 'import json,sys; print(json.load(sys.stdin)[0]["counts"]["queued"])')"

# Killed at a few moments of its start: on this machine the expansion of the backlog took about
# 2 s (killed at 0.3 s: 2,500 messages still packed, 5,000 recipients expanded), so the kills
# land in it; wherever they land, each message is packed or wholly expanded.
for delay in 0.2 0.4 0.8; do
    fx_spawn dead "$FX_QRUNNER" -c "$FX/dead.conf" -f
    pid=$FX_LAST_PID
    sleep "$delay"
    kill -KILL "$pid" 2>/dev/null
    fx_wait_for bash -c "! kill -0 $pid 2>/dev/null"
done
fx_check_eq "after the kills: still 30000 recipients counted" 30000 \
    "$("$FX_CTL" -c "$FX/mxlane.conf" jobs --json | "$FX_PYTHON" -c 'import json,sys; print(json.load(sys.stdin)[0]["recipients"])')"
"$FX_CTL" -c "$FX/mxlane.conf" flush > /dev/null
timeout 300 "$FX_QRUNNER" -c "$FX/mxlane.conf" --once > "$FX/once.out" 2>&1
fx_check_eq "qrunner --once exits 0" 0 $?
fx_check_eq "every recipient relayed" 30000 \
    "$("$FX_CTL" -c "$FX/mxlane.conf" jobs --json | "$FX_PYTHON" -c 'import json,sys; print(json.load(sys.stdin)[0]["counts"]["relayed"])')"
fx_check_eq "recipients listed: 30000, each once" "30000 30000" \
    "$("$FX_CTL" -c "$FX/mxlane.conf" recipients "$job" --json | "$FX_PYTHON" -c 'import json,sys; r=json.load(sys.stdin); print(len(r), len({x["address"] for x in r}))')"
fx_check_eq "the sink got each recipient once" "30000 30000" \
    "$(fx_pysink_rcpts "$FX/sink" | awk '{n++; s[$0]=1} END {print n, length(s)}')"
fx_done
