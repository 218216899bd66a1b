#!/bin/bash
# qrunner_verp: bounce_address (VERP): one transaction per recipient, MAIL FROM bounces+TOKEN@DOMAIN naming it,
# direct and through the relay; notifications keep their null sender; List-Unsubscribe and List-Unsubscribe-Post
# per recipient with the same token, DKIM-signed; bad loop parameters stop the qrunner.
. "$(dirname "$0")/../fixtures/lib.sh"
fx_init qrunner_verp
fx_need_built "$FX_QRUNNER" "$FX_CTL"
MKJOB=$MXLANE_BUILDDIR/tests/tools/mkjob
TOKEN=$MXLANE_BUILDDIR/tests/tools/rcpttoken
fx_need_built "$MKJOB" "$TOKEN"
P=$(fx_port 5)

fx_dns_start 'mx-host=ok.test,mx.ok.test,10' 'host-record=mx.ok.test,127.0.0.111'
fx_pysink_start "$FX/mx" "127.0.0.111:$P"
fx_pysink_start "$FX/relay" "127.0.0.112:$P"

conf() {
    fx_write_conf "$FX/mxlane.conf" "smtp_port=$P" "dns_timeout=1s" "retry_schedule=1h" \
        "relay_host=[127.0.0.112]:$P" "max_recipients_per_transaction=10" "bounce_address=bounces@sender.test" "$@"
}
printf 'From: news@sender.test\nSubject: verp test\n\nbody\n' > "$FX/msg.txt"
# named FILE: for each "bounces+TOKEN@sender.test RCPT" line, "RCPT -> JOB ADDRESS" of the recipient the
# token names (rcpttoken: checked with the queue's loop key, looked up in the store), sorted.
named() {
    local from rcpt t
    while read -r from rcpt; do
        t=${from#bounces+}; t=${t%@sender.test}
        echo "$rcpt -> $("$TOKEN" "$FX/queue" "$t")"
    done < "$1" | sort
}
# "FROM RCPT" per transaction the sink DIR accepted, in order.
transactions() { "$FX_PYTHON" -c "
import json
for l in open('$1/accepted.jsonl'):
    r=json.loads(l); print(r['from'], ' '.join(r['rcpt']))"; }

# ---- 1. direct: 3 recipients for one MX in 3 transactions, each with its own token; a summary goes to the sender
conf "notify_sender=summary"
job=$(printf '%s\n' a@ok.test b@ok.test c@ok.test hard1@ok.test | "$MKJOB" "$FX/queue" "$FX/msg.txt" --from news@sender.test)
fx_check "job created" test -n "$job"
timeout 60 "$FX_QRUNNER" -c "$FX/mxlane.conf" --once
fx_check_eq "qrunner --once exits 0" 0 $?
transactions "$FX/mx" > "$FX/direct.txt"
fx_log "$(cat "$FX/direct.txt")"
fx_check_eq "3 transactions of one recipient each" "3 3" \
    "$(wc -l < "$FX/direct.txt") $(awk 'NF == 2' "$FX/direct.txt" | wc -l)"
# TOKEN: the job id (1 byte), the seq (message id << 24 | index: 4 bytes) and 10 bytes of MAC, in base32.
fx_check_eq "every MAIL FROM is bounces+TOKEN@sender.test, TOKEN lower-case base32 of 24 characters" 3 \
    "$(grep -cE '^bounces\+[a-z2-7]{24}@sender\.test ' "$FX/direct.txt")"
fx_check_eq "the 3 tokens differ" 3 "$(cut -d' ' -f1 "$FX/direct.txt" | sort -u | wc -l)"
# Each token verifies with the queue's loop key and names the job and the recipient of its own transaction.
fx_check_eq "each token names its transaction's recipient" \
    "a@ok.test -> $job a@ok.test
b@ok.test -> $job b@ok.test
c@ok.test -> $job c@ok.test" "$(named "$FX/direct.txt")"
# Upper-cased (as some MTAs do with local parts) it still names the recipient; altered, it names nobody.
t=$(head -1 "$FX/direct.txt" | sed 's/^bounces+//; s/@.*//')
r=$(head -1 "$FX/direct.txt" | cut -d' ' -f2)
fx_check_eq "an upper-cased token names the same recipient" "$job $r" "$("$TOKEN" "$FX/queue" "${t^^}")"
fx_check_eq "an altered token is forged" forged "$("$TOKEN" "$FX/queue" "${t:0:19}$([ "${t:19}" = a ] && echo b || echo a)")"
# The refused recipient was tried with its own sender too (the MX sink logs every MAIL).
fx_check "the log shows recipients as before" grep -qE "$job: to=<a@ok.test>, relay=mx.ok.test\[127.0.0.111\]:$P, .*status=sent" "$FX/mxlane.log"
fx_check "hard1 bounced" grep -qE "$job: to=<hard1@ok.test>, .*status=bounced" "$FX/mxlane.log"
fx_check "the summary goes through the relay with a null sender, to the job's sender" fx_wait_eq -t 30 1 fx_pysink_count "$FX/relay"
fx_check_eq "... MAIL FROM:<> (notifications are not VERP'd)" " news@sender.test" "$(transactions "$FX/relay" | sed 's/^<>//')"

# ---- 2. delivery_mode = relay: the relay gets the same senders, with the loop header
: > "$FX/relay/accepted.jsonl"; : > "$FX/relay/127.0.0.112.mbox"
conf "delivery_mode=relay" "notify_sender=none"
job2=$(printf '%s\n' d@ok.test e@ok.test | "$MKJOB" "$FX/queue" "$FX/msg.txt" --from news@sender.test)
timeout 60 "$FX_QRUNNER" -c "$FX/mxlane.conf" --once
fx_check_eq "relay run exits 0" 0 $?
transactions "$FX/relay" > "$FX/relayed.txt"
fx_log "$(cat "$FX/relayed.txt")"
fx_check_eq "relay: one transaction per recipient, each sender's token names it" \
    "d@ok.test -> $job2 d@ok.test
e@ok.test -> $job2 e@ok.test" "$(named "$FX/relayed.txt")"
fx_check_eq "relay: the loop header on both" 2 "$(grep -c '^X-Mxlane-Relayed: ' "$FX/relay/127.0.0.112.mbox")"

# ---- 3. without bounce_address the stored sender goes out, recipients batched as before
: > "$FX/mx/accepted.jsonl"
conf "bounce_address="
job3=$(printf '%s\n' f@ok.test g@ok.test | "$MKJOB" "$FX/queue" "$FX/msg.txt" --from news@sender.test)
timeout 60 "$FX_QRUNNER" -c "$FX/mxlane.conf" --once
fx_check_eq "VERP off: one transaction from news@sender.test" "news@sender.test f@ok.test g@ok.test" "$(transactions "$FX/mx")"

# ---- 4. List-Unsubscribe (mailto and one-click URL) per recipient, with the VERP token, DKIM-signed
if "$FX_PYTHON" -c 'import dkim' 2>/dev/null; then
    mkdir -p "$FX/keys"
    conf
    "$FX_CTL" -c "$FX/mxlane.conf" dkim keygen shop.test s1 --out "$FX/keys/s1.pem" > "$FX/records" 2> "$FX/keygen.err"
    printf 'shop.test s1 %s\n' "$FX/keys/s1.pem" > "$FX/keytable"
    conf "unsubscribe_address=unsubscribe@shop.test" "unsubscribe_url=https://news.shop.test/u/" \
        "dkim_key_table=$FX/keytable" "smtp_tls_security_level=none"
    # The sender's own List-Unsubscribe (folded) gives way to mxlane's: one-click needs exactly one.
    printf 'From: news@shop.test\nList-Unsubscribe: <mailto:old@shop.test>,\n  <https://old.shop.test/x>\nSubject: unsubscribe test\n\nbody\n' > "$FX/unsub.txt"
    job5=$(printf '%s\n' h@ok.test i@ok.test j@ok.test | "$MKJOB" "$FX/queue" "$FX/unsub.txt" --from news@shop.test)
    : > "$FX/mx/accepted.jsonl"; : > "$FX/mx/127.0.0.111.mbox"
    timeout 60 "$FX_QRUNNER" -c "$FX/mxlane.conf" --once
    fx_check_eq "unsubscribe run exits 0" 0 $?
    # Per message: "RCPT SENDER-TOKEN MAILTO-TOKEN URL-TOKEN", after checking the fields' shape and the signature's h=.
    cat > "$FX/unsub.py" <<'PYEOF'
import mailbox, re, sys
for m in mailbox.mbox(sys.argv[1]):
    lu = m.get_all('List-Unsubscribe') or []
    lp = m.get_all('List-Unsubscribe-Post') or []
    assert len(lu) == 1 and len(lp) == 1, (lu, lp)
    assert lp[0].strip() == 'List-Unsubscribe=One-Click', lp
    v = re.sub(r'\s+', ' ', lu[0]).strip()
    got = re.fullmatch(r'<mailto:unsubscribe\+([a-z2-7]+)@shop\.test>, <https://news\.shop\.test/u/([a-z2-7]+)>', v)
    assert got, v
    sig = re.sub(r'\s+', '', m['DKIM-Signature'])
    h = re.search(r'(?:^|;)h=([^;]*)', sig).group(1).lower().split(':')
    assert 'list-unsubscribe' in h and 'list-unsubscribe-post' in h, h
    sender = re.fullmatch(r'<bounces\+([a-z2-7]+)@sender\.test>', m['X-Sink-Mail-From']).group(1)
    print(m['X-Sink-Rcpt-To'].strip('<>'), sender, got.group(1), got.group(2))
PYEOF
    # unsub_check JOB RCPT...: the sink's copies have the fields, signed, with the token of their recipient.
    unsub_check() {
        local job=$1 r want=""
        shift
        "$FX_PYTHON" "$FX/unsub.py" "$FX/mx/127.0.0.111.mbox" > "$FX/unsub.out" 2> "$FX/unsub.err"
        fx_check "one List-Unsubscribe (mailto, URL) and one List-Unsubscribe-Post per message, both signed" \
            test -s "$FX/unsub.out" -a ! -s "$FX/unsub.err"
        fx_log "$(cat "$FX/unsub.out" "$FX/unsub.err")"
        for r in "$@"; do want+="$r -> $job $r"$'\n'; done
        named=$(while read -r rcpt st mt ut; do
                    [ "$st" = "$mt" ] && [ "$mt" = "$ut" ] && echo "$rcpt -> $("$TOKEN" "$FX/queue" "$ut")"
                done < "$FX/unsub.out" | sort)
        fx_check_eq "each copy's mailto and URL carry the VERP token, naming its recipient" "${want%$'\n'}" "$named"
        fx_check "every copy's DKIM signature verifies" \
            "$FX_PYTHON" "$MXLANE_SRCDIR/tests/fixtures/dkim_verify.py" "$FX/records" --mbox "$FX/mx/127.0.0.111.mbox" --signatures 1 --domain shop.test
        fx_check "a changed body fails it" \
            "$FX_PYTHON" "$MXLANE_SRCDIR/tests/fixtures/dkim_verify.py" "$FX/records" --mbox "$FX/mx/127.0.0.111.mbox" --signatures 1 --tamper
    }
    unsub_check "$job5" h@ok.test i@ok.test j@ok.test
    fx_check_eq "signed per recipient (one signature line each)" 3 \
        "$(grep -c "$job5: message [0-9]* to [hij]@ok.test: DKIM-Signature field added" "$FX/mxlane.log")"
    # A personalised job: rendered per recipient, then the fields added and the copy signed.
    printf 'From: news@shop.test\nTo: {{email}}\nSubject: Hello {{first}}\n\nDear {{first}},\n' > "$FX/pers.txt"
    printf 'email,first\nk@ok.test,Kay\nl@ok.test,Lee\n' > "$FX/pers.csv"
    job6=$("$FX_CTL" -c "$FX/mxlane.conf" submit --message "$FX/pers.txt" --recipients "$FX/pers.csv" --name pers 2> "$FX/submit.err")
    fx_check "personalised job submitted" test -n "$job6"
    : > "$FX/mx/accepted.jsonl"; : > "$FX/mx/127.0.0.111.mbox"
    timeout 60 "$FX_QRUNNER" -c "$FX/mxlane.conf" --once
    fx_check_eq "personalised run exits 0" 0 $?
    unsub_check "$job6" k@ok.test l@ok.test
    fx_check_eq "... each rendered for its recipient" "2 2" \
        "$(grep -cE '^To: (k|l)@ok.test$' "$FX/mx/127.0.0.111.mbox") $(grep -cE '^Subject: Hello (Kay|Lee)$' "$FX/mx/127.0.0.111.mbox")"
else
    fx_skip_part "List-Unsubscribe signed: python3-dkim is not installed"
fi

# ---- 5. a bad loop parameter stops the qrunner at start with a clear error
bad() {
    local want=$1; shift
    conf "$@"
    timeout 30 "$FX_QRUNNER" -c "$FX/mxlane.conf" --once > "$FX/bad.out" 2>&1
    local rc=$?
    fx_check "refused: $* (exit $rc)" test $rc -ne 0
    fx_check "... saying: $want" grep -qF -- "$want" "$FX/bad.out"
}
bad "bounce_address: not an address" "bounce_address=bounces"
bad "bounce_address: not an address" "bounce_address=bounces@"
bad "bounce_address: its local part holds recipient_delimiter" "bounce_address=bounces+x@sender.test"
bad "recipient_delimiter: must be one of" "recipient_delimiter=++"
bad "recipient_delimiter: must be one of" "recipient_delimiter=a"
bad "unsubscribe_address: not an address" "unsubscribe_address=nobody"
bad "unsubscribe_url: must be http(s)" "unsubscribe_url=ftp://news.shop.test/u/"
bad "unsubscribe_url: must be http(s)" "unsubscribe_url=https://news.shop.test/u"
conf "recipient_delimiter=-" "bounce_address=bounces@sender.test" "unsubscribe_url=https://news.shop.test/u/"
timeout 30 "$FX_QRUNNER" -c "$FX/mxlane.conf" --once
fx_check_eq "good loop parameters are taken" 0 $?
fx_done
