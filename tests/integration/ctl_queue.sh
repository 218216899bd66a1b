#!/bin/bash
# ctl_queue: hold/release with the qrunner running, delete refused while in flight, flush, suppress, bad arguments.
. "$(dirname "$0")/../fixtures/lib.sh"
fx_init ctl_queue
for p in "$FX_CTL" "$FX_QRUNNER"; do [ -x "$p" ] || fx_fatal "$p not built (run make first)"; done
P=$(fx_port 5)
fx_dns_start 'mx-host=q.test,mx.q.test,10' 'host-record=mx.q.test,127.0.0.31'
fx_pysink_start "$FX/sink" "127.0.0.31:$P"
fx_write_conf "$FX/mxlane.conf" notify_sender=none smtp_port="$P" dns_timeout=1s retry_schedule=1h queue_run_delay=1s \
  smtp_tls_security_level=none
ctl() { "$FX_CTL" -c "$FX/mxlane.conf" "$@"; }
py() { "$FX_PYTHON" -c "$@"; }
field() { ctl job "$1" --json | py "import json,sys; j=json.load(sys.stdin); print($2)"; }
one_line_error() {  # one_line_error NAME PATTERN ctl-args...: exit 1 and one line naming PATTERN
  local name=$1 pattern=$2 err rc
  shift 2
  err=$(ctl "$@" 2>&1 >/dev/null); rc=$?
  fx_check_eq "$name: exit 1" 1 "$rc"
  fx_check "$name: says '$pattern'" grep -q -- "$pattern" <<<"$err"
  fx_check_eq "$name: one line" 1 "$(printf '%s\n' "$err" | wc -l)"
}
printf 'From: news@sender.test\nSubject: queue\n\nhello\n' > "$FX/msg.txt"
printf 'address\nann@q.test\nbob@q.test\ncy@q.test\n' > "$FX/three.csv"

# ---- hold, then the qrunner runs: nothing is sent until release
job=$(ctl submit --message "$FX/msg.txt" --recipients "$FX/three.csv")
fx_check_eq "hold reports the recipients held" "$job: 3 recipients held" "$(ctl hold "$job")"
fx_check_eq "held job and recipients" "held 3" "$(field "$job" 'j["state"], j["counts"]["held"]')"
fx_spawn qrunner "$FX_QRUNNER" -c "$FX/mxlane.conf" -f
qr=$FX_LAST_PID
sleep 3
fx_check "the qrunner runs" kill -0 "$qr"
fx_check_eq "nothing sent while held" 0 "$(fx_pysink_count "$FX/sink")"
fx_check_eq "still held" "held 3" "$(field "$job" 'j["state"], j["counts"]["held"]')"
fx_check_eq "release --json" "{\"job\":\"$job\",\"released\":3}" "$(ctl release "$job" --json | tr -d ' ')"
fx_check "released recipients are delivered by the running qrunner" \
  fx_wait_for -t 20 bash -c "[ \"\$('$FX_CTL' -c '$FX/mxlane.conf' job $job --json | $FX_PYTHON -c 'import json,sys; print(json.load(sys.stdin)[\"counts\"][\"delivered\"])')\" = 3 ]"
fx_check_eq "three recipients at the sink" 3 "$(fx_pysink_rcpts "$FX/sink" | wc -l)"

# ---- delete while in flight, at the store: recipients claimed as a qrunner claims them
CLAIM=$MXLANE_BUILDDIR/tests/tools/claim
fx_stop_pid "$qr"
printf 'address\nx1@q.test\nx2@q.test\n' > "$FX/two.csv"
claimed=$(ctl submit --message "$FX/msg.txt" --recipients "$FX/two.csv")
fx_check_eq "two recipients claimed" 2 "$("$CLAIM" "$FX/queue")"
fx_check_eq "job shows them in flight" 2 "$(field "$claimed" 'j["inflight"]')"
jobs_before=$(ctl jobs --json)
one_line_error "delete of claimed recipients" "$claimed has 2 recipients in flight" delete "$claimed"
fx_check_eq "refused delete changes nothing" "$jobs_before" "$(ctl jobs --json)"
fx_check_eq "delete --force" "$claimed: 2 recipients deleted" "$(ctl delete "$claimed" --force)"
one_line_error "the forced delete is done" "no such job: $claimed" job "$claimed"
fx_spawn qrunner "$FX_QRUNNER" -c "$FX/mxlane.conf" -f
qr=$FX_LAST_PID

# ---- delete while in flight, with the qrunner: a RCPT that takes 8 s keeps one recipient in flight
printf 'address\nslow8@q.test\n' > "$FX/slow.csv"
slow=$(ctl submit --message "$FX/msg.txt" --recipients "$FX/slow.csv")
fx_check "the recipient goes in flight" fx_wait_for -t 10 bash -c "[ \"\$('$FX_CTL' -c '$FX/mxlane.conf' job $slow --json | $FX_PYTHON -c 'import json,sys; print(json.load(sys.stdin)[\"inflight\"])')\" = 1 ]"
one_line_error "delete while in flight" "$slow has 1 recipients in flight" delete "$slow"
fx_check "the job is still there" ctl job "$slow"
fx_check "after delivery it is no longer in flight" fx_wait_for -t 20 bash -c "[ \"\$('$FX_CTL' -c '$FX/mxlane.conf' job $slow --json | $FX_PYTHON -c 'import json,sys; print(json.load(sys.stdin)[\"inflight\"])')\" = 0 ]"
fx_check_eq "delete then removes it" "$slow: 1 recipient deleted" "$(ctl delete "$slow")"
one_line_error "the deleted job is gone" "no such job: $slow" job "$slow"

printf 'address\nslow8@q.test\nok@q.test\n' > "$FX/slow2.csv"
forced=$(ctl submit --message "$FX/msg.txt" --recipients "$FX/slow2.csv")
fx_check "the slow recipient goes in flight" fx_wait_for -t 10 bash -c "[ \"\$('$FX_CTL' -c '$FX/mxlane.conf' job $forced --json | $FX_PYTHON -c 'import json,sys; print(json.load(sys.stdin)[\"inflight\"])')\" != 0 ]"
fx_check "delete --force removes a job in flight" ctl delete "$forced" --force
fx_check "and the job is gone" bash -c "! '$FX_CTL' -c '$FX/mxlane.conf' job $forced 2>/dev/null"
sleep 9  # the late result for the deleted job must not bring it back or stop the qrunner
fx_check "the qrunner survives a result for a deleted job" kill -0 "$qr"
fx_check "the deleted job stays deleted" bash -c "! '$FX_CTL' -c '$FX/mxlane.conf' job $forced 2>/dev/null"
fx_stop_pid "$qr"

# ---- flush: deferred recipients become due now (store level; the qrunner is stopped)
printf 'address\nsoft1@q.test\nsoft2@q.test\nfine@q.test\n' > "$FX/soft.csv"
soft=$(ctl submit --message "$FX/msg.txt" --recipients "$FX/soft.csv")
timeout -k 5 "${QRUNNER_ONCE_TIMEOUT:-60}" "$FX_QRUNNER" -c "$FX/mxlane.conf" --once
fx_check_eq "two deferred for an hour" 2 "$(field "$soft" 'j["counts"]["deferred"]')"
later=$(ctl recipients "$soft" --state deferred --json | py 'import json,sys; print(min(r["next_attempt"] for r in json.load(sys.stdin)))')
fx_check_eq "flush ID reports them" "$soft: 2 recipients flushed" "$(ctl flush "$soft")"
now=$(ctl recipients "$soft" --state deferred --json | py 'import json,sys; print(max(r["next_attempt"] for r in json.load(sys.stdin)))')
fx_check "flushed recipients are due now, not in an hour" test "$now" "<" "$later"
fx_check_eq "flush of all jobs --json" '{"flushed":0}' "$(ctl flush --json | tr -d ' ')"

# ---- suppress list / add / remove
fx_check_eq "empty suppression list" "Suppression list is empty" "$(ctl suppress list)"
fx_check_eq "suppress add" "bad@q.test: added" "$(ctl suppress add '<Bad@Q.test>')"
fx_check_eq "suppress add twice" "bad@q.test: already listed" "$(ctl suppress add bad@q.test)"
fx_check "suppress list --json" py 'import json,sys
d = json.loads(sys.argv[1]); assert [s["address"] for s in d] == ["bad@q.test"] and d[0]["added"], d
assert d[0]["reason"] == "manual" and d[0]["job"] is None, d' "$(ctl suppress list --json)"
printf 'address\nbad@q.test\nfine2@q.test\n' > "$FX/sup.csv"
sup=$(ctl submit --message "$FX/msg.txt" --recipients "$FX/sup.csv")
timeout -k 5 "${QRUNNER_ONCE_TIMEOUT:-60}" "$FX_QRUNNER" -c "$FX/mxlane.conf" --once
fx_check_eq "a suppressed address is never sent" "suppressed delivered" \
  "$(ctl recipients "$sup" --json | py 'import json,sys; print(" ".join(r["state"] for r in json.load(sys.stdin)))')"
fx_check_eq "suppress remove" "bad@q.test: removed" "$(ctl suppress remove bad@q.test)"
fx_check_eq "suppress remove again" "bad@q.test: not listed" "$(ctl suppress remove bad@q.test)"
one_line_error "suppress add of a non-address" "not an address" suppress add 'no address'
one_line_error "suppress without a verb" "suppress needs" suppress

# ---- bad arguments
for cmd in hold release delete export; do
  one_line_error "$cmd of an unknown job" "no such job: J0FFFFF" $cmd J0FFFFF
  one_line_error "$cmd without a job" "a job id is needed" $cmd
done
one_line_error "flush of an unknown job" "no such job" flush J0FFFFF
one_line_error "hold with an extra argument" "unexpected argument: extra" hold "$job" extra
fx_done
