#!/bin/bash
# milter_postfix: a private Postfix with mxlane-milter attached: bulk jobs land in the store with
# Postfix's queue id and leave Postfix's queue (discard) or wait in its hold queue (hold); ordinary
# mail flows untouched; job names are per sender; clients outside bulk_clients never reach the bulk
# lane; pflogsumm counts the sizes of what mxlane delivers.
. "$(dirname "$0")/../fixtures/lib.sh"
. "$(dirname "$0")/milter_mta.sh"
fx_init milter_postfix
fx_need swaks pflogsumm "$FX_PYTHON"
[ -x "$FX_MILTER" ] && [ -x "$FX_CTL" ] || fx_fatal "mxlane-milter or mxlanectl not built"

SINK=$(fx_port 4)
fx_pysink_start "$FX/sink" "127.0.0.1:$SINK"
fx_write_conf "$FX/mxlane.conf" "bulk_min_recipients = 50"
fx_milter_start "$FX/mxlane.conf"
FX_POSTFIX_MILTER=$(fx_postfix_milter_spec "$FX_MILTER_SOCKET")
FX_POSTFIX_RELAYHOST="[127.0.0.1]:$SINK"
# the submission-like case: Postfix inserts missing Message-Id, Date and From for these clients
fx_postfix_start "local_header_rewrite_clients = permit_mynetworks"
P=$FX_PF_PORT

# ---- discard: the bulk job is ours, Postfix keeps nothing
fx_check "bulk job accepted by Postfix" mta_send "$P" "$FX/bulk1" news@corp.test \
    ann@a.test,bob@b.test,cy@c.test --header "X-Mxlane-Job: autumn"
fx_check_eq "client got 250" 250 "$(mta_reply "$FX/bulk1")"
fx_check "second message of the job" mta_send "$P" "$FX/bulk2" news@corp.test dee@d.test \
    --header "X-Mxlane-Job: autumn"
fx_check "ordinary mail accepted" mta_send "$P" "$FX/plain" clerk@corp.test friend@e.test \
    --header "X-Note: keep me"
fx_check "ordinary mail reaches the sink" fx_wait_eq 1 fx_pysink_count "$FX/sink"
fx_check_eq "the sink got only the ordinary message" "friend@e.test" "$(fx_pysink_rcpts "$FX/sink")"
fx_check "ordinary mail untouched (its own header kept)" grep -q '^X-Note: keep me' "$FX/sink/127.0.0.1.mbox"
fx_check "Postfix's queue is empty" fx_postfix_wait_empty 10
fx_check "Postfix logged milter-discard" grep -q 'milter-discard' "$FX_PF_LOG"
fx_check "one job autumn" jobs_check "$FX/mxlane.conf" 'len(named("autumn")) == 1'
fx_check_eq "every recipient queued in mxlane" "ann@a.test bob@b.test cy@c.test dee@d.test" \
    "$(job_addresses "$FX/mxlane.conf" autumn queued)"
fx_check "the intake log has Postfix's queue id" \
    grep -Eq 'message=[0-9]+, queue_id=[0-9A-Za-z]+, from=<news@corp.test>, nrcpt=3, .*job="autumn", action=discard' "$FX/milter.out"
fx_check "no bulk mail reached the sink" bash -c "! grep -q 'ann@a.test' '$FX/sink/accepted.jsonl'"

# ---- Postfix's queue id, as Postfix logged it, is stored with each message
# job_queue_ids CONF NAME: the host_queue_id of every message of job NAME (mxlanectl job ID --json), sorted.
job_queue_ids() {
    "$FX_PYTHON" - "$FX_CTL" "$1" "$2" <<'PY'
import json, subprocess, sys
ctl, conf, name = sys.argv[1:4]
run = lambda *a: json.loads(subprocess.check_output([ctl, "-c", conf, *a, "--json"]))
print(" ".join(sorted(m["host_queue_id"] for j in run("jobs") if j["name"] == name
                      for m in run("job", j["id"])["messages"])))
PY
}
pf_ids=$(sed -n 's/.*postfix\/cleanup\[[0-9]*\]: \([0-9A-Za-z]*\): milter-discard: .*from=<news@corp.test>.*/\1/p' \
    "$FX_PF_LOG" | sort | tr '\n' ' ')
fx_check "Postfix logged two queue ids for job autumn" test "$(wc -w <<<"$pf_ids")" -eq 2
fx_check_eq "mxlane stored the queue ids Postfix logged" "${pf_ids% }" "$(job_queue_ids "$FX/mxlane.conf" autumn)"
named_ids() { local id; for id in $pf_ids; do grep -q "queue_id=$id, from=<news@corp.test>, .*job=\"autumn\"" "$FX/milter.out" || return 1; done; }
fx_check "the intake lines name them" named_ids

# ---- pool_header names the message's source pool; the field is not stored with the message
fx_check "a bulk message naming a pool" mta_send "$P" "$FX/pooled" news@corp.test pat@p.test \
    --header "X-Mxlane-Job: spring" --add-header "X-Mxlane-Pool: notices"
fx_check_eq "its message is stored with pool notices" "notices" "$("$FX_PYTHON" -c "
import json, subprocess
run = lambda *a: json.loads(subprocess.check_output(['$FX_CTL', '-c', '$FX/mxlane.conf', *a, '--json']))
j = [j for j in run('jobs') if j['name'] == 'spring'][0]
print(' '.join(m['pool'] for m in run('job', j['id'])['messages']))")"
fx_check "... and the queue holds no X-Mxlane-Pool field (removed at intake)" bash -c "! grep -rqa 'X-Mxlane-Pool' '$FX/queue'"

# ---- one job name, two senders: two jobs
fx_check "another sender uses the job name autumn" mta_send "$P" "$FX/boss" boss@corp.test eve@e.test \
    --header "X-Mxlane-Job: autumn"
fx_check "two jobs named autumn, one per sender" jobs_check "$FX/mxlane.conf" \
    'sorted(j["sender"] for j in named("autumn")) == ["boss@corp.test", "news@corp.test"]'
fx_check_eq "the second sender's job holds only its recipient" "eve@e.test" \
    "$("$FX_PYTHON" -c "
import json, subprocess
run = lambda *a: json.loads(subprocess.check_output(['$FX_CTL', '-c', '$FX/mxlane.conf', *a, '--json']))
j = [j for j in run('jobs') if j['name'] == 'autumn' and j['sender'] == 'boss@corp.test'][0]
print(' '.join(r['address'] for r in run('recipients', j['id'])))")"

# ---- pflogsumm counts the sizes of what mxlane delivers (the milter's from=<>, size= line)
SINK2=$(fx_port 5)
fx_pysink_start "$FX/sink2" "127.0.0.1:$SINK2"
fx_write_conf "$FX/deliver.conf" "delivery_mode = relay" "relay_host = [127.0.0.1]:$SINK2" "log_file = $FX/qrunner.log"
timeout 60 "$FX_QRUNNER" -c "$FX/deliver.conf" --once
fx_check "the qrunner delivered the five recipients" fx_wait_eq 5 bash -c "grep -c 'status=sent' '$FX/qrunner.log'"
cat "$FX/milter.out" "$FX/qrunner.log" > "$FX/combined.log"
pflogsumm --syslog-name=mxlane "$FX/combined.log" > "$FX/pflogsumm.out" 2>&1
# what pflogsumm should count: per job, the size of the milter's first message line times its deliveries
want=$("$FX_PYTHON" - "$FX/milter.out" "$FX/qrunner.log" <<'PY'
import re, sys
size = {}
for line in open(sys.argv[1]):
    m = re.search(r": (J[0-9A-F]+): message=\d+, .* size=(\d+), job=", line)
    if m: size.setdefault(m.group(1), int(m.group(2)))
print(sum(size[m.group(1)] for line in open(sys.argv[2])
          if (m := re.search(r": (J[0-9A-F]+): to=<.*status=sent", line))))
PY
)
fx_check "pflogsumm counts five deliveries" grep -Eq '^ +5 +delivered' "$FX/pflogsumm.out"
fx_check_eq "pflogsumm's bytes delivered are the captured messages' sizes" "$want" \
    "$(sed -n 's/^ *\([0-9]*\) *bytes delivered$/\1/p' "$FX/pflogsumm.out")"
fx_check "and not zero" test "${want:-0}" -gt 0

# ---- the milter dies mid-run: clients see 4xx, nothing accepted is lost
kill_midrun "$P" "$FX/mxlane.conf" "$FX_MILTER_PID" 15
fx_check "Postfix queued nothing while the milter was down" fx_postfix_wait_empty 5

# ---- killed between intake and expansion: the milter stores a message's recipients packed in one
# record; the qrunner expands them before it claims. Milter killed, no qrunner ran: every accepted
# recipient is counted queued, then one qrunner run relays each exactly once.
LAZY_SINK=$(fx_port 6)
fx_pysink_start "$FX/lazysink" "127.0.0.1:$LAZY_SINK"
fx_write_conf "$FX/lazy.conf" "queue_directory = $FX/ql" delivery_mode=relay "relay_host=[127.0.0.1]:$LAZY_SINK" \
    notify_sender=none
fx_milter_start "$FX/lazy.conf"
lazy=()
for i in 1 2 3 4; do
    mta_send "$P" "$FX/lazy.$i" news@corp.test "l$i-a@lazy.test,l$i-b@lazy.test,l$i-c@lazy.test" \
        --header "X-Mxlane-Job: lazy"
    [ "$(mta_reply "$FX/lazy.$i")" = 250 ] && lazy+=("l$i-a@lazy.test" "l$i-b@lazy.test" "l$i-c@lazy.test")
done
kill -KILL "$FX_MILTER_PID"
fx_wait_for bash -c "! kill -0 $FX_MILTER_PID 2>/dev/null"
fx_check_eq "packed: the four messages accepted" 12 "${#lazy[@]}"
fx_check "packed: mxlanectl jobs counts 12 queued before any expansion" \
    jobs_check "$FX/lazy.conf" '[(j["recipients"], j["counts"]["queued"]) for j in named("lazy")] == [(12, 12)]'
timeout 60 "$FX_QRUNNER" -c "$FX/lazy.conf" --once > "$FX/lazy.qrunner" 2>&1
fx_check_eq "packed: qrunner --once exits 0" 0 $?
fx_check_eq "packed: every recipient relayed" "$(printf '%s\n' "${lazy[@]}" | sort | tr '\n' ' ' | sed 's/ $//')" \
    "$(job_addresses "$FX/lazy.conf" lazy relayed)"
fx_check_eq "packed: the sink got each recipient once" "$(printf '%s\n' "${lazy[@]}" | sort)" \
    "$(fx_pysink_rcpts "$FX/lazysink")"

# ---- hold: the original waits in Postfix's hold queue
fx_write_conf "$FX/hold.conf" "intercept_action = hold"
fx_milter_start "$FX/hold.conf"
fx_check "held bulk job accepted" mta_send "$P" "$FX/held" news@corp.test gil@g.test \
    --header "X-Mxlane-Job: winter"
fx_check_eq "Postfix holds it" 1 "$(fx_postfix_hold_count)"
fx_check_eq "held job stored" "gil@g.test" "$(job_addresses "$FX/hold.conf" winter queued)"
fx_check "log says action=hold" grep -q 'job="winter", action=hold' "$FX/milter.out"
fx_check_eq "the sink still has only the ordinary message" 1 "$(fx_pysink_count "$FX/sink")"

# ---- clients outside bulk_clients never reach the bulk lane: their mail goes on through Postfix
fx_stop_pid "$FX_MILTER_PID"
fx_write_conf "$FX/clients.conf" "queue_directory = $FX/qc" "bulk_clients = 127.0.0.2/32" "message_size_limit = 4000"
fx_milter_start "$FX/clients.conf"
fx_check "a bulk-looking message from 127.0.0.1, outside bulk_clients" mta_send "$P" "$FX/outsider" \
    news@corp.test out@o.test --header "X-Mxlane-Job: outsider"
fx_check "  reaches the sink through Postfix" fx_wait_eq 2 fx_pysink_count "$FX/sink"
fx_check "  untouched (the bulk header kept)" grep -q '^X-Mxlane-Job: outsider' "$FX/sink/127.0.0.1.mbox"
fx_check "the same from 127.0.0.2, in bulk_clients" mta_send "$P" "$FX/insider" \
    news@corp.test in@i.test --header "X-Mxlane-Job: insider" --local-interface 127.0.0.2
fx_check "  is captured" jobs_check "$FX/clients.conf" '[j["name"] for j in jobs] == ["insider"]'
fx_check_eq "  and does not reach the sink" 2 "$(fx_pysink_count "$FX/sink")"

# ---- a bulk message over message_size_limit: 552, never a 4xx the client would retry for days
mta_send "$P" "$FX/toobig" news@corp.test big@b.test --header "X-Mxlane-Job: toobig" --local-interface 127.0.0.2 \
    --body "$(head -c 6000 /dev/zero | tr '\0' 'x' | fold -w 76)"
fx_check_eq "the client gets 552 through Postfix" 552 "$(mta_reply "$FX/toobig")"
fx_check "  with 5.3.4 and the reason" grep -q '552 5.3.4 mxlane: message too large for the bulk lane' "$FX/toobig"
fx_check "  and nothing is stored" jobs_check "$FX/clients.conf" 'not named("toobig")'
# just under the limit as sent (3,930 bytes, no Message-Id, Date or From): Postfix inserts those (about
# 125 bytes) and shows them to the milter, which does not count them
{
    printf 'Subject: fits\r\nX-Mxlane-Job: fits\r\n\r\n'
    for i in $(seq 50); do printf '%076d\r\n' 0; done
    printf 'yyyyyyyyyyy\r\n'
} > "$FX/fits.eml"
timeout 30 swaks --server 127.0.0.1 --port "$P" --local-interface 127.0.0.2 --from news@corp.test --to fit@f.test \
    --data "@$FX/fits.eml" > "$FX/fits" 2>&1
fx_check_eq "a message just under the limit as the client sent it is taken" 250 "$(mta_reply "$FX/fits")"
fx_check "  though what the milter saw was over it" bash -c \
    "grep -Eo 'size=[0-9]+, job=\"fits\"' '$FX/milter.out' | grep -Eq 'size=(40[0-9][0-9]|4[1-9][0-9][0-9])'"
fx_done
