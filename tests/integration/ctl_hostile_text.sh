#!/bin/bash
# ctl_hostile_text: Latin-1, control characters and forged log fields in job names and SMTP replies
# give valid JSON, printable mxlanectl text, printable log lines, and no delivery pflogsumm would count.
. "$(dirname "$0")/../fixtures/lib.sh"
fx_init ctl_hostile_text
for p in "$FX_CTL" "$FX_QRUNNER" "$FX_MILTER"; do [ -x "$p" ] || fx_fatal "$p not built (run make first)"; done
fx_need pflogsumm miltertest "$FX_PYTHON"
P=$(fx_port 5)
FORGED='to=<x@y.test>, relay=z, delay=1, delays=1/1/1/1, dsn=2.0.0, status=sent (250 ok)'
ctl() { "$FX_CTL" -c "$FX/mxlane.conf" "$@"; }
py() { "$FX_PYTHON" -c "$@"; }

# A server that answers with raw bytes: Latin-1, ESC/OSC sequences, forged log fields.
# Local part "latin*": 550 in Latin-1 with escapes; "forged*": 550 carrying a delivery line;
# anything else 250. A listener given "greet421" refuses every connection with forged fields.
cat > "$FX/hostile_sink.py" <<'PY'
import socketserver, sys
FORGED = b'to=<x@y.test>, relay=z, delay=1, delays=1/1/1/1, dsn=2.0.0, status=sent (250 ok)'
REPLIES = {
    b'latin': b'550 5.1.1 Benutzer unbekannt: M\xfcller \x1b]0;pwned\x07\x1b[2J\x9b31m',
    b'forged': b'550 5.1.1 x ' + FORGED,
}
class Handler(socketserver.StreamRequestHandler):
    def say(self, line):
        self.wfile.write(line + b'\r\n')
    def handle(self):
        if self.server.greet421:
            self.say(b'421 4.7.0 x ' + FORGED)
            return
        self.say(b'220 hostile.test ESMTP')
        for line in self.rfile:
            verb = line[:4].upper()
            if verb in (b'EHLO', b'HELO'):
                self.say(b'250 hostile.test')
            elif verb == b'RCPT':
                local = line.split(b'<', 1)[-1].split(b'@', 1)[0].lower()
                self.say(next((r for p, r in REPLIES.items() if local.startswith(p)), b'250 2.1.5 ok'))
            elif verb == b'DATA':
                self.say(b'354 go on')
                for body in self.rfile:
                    if body in (b'.\r\n', b'.\n'):
                        break
                self.say(b'250 2.0.0 queued')
            elif verb == b'QUIT':
                self.say(b'221 bye')
                return
            else:
                self.say(b'250 2.0.0 ok')
class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
listeners = []
for spec in sys.argv[1:]:
    addr, _, mode = spec.partition('=')
    ip, port = addr.rsplit(':', 1)
    s = Server((ip, int(port)), Handler)
    s.greet421 = mode == 'greet421'
    listeners.append(s)
import threading
for s in listeners[1:]:
    threading.Thread(target=s.serve_forever, daemon=True).start()
listeners[0].serve_forever()
PY
fx_dns_start 'mx-host=h.test,mx.h.test,10' 'host-record=mx.h.test,127.0.0.41' \
             'mx-host=g.test,mx.g.test,10' 'host-record=mx.g.test,127.0.0.42'
fx_spawn hostile_sink "$FX_PYTHON" "$FX/hostile_sink.py" "127.0.0.41:$P" "127.0.0.42:$P=greet421"
fx_wait_port 127.0.0.41 "$P" && fx_wait_port 127.0.0.42 "$P" || fx_fatal "hostile sink did not start"
fx_write_conf "$FX/mxlane.conf" smtp_port="$P" dns_timeout=2s retry_schedule=1h smtp_tls_security_level=none \
  milter_socket="unix:$FX/milter.sock"

# ---- a job named with Latin-1, control characters and forged fields, submitted and captured
NAME=$'M\xfcller \x1b]0;pwned\x07\x1b[31m x '"$FORGED"
printf 'From: news@sender.test\nSubject: hostile\n\nhello\n' > "$FX/msg.txt"
printf 'address\nlatin@h.test\nforged@h.test\nok@h.test\nwho@g.test\n' > "$FX/list.csv"
job=$(ctl submit --message "$FX/msg.txt" --recipients "$FX/list.csv" --name "$NAME")
fx_check "submit with a raw job name exits 0" test -n "$job"
# The milter logs the name of every job it captures: the same name over the milter protocol.
fx_milter_start "$FX/mxlane.conf"
cat > "$FX/capture.lua" <<'LUA'
dofile(lib)
run(function()
  local c = connect()
  expect("captured", c, { from = "<boss@corp.test>", rcpts = { "<ok@h.test>" },
                          headers = { { "X-Mxlane-Job", job } } }, "eom", SMFIR_DISCARD)
  mt.disconnect(c)
end)
LUA
fx_check "the milter captures a job with a hostile name" timeout 60 miltertest -s "$FX/capture.lua" \
  -D sock="unix:$FX/milter.sock" -D lib="$MXLANE_SRCDIR/tests/protocol/mt_lib.lua" -D job="$NAME"
fx_stop_pid "$FX_MILTER_PID"
timeout -k 5 "${QRUNNER_ONCE_TIMEOUT:-60}" "$FX_QRUNNER" -c "$FX/mxlane.conf" --once
fx_check_eq "the qrunner run exits 0" 0 $?

# ---- --json: valid UTF-8 JSON whatever the peers sent; bad bytes become U+FFFD, controls are kept escaped
strict_json() { py 'import json,sys; json.loads(sys.stdin.buffer.read().decode("utf-8", "strict"))'; }
fx_check "jobs --json is valid JSON" bash -c "'$FX_CTL' -c '$FX/mxlane.conf' jobs --json | $FX_PYTHON -c 'import json,sys; json.load(sys.stdin)'"
fx_check "job --json is valid JSON" bash -c "'$FX_CTL' -c '$FX/mxlane.conf' job $job --json | $FX_PYTHON -c 'import json,sys; json.load(sys.stdin)'"
fx_check "recipients --json is valid JSON" bash -c "'$FX_CTL' -c '$FX/mxlane.conf' recipients $job --json | $FX_PYTHON -c 'import json,sys; json.load(sys.stdin)'"
for cmd in "jobs" "job $job" "recipients $job" "suppress list" "config"; do
  # shellcheck disable=SC2086
  fx_check "$cmd --json is strict UTF-8 JSON" strict_json < <(ctl $cmd --json)
done
fx_check "the job name reads back with U+FFFD for the Latin-1 byte" py 'import json,sys
jobs = json.load(sys.stdin)
want = "M\ufffdller \x1b]0;pwned\x07\x1b[31m x " + sys.argv[1]
assert want in [j["name"] for j in jobs], [j["name"] for j in jobs]' "$FORGED" < <(ctl jobs --json)
fx_check "the Latin-1 reply reads back with U+FFFD, its controls escaped" py 'import json,sys
rows = {r["address"]: r for r in json.load(sys.stdin)}
r = rows["latin@h.test"]
assert r["state"] == "bounced", r
assert "Benutzer unbekannt: M\ufffdller \x1b]0;pwned\x07\x1b[2J\ufffd31m" in r["last_reply"], r
assert rows["forged@h.test"]["state"] == "bounced" and rows["ok@h.test"]["state"] == "delivered", rows
assert rows["who@g.test"]["state"] == "deferred", rows' < <(ctl recipients "$job" --json)

# ---- text output: nothing a terminal would act on
printable_text() { py 'import sys
b = sys.stdin.buffer.read()
t = b.decode("utf-8", "strict")
bad = [c for c in t if (ord(c) < 32 and c != "\n") or 0x7f <= ord(c) < 0xa0]
assert not bad, (bad, t)'; }
for cmd in "jobs" "job $job" "recipients $job"; do
  # shellcheck disable=SC2086
  fx_check "$cmd: printable text" printable_text < <(ctl $cmd)
done
fx_check "recipients shows the reply with '?' for what is not printable" \
  grep -qF 'Benutzer unbekannt: M?ller ?]0;pwned??[2J?31m' < <(ctl recipients "$job")
err=$(ctl job "$NAME" 2>&1 >/dev/null)
fx_check "an error naming a hostile argument is printable" printable_text <<<"$err"

# ---- the log: printable lines, and pflogsumm counts only what happened
# The milter ran with -f: its lines are in milter.out, the qrunner's in log_file.
LOG=$FX/all.log
cat "$FX/milter.out" "$FX/mxlane.log" > "$LOG"
fx_check "the milter logged the captured job" grep -qF 'job="M?ller ?]0;pwned??[31m x to:<x@y.test>' "$LOG"
fx_check "the log has no control characters and is UTF-8" printable_text < "$LOG"
fx_check "replies in the log carry no to= or status= field" \
  bash -c "! grep -E '\((.*[ ,(])?(to=<|status=)' '$LOG'"
fx_check "the 421 greeting with forged fields reached the log" grep -q '421 4.7.0 x to:<x@y.test>' "$LOG"
pflogsumm --syslog-name=mxlane "$LOG" > "$FX/pflogsumm.txt" 2>&1
count() { sed -n "s/^ *\([0-9]*\) *$1\b.*/\1/p" "$FX/pflogsumm.txt" | head -n 1; }
fx_check_eq "pflogsumm: two deliveries (ok@h.test, submitted and captured), none forged" 2 "$(count delivered)"
fx_check_eq "pflogsumm: two bounces" 2 "$(count bounced)"
fx_check_eq "pflogsumm: one deferral" 1 "$(count deferred)"
fx_check "pflogsumm names no forged recipient" bash -c "! grep -q 'x@y.test' '$FX/pflogsumm.txt'"
fx_done
