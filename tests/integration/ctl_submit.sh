#!/bin/bash
# ctl_submit: mxlanectl submit (personalised delivery, bad files refused with FILE:LINE and nothing stored), export round trip.
. "$(dirname "$0")/../fixtures/lib.sh"
fx_init ctl_submit
for p in "$FX_CTL" "$FX_QRUNNER"; do [ -x "$p" ] || fx_fatal "$p not built (run make first)"; done
P=$(fx_port 5)
fx_dns_start 'mx-host=a.test,mx.a.test,10' 'host-record=mx.a.test,127.0.0.21' \
             'mx-host=b.test,mx.a.test,10'
fx_pysink_start "$FX/sink" "127.0.0.21:$P"
fx_write_conf "$FX/mxlane.conf" smtp_port="$P" dns_timeout=1s retry_schedule=1h smtp_tls_security_level=none
ctl() { "$FX_CTL" -c "$FX/mxlane.conf" "$@"; }
py() { "$FX_PYTHON" -c "$@"; }

# ---- a personalised job, delivered: each message carries its own fields
printf 'From: News <news@sender.test>\nTo: {{email}}\nSubject: Hello {{first}}\n\nDear {{ first }} from {{city}},\nthis is for {{address}}.\n' > "$FX/msg.txt"
cat > "$FX/list.csv" <<'CSV'
email,first,city
ann@a.test,Ann,"Oslo, Norway"
bob@b.test,"Bob ""the builder""",{{city}}
cy@a.test,Cy,"two
lines"
CSV
job=$(ctl submit --message "$FX/msg.txt" --recipients "$FX/list.csv" --name spring 2>"$FX/err")
fx_check_eq "submit exits 0 and prints only the job id" 0 $?
fx_check "the id is a job id" bash -c "[[ '$job' =~ ^J[0-9A-F]{6,}$ ]]"
fx_check_eq "submit is quiet on stderr when it is not a terminal" "" "$(cat "$FX/err")"
fx_check "job is active, named, from the From: address, personalised" py 'import json,sys
j = json.loads(sys.argv[1])
assert j["state"] == "active" and j["name"] == "spring" and j["sender"] == "news@sender.test", j
assert j["recipients"] == 3 and j["messages"][0]["personalised"] is True, j' "$(ctl job "$job" --json)"

timeout -k 5 "${QRUNNER_ONCE_TIMEOUT:-60}" "$FX_QRUNNER" -c "$FX/mxlane.conf" --once
fx_check_eq "qrunner --once exits 0" 0 $?
fx_check_eq "three messages at the sink" 3 "$(fx_pysink_count "$FX/sink")"
fx_check "each message carries its own fields, values inserted once" py 'import sys, email, mailbox
msgs = {}
for m in mailbox.mbox(sys.argv[1]):
    msgs[m["To"]] = m
assert set(msgs) == {"ann@a.test", "bob@b.test", "cy@a.test"}, list(msgs)
def body(m): return m.get_payload().replace("\r\n", "\n")
assert msgs["ann@a.test"]["Subject"] == "Hello Ann", msgs["ann@a.test"]["Subject"]
assert "Dear Ann from Oslo, Norway,\nthis is for ann@a.test." in body(msgs["ann@a.test"]), body(msgs["ann@a.test"])
assert msgs["bob@b.test"]["Subject"] == "Hello Bob \"the builder\"", msgs["bob@b.test"]["Subject"]
assert "Dear Bob \"the builder\" from {{city}},\nthis is for bob@b.test." in body(msgs["bob@b.test"]), body(msgs["bob@b.test"])
assert "from two\nlines," in body(msgs["cy@a.test"]), body(msgs["cy@a.test"])
for m in msgs.values():
    assert m["Date"] and m["Message-ID"], "submit adds Date and Message-ID"
' "$FX/sink/127.0.0.21.mbox"
fx_check "every recipient delivered" py 'import json,sys
assert [r["state"] for r in json.loads(sys.argv[1])] == ["delivered"] * 3' "$(ctl recipients "$job" --json)"

# ---- a message without placeholders: not personalised, no fields stored
printf 'From: news@sender.test\nSubject: plain\n\nno fields here\n' > "$FX/plain.txt"
plain=$(ctl submit --message "$FX/plain.txt" --recipients "$FX/list.csv" --json | py 'import json,sys; d=json.load(sys.stdin); assert d["personalised"] is False, d; print(d["job"])')
fx_check "a message without placeholders is not personalised" test -n "$plain"
fx_check_eq "and its export has no field columns" "address,state,attempts,last_reply,dsn,host,class,suppression" \
  "$(ctl export "$plain" | head -n 1 | tr -d '\r')"
ctl delete "$plain" >/dev/null

# ---- bad input: FILE:LINE named, exit 1, one line, the store unchanged
before=$(ctl jobs --json)
refuse() {  # refuse NAME EXPECTED-STDERR-PATTERN submit-args...
  local name=$1 pattern=$2 err rc
  shift 2
  err=$(ctl submit "$@" 2>&1 >/dev/null); rc=$?
  fx_check_eq "$name: exit 1" 1 "$rc"
  fx_check "$name: says '$pattern'" grep -q -- "$pattern" <<<"$err"
  fx_check_eq "$name: one line" 1 "$(printf '%s\n' "$err" | wc -l)"
  fx_check_eq "$name: store unchanged" "$before" "$(ctl jobs --json)"
}
printf 'email,first,city\nann@a.test,Ann,Oslo\nnot-an-address,Bo,Rome\n' > "$FX/bad_addr.csv"
refuse "malformed address" "bad_addr.csv:3: not a valid address: not-an-address" \
  --message "$FX/msg.txt" --recipients "$FX/bad_addr.csv"
printf 'email,first,city\nann@a.test,Ann,Oslo\nbob@b.test,"Bob\nB."\n' > "$FX/bad_count.csv"
refuse "wrong field count" "bad_count.csv:3: 2 fields, but the header has 3" \
  --message "$FX/msg.txt" --recipients "$FX/bad_count.csv"
printf 'email,first\nann@a.test,Ann\n' > "$FX/no_city.csv"
refuse "placeholder with no column" "msg.txt:5: placeholder {{city}} has no column in" \
  --message "$FX/msg.txt" --recipients "$FX/no_city.csv"
printf 'email,first,city\n' > "$FX/header_only.csv"
refuse "empty list" "header_only.csv:1: empty list" --message "$FX/msg.txt" --recipients "$FX/header_only.csv"
: > "$FX/empty.csv"
refuse "empty file" "empty.csv:1: empty list" --message "$FX/msg.txt" --recipients "$FX/empty.csv"
printf 'email,first,city\nann@a.test,Ann,"never closed\n' > "$FX/unclosed.csv"
refuse "unclosed quote" "unclosed.csv:2: a quoted field is not closed" \
  --message "$FX/msg.txt" --recipients "$FX/unclosed.csv"
refuse "missing recipients file" "nosuch.csv: cannot open" --message "$FX/msg.txt" --recipients "$FX/nosuch.csv"
refuse "missing message file" "nosuch.txt: cannot open" --message "$FX/nosuch.txt" --recipients "$FX/list.csv"
printf 'Subject: no sender\n\nhi\n' > "$FX/nofrom.txt"
refuse "no From: and no --from" "no address in a From: header" --message "$FX/nofrom.txt" --recipients "$FX/list.csv"
refuse "bad --from" "--from: not a valid address" --message "$FX/plain.txt" --recipients "$FX/list.csv" --from 'x y'
refuse "job name in use" 'a job named "spring" exists already' \
  --message "$FX/msg.txt" --recipients "$FX/list.csv" --name spring
refuse "no --message" "submit needs --message" --recipients "$FX/list.csv"

# ---- export round trip: export -> submit gives the same recipients and fields
ctl export "$job" > "$FX/export.csv"
fx_check_eq "export exits 0" 0 $?
fx_check_eq "export header" "address,state,attempts,last_reply,dsn,host,class,suppression,first,city" \
  "$(head -n 1 "$FX/export.csv" | tr -d '\r')"
fx_check "export rows carry state, attempts, reply, dsn and host" py 'import csv,sys
rows = list(csv.DictReader(open(sys.argv[1], newline="")))
assert len(rows) == 3, rows
for r in rows:
    assert r["state"] == "delivered" and r["attempts"] == "1" and r["dsn"] == "2.0.0", r
    assert r["last_reply"].startswith("250") and r["host"].startswith("mx.a.test[127.0.0.21]"), r' "$FX/export.csv"
# An export's first column is "address": a message naming the old first column ({{email}})
# is refused with the line; one that says {{address}} goes through.
refuse "old first column name against an export" "msg.txt:2: placeholder {{email}} has no column" \
  --message "$FX/msg.txt" --recipients "$FX/export.csv"
sed 's/{{email}}/{{address}}/' "$FX/msg.txt" > "$FX/msg2.txt"
again=$(ctl submit --message "$FX/msg2.txt" --recipients "$FX/export.csv" --from news@sender.test)
fx_check_eq "the export submits as it is" 0 $?
ctl export "$again" > "$FX/export2.csv"
fx_check "same recipients and fields after the round trip" py 'import csv,sys
def key(p): return [(r["address"], r["first"], r["city"]) for r in csv.DictReader(open(p, newline=""))]
a, b = key(sys.argv[1]), key(sys.argv[2])
assert a == b, (a, b)
assert b[1][2] == "{{city}}" and b[2][2] == "two\nlines", b' "$FX/export.csv" "$FX/export2.csv"
fx_check_eq "export --state picks one state" 3 "$(ctl export "$again" --state queued | tail -n +2 | grep -c '@')"
fx_check_eq "export --state with no match: the header only" 1 "$(ctl export "$again" --state bounced | wc -l)"
err=$(ctl export "$again" --state nosuch 2>&1); rc=$?
fx_check_eq "export --state with an unknown state exits 1" 1 "$rc"
err=$(ctl export J0FFFFF 2>&1); rc=$?
fx_check_eq "export of an unknown job exits 1" 1 "$rc"

# ---- From: is an RFC 5322 address list: comments and quoted names are not addresses; ambiguity is refused
sender_of() {  # sender_of FROM-HEADER-VALUE: the envelope sender submit takes from it (the job is deleted again)
  local id
  printf 'From: %s\nSubject: from\n\nhi\n' "$1" > "$FX/from.txt"
  id=$(ctl submit --message "$FX/from.txt" --recipients "$FX/one.csv") || return 1
  ctl job "$id" --json | py 'import json,sys; print(json.load(sys.stdin)["sender"])'
  ctl delete "$id" >/dev/null
}
printf 'address\nann@a.test\n' > "$FX/one.csv"
fx_check_eq "an address in a From: comment is not the sender" "other@elsewhere.test" \
  "$(sender_of 'other@elsewhere.test (<news@shop.test>)')"
fx_check_eq "an address in a quoted display name is not the sender" "other@elsewhere.test" \
  "$(sender_of '"news@shop.test" <other@elsewhere.test>')"
fx_check_eq "a display name with a comma and a comment" "ann@example.com" \
  "$(sender_of '"Smith, Ann" (sales) <ann@example.com>')"
fx_check_eq "a group of one mailbox" "ann@example.com" "$(sender_of 'Sales: Ann <ann@example.com>;')"
before=$(ctl jobs --json)
printf 'From: ann@a.test, Bob <bob@b.test>\nSubject: two\n\nhi\n' > "$FX/from_two.txt"
refuse "two mailboxes in From:" "the From: header names 2 mailboxes (<ann@a.test>, <bob@b.test>), so the sender is ambiguous; give the envelope sender with --from ADDR" \
  --message "$FX/from_two.txt" --recipients "$FX/one.csv"
printf 'From: ann@a.test\nFrom: bob@b.test\nSubject: two\n\nhi\n' > "$FX/from_twice.txt"
refuse "two From: headers" "2 From: headers" --message "$FX/from_twice.txt" --recipients "$FX/one.csv"
printf 'From: Ann <ann@a.test\nSubject: broken\n\nhi\n' > "$FX/from_broken.txt"
refuse "a From: that does not parse" "From: is not an address list: the address in <...> is not closed" \
  --message "$FX/from_broken.txt" --recipients "$FX/one.csv"
printf 'From: undisclosed:;\nSubject: none\n\nhi\n' > "$FX/from_none.txt"
refuse "a From: without a mailbox" "no address in the From: header" --message "$FX/from_none.txt" --recipients "$FX/one.csv"
two=$(ctl submit --message "$FX/from_two.txt" --recipients "$FX/one.csv" --from ann@a.test)
fx_check_eq "--from settles two mailboxes" "ann@a.test" \
  "$(ctl job "$two" --json | py 'import json,sys; print(json.load(sys.stdin)["sender"])')"
ctl delete "$two" >/dev/null

# ---- a message file over message_size_limit is refused by its size, before it is read
before=$(ctl jobs --json)
truncate -s 1G "$FX/huge.txt"
/usr/bin/time -f '%M' -o "$FX/huge.rss" "$FX_CTL" -c "$FX/mxlane.conf" submit --message "$FX/huge.txt" \
  --recipients "$FX/one.csv" 2> "$FX/huge.err"
fx_check_eq "a 1 GiB message file: exit 1" 1 "$(sed -n 's/^Command exited with non-zero status //p' "$FX/huge.rss")"
fx_check "it says why" grep -q "huge.txt: the message has 1073741824 bytes, more than message_size_limit (52428800)" "$FX/huge.err"
fx_check "the file is not read: max RSS under 64 MiB" test "$(tail -n 1 "$FX/huge.rss")" -lt 65536
fx_check_eq "store unchanged" "$before" "$(ctl jobs --json)"
rm -f "$FX/huge.txt"

# ---- CSV cells a spreadsheet would run as formulas are exported with a leading ', and submit takes them back
cat > "$FX/formula.csv" <<'CSV'
address,note,amount
-minus@a.test,"=HYPERLINK(""http://elsewhere.test"",""x"")",-5
+plus@a.test,@SUM(A1),+7
'quote@a.test,'already quoted,3
CSV
printf 'From: news@sender.test\nSubject: {{note}}\n\n{{amount}}\n' > "$FX/formula.txt"
formula=$(ctl submit --message "$FX/formula.txt" --recipients "$FX/formula.csv" --name formula)
fx_check "a list with formula-like cells is taken" test -n "$formula"
ctl export "$formula" > "$FX/formula_export.csv"
fx_check "export prefixes every formula-like cell with '" py 'import csv,sys
rows = list(csv.reader(open(sys.argv[1], newline="")))
for row in rows:
    for cell in row:
        assert not cell or cell[0] not in "=+-@\t\r", (cell, row)
by = {r[0]: r for r in rows[1:]}
assert by["\x27-minus@a.test"][8:] == ["\x27=HYPERLINK(\"http://elsewhere.test\",\"x\")", "\x27-5"], by
assert by["\x27+plus@a.test"][8:] == ["\x27@SUM(A1)", "\x27+7"], by
assert by["\x27\x27quote@a.test"][8:] == ["\x27\x27already quoted", "3"], by' "$FX/formula_export.csv"
again=$(ctl submit --message "$FX/formula.txt" --recipients "$FX/formula_export.csv" --name formula-again)
fx_check "the export submits again" test -n "$again"
fields() { ctl export "$1" | py 'import csv,sys
for r in sorted(list(csv.reader(sys.stdin))[1:]): print(r[0], r[6:])'; }
fx_check_eq "the same addresses and fields after the round trip" "$(fields "$formula")" "$(fields "$again")"
# Exports written before the class column (six columns before the fields) and before the suppression
# column (seven) are still recognised.
py 'import csv,sys
rows = list(csv.reader(open(sys.argv[1], newline="")))
csv.writer(open(sys.argv[2], "w", newline="")).writerows(r[:6] + r[8:] for r in rows)
csv.writer(open(sys.argv[3], "w", newline="")).writerows(r[:7] + r[8:] for r in rows)' \
    "$FX/formula_export.csv" "$FX/formula_export_old.csv" "$FX/formula_export_7.csv"
older=$(ctl submit --message "$FX/formula.txt" --recipients "$FX/formula_export_old.csv" --name formula-older)
fx_check_eq "an export without the class column submits again the same" "$(fields "$formula")" "$(fields "$older")"
seven=$(ctl submit --message "$FX/formula.txt" --recipients "$FX/formula_export_7.csv" --name formula-7)
fx_check_eq "an export without the suppression column submits again the same" "$(fields "$formula")" "$(fields "$seven")"
ctl delete "$seven" >/dev/null
fx_check "the stored values have no added '" py 'import json,sys
assert sorted(r["address"] for r in json.load(sys.stdin)) == ["\x27quote@a.test", "+plus@a.test", "-minus@a.test"]' \
  < <(ctl recipients "$again" --json)
ctl delete "$formula" >/dev/null; ctl delete "$again" >/dev/null; ctl delete "$older" >/dev/null

# ---- 80,000 columns: the column names are checked in linear time
py 'import sys
n = 80000
with open(sys.argv[1], "w") as f:
    f.write("address," + ",".join("c%d" % i for i in range(n)) + "\n")
    f.write("ann@a.test," + ",".join(str(i) for i in range(n)) + "\n")' "$FX/wide.csv"
printf 'From: news@sender.test\nSubject: wide {{c79999}}\n\n{{c0}}\n' > "$FX/wide.txt"
wide=$(timeout 60 "$FX_CTL" -c "$FX/mxlane.conf" submit --message "$FX/wide.txt" --recipients "$FX/wide.csv")
fx_check "a list of 80,000 columns is taken" test -n "$wide"
fx_check_eq "its export has all of them" 80008 "$(ctl export "$wide" | head -n 1 | tr ',' '\n' | wc -l)"
py 'import sys
with open(sys.argv[1], "w") as f: f.write("address," + ",".join("c%d" % i for i in range(80000)) + ",c5\nann@a.test" + ",x" * 80001 + "\n")' "$FX/wide_dup.csv"
before=$(ctl jobs --json)
refuse "a duplicate among 80,000 column names" 'wide_dup.csv:1: two columns are named "c5"' \
  --message "$FX/wide.txt" --recipients "$FX/wide_dup.csv"
ctl delete "$wide" >/dev/null

# ---- a big list streams: 600,000 rows in bounded memory
py 'import sys
with open(sys.argv[1], "w") as f:
    f.write("email,first,city\n")
    for i in range(600000):
        f.write("subscriber%07d@d%03d.test,Subscriber number %d,City of somewhere %d\n" % (i, i % 997, i, i % 77))' "$FX/big.csv"
start=$SECONDS
/usr/bin/time -f '%M' -o "$FX/big.rss" "$FX_CTL" -c "$FX/mxlane.conf" submit --message "$FX/msg.txt" \
  --recipients "$FX/big.csv" --name big > "$FX/big.id"
fx_check_eq "a 600,000-row submit exits 0" 0 $?
fx_log "600,000 rows in $((SECONDS - start)) s, max RSS $(cat "$FX/big.rss") KiB"
# The queue's 64 MiB Berkeley DB cache is mapped in (~140 MiB at most, whatever the
# length); the rows held in memory would add ~150 MiB more.
fx_check "it streams: max RSS stays under 200 MiB" test "$(tail -n 1 "$FX/big.rss")" -lt 204800
fx_check_eq "all rows stored and the job active" "600000 active" \
  "$(ctl job "$(cat "$FX/big.id")" --json | py 'import json,sys; j=json.load(sys.stdin); print(j["recipients"], j["state"])')"
fx_done
