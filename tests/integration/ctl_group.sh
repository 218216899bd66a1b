#!/bin/bash
# ctl_group: a member of mail_owner's group reads the queue with mxlanectl (jobs, job, recipients,
# export, config, destinations) like mailq; the commands that change it stay with root and mail_owner.
. "$(dirname "$0")/../fixtures/lib.sh"
fx_init ctl_group
fx_need_built "$FX_QRUNNER" "$FX_CTL"
fx_need useradd userdel runuser
id postfix >/dev/null 2>&1 || fx_skip "needs a postfix user as mail_owner"

CONF=$FX/mxlane.conf
fx_write_conf "$CONF" mail_owner=postfix delivery_mode=relay "relay_host=[127.0.0.1]:$FX_DEAD_PORT" \
    retry_schedule=1h
rmdir "$FX/queue"   # made by the qrunner as root: 0750, mail_owner's
chmod 644 "$CONF"
timeout 30 "$FX_QRUNNER" -c "$CONF" --once
fx_check_eq "the queue directory is 0750, postfix's" "750 postfix" "$(stat -c '%a %U' "$FX/queue")"
printf 'From: a@sender.test\nSubject: hi\n\nhello\n' > "$FX/msg.txt"
printf 'address\nann@a.test\nbob@b.test\n' > "$FX/rcpt.csv"
chmod 644 "$FX/msg.txt" "$FX/rcpt.csv"
job=$("$FX_CTL" -c "$CONF" submit --message "$FX/msg.txt" --recipients "$FX/rcpt.csv" --name grouped |
      grep -o 'J[0-9A-F]*' | head -n 1)
fx_check "a job submitted as root" test -n "$job"
fx_check "Berkeley DB's region files are group read-writable" \
    test -z "$(find "$FX/queue" -name '__db.*' ! -perm -0660)"

OP=mxlop$$ OTHER=mxlno$$
useradd -M -N -g "$(id -gn postfix)" -s /bin/sh "$OP"
useradd -M -N -g nogroup -s /bin/sh "$OTHER"
fx_on_exit "userdel $OP 2>/dev/null; userdel $OTHER 2>/dev/null"

"$FX_CTL" -c "$CONF" pause grouped.test >/dev/null
"$FX_CTL" -c "$CONF" pause ran-out.test --for 1s >/dev/null  # run out when the operator reads
as_op() { runuser -u "$OP" -- "$FX_CTL" -c "$CONF" "$@"; }
fx_check "an operator in postfix's group: jobs" bash -c "$(declare -f as_op); OP=$OP FX_CTL=$FX_CTL CONF=$CONF; as_op jobs | grep -q grouped"
for cmd in "job $job" "recipients $job" "export $job" "config -n" "jobs --json" "destinations --json"; do
    fx_check "an operator: mxlanectl $cmd" bash -c "runuser -u $OP -- '$FX_CTL' -c '$CONF' $cmd >/dev/null"
done
fx_check_eq "recipients lists both" 2 "$(as_op recipients "$job" --json | "$FX_PYTHON" -c 'import json,sys; print(len(json.load(sys.stdin)))')"
for cmd in "flush" "hold $job" "delete $job --force" "pause shop.test" "resume grouped.test"; do
    err=$(as_op $cmd 2>&1); rc=$?
    fx_check_eq "an operator: mxlanectl $cmd is refused" 1 "$rc"
    fx_check "saying who may" grep -q "changes the queue: only root and mail_owner (postfix) may" <<<"$err"
done
sleep 1
fx_check_eq "an operator sees the destinations root paused (not one that ran out)" '["grouped.test"]' \
    "$(as_op destinations --json | "$FX_PYTHON" -c 'import json,sys; print(json.dumps([r["name"] for r in json.load(sys.stdin)]))')"
fx_check "the job is still there, not held" bash -c "'$FX_CTL' -c '$CONF' jobs | grep grouped | grep -vq held"
runuser -u "$OTHER" -- "$FX_CTL" -c "$CONF" jobs >/dev/null 2>&1; rc=$?
fx_check "a user outside the group cannot read the queue" test "$rc" -ne 0
fx_check "root still may flush" "$FX_CTL" -c "$CONF" flush
fx_done
