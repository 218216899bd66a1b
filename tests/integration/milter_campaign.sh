#!/bin/bash
# milter_campaign: one-recipient messages of one campaign, through a private Postfix and a private
# Sendmail, make one job each (by List-Id, by envelope sender + Subject, by bulk_header); a gap
# longer than job_idle_close starts a second job ("NAME #2"); the qrunner sends one summary per job.
. "$(dirname "$0")/../fixtures/lib.sh"
. "$(dirname "$0")/milter_mta.sh"
fx_init milter_campaign
fx_need swaks "$FX_PYTHON"
fx_need_built "$FX_MILTER" "$FX_QRUNNER" "$FX_CTL"

IDLE=3  # job_idle_close, seconds; each message of a campaign follows the one before at once
GAP=$((IDLE + 2))

# send PORT OUT FROM TO SUBJECT [HEADER]: one one-recipient message; prints the reply code.
send() {
    local port=$1 out=$2 from=$3 to=$4 subject=$5 header=${6:-}
    timeout 30 swaks --server 127.0.0.1 --port "$port" --helo client.test --from "$from" --to "$to" \
        --header "Subject: $subject" ${header:+--add-header "$header"} --body "Dear $to, our news." \
        > "$out" 2>&1
    mta_reply "$out"
}

# round MTA PORT N TAG: message N of each of the three campaigns.
round() {
    local mta=$1 port=$2 i=$3 codes=""
    codes+=$(send "$port" "$FX/$mta.list$i" news@corp.test "l$i@a.test" "News for you $i" \
        "List-Id: Shop news <news.shop.test>")
    codes+=$(send "$port" "$FX/$mta.subj$i" offers@corp.test "s$i@b.test" "Autumn offers")
    codes+=$(send "$port" "$FX/$mta.hdr$i" promo@corp.test "h$i@c.test" "Hi $i" "X-Mxlane-Job: spring")
    echo "$codes"
}

# messages CONF NAME: how many messages the job NAME holds ("" when there is no such job).
messages() {
    "$FX_PYTHON" - "$FX_CTL" "$1" "$2" <<'PY'
import json, subprocess, sys
ctl, conf, name = sys.argv[1:4]
run = lambda *a: json.loads(subprocess.check_output([ctl, "-c", conf, *a, "--json"]))
print(" ".join(str(len(run("job", j["id"])["messages"])) for j in run("jobs") if j["name"] == name))
PY
}

# summaries SINK: the job ids the reports the sink got name in their Subject:, each once, sorted;
# "twice" when one job had two.
summaries() {
    "$FX_PYTHON" - "$1" <<'PY'
import mailbox, re, sys, os
ids = []
box = os.path.join(sys.argv[1], "127.0.0.1.mbox")
for m in (mailbox.mbox(box) if os.path.exists(box) else []):
    if m.get("Auto-Submitted") == "auto-replied":
        ids += re.findall(r"J[0-9A-F]{6,}", m["Subject"] or "")
print("twice" if len(set(ids)) != len(ids) else len(ids))
PY
}

# campaign MTA PORT CONF SINK: the checks, against one MTA with its own milter, store and relay sink.
campaign() {
    local mta=$1 port=$2 conf=$3 sink=$4 i
    for i in 1 2 3; do
        fx_check_eq "$mta: campaign messages $i accepted" 250250250 "$(round "$mta" "$port" "$i")"
    done
    fx_check_eq "$mta: one job by List-Id, 3 messages" 3 "$(messages "$conf" "Shop news <news.shop.test>")"
    fx_check_eq "$mta: one job by sender + Subject, 3 messages" 3 "$(messages "$conf" "Autumn offers")"
    fx_check_eq "$mta: one job by bulk_header, 3 messages" 3 "$(messages "$conf" spring)"
    fx_check "$mta: three jobs in all" jobs_check "$conf" 'len(jobs) == 3'
    fx_check "$mta: the intake lines name the jobs" \
        grep -q 'from=<offers@corp.test>, nrcpt=1, .*job="Autumn offers", action=discard' "$FX/milter.out"
    sleep "$GAP"  # longer than job_idle_close without a message: the next one starts a new job
    fx_check_eq "$mta: after the gap, accepted" 250250250 "$(round "$mta" "$port" 4)"
    fx_check_eq "$mta: a second List-Id job" 1 "$(messages "$conf" "Shop news <news.shop.test> #2")"
    fx_check_eq "$mta: a second sender + Subject job" 1 "$(messages "$conf" "Autumn offers #2")"
    fx_check_eq "$mta: a second bulk_header job" 1 "$(messages "$conf" "spring #2")"
    fx_check_eq "$mta: the first ones kept their messages" 3 "$(messages "$conf" spring)"
    sleep "$GAP"  # every job closed
    timeout 60 "$FX_QRUNNER" -c "$conf" --once
    fx_check_eq "$mta: qrunner --once exits 0" 0 $?
    fx_check "$mta: every job done" jobs_check "$conf" 'len(jobs) >= 6 and all(j["state"] == "done" for j in jobs if not j["name"].startswith("mxlane-notify:"))'
    fx_check_eq "$mta: the sink got the 12 messages and 6 summaries" 18 "$(fx_pysink_count "$sink")"
    fx_check_eq "$mta: one summary per job" 6 "$(summaries "$sink")"
    timeout 60 "$FX_QRUNNER" -c "$conf" --once
    fx_check_eq "$mta: no summary twice" 18 "$(fx_pysink_count "$sink")"
}

# mta_conf NAME SINKPORT: a milter config of its own for one MTA.
mta_conf() {
    mkdir -p "$FX/$1-queue"
    fx_write_conf "$FX/$1.conf" "queue_directory = $FX/$1-queue" "log_file = $FX/$1-milter.log" \
        "milter_socket = unix:$FX/$1.sock" "bulk_senders = corp.test" "job_idle_close = ${IDLE}s" \
        "notify_sender = summary" "delivery_mode = relay" "relay_host = [127.0.0.1]:$2" \
        "myhostname = mta.mxlane.test"
}

# ---- Postfix
PF_SINK=$(fx_port 4)
fx_pysink_start "$FX/pf-sink" "127.0.0.1:$PF_SINK"
mta_conf postfix "$PF_SINK"
fx_milter_start "$FX/postfix.conf"
fx_register_log "$FX/postfix-milter.log"
FX_POSTFIX_MILTER=$(fx_postfix_milter_spec "$FX_MILTER_SOCKET")
FX_POSTFIX_RELAYHOST="[127.0.0.1]:$PF_SINK"
fx_postfix_start
campaign postfix "$FX_PF_PORT" "$FX/postfix.conf" "$FX/pf-sink"

# ---- Sendmail
SM_SINK=$(fx_port 5)
fx_pysink_start "$FX/sm-sink" "127.0.0.1:$SM_SINK"
mta_conf sendmail "$SM_SINK"
fx_milter_start "$FX/sendmail.conf"
fx_register_log "$FX/sendmail-milter.log"
FX_SENDMAIL_RELAY="[127.0.0.1]:$SM_SINK"
fx_sendmail_start "$FX_MILTER_SOCKET"
campaign sendmail "$FX_SM_PORT" "$FX/sendmail.conf" "$FX/sm-sink"
fx_done
