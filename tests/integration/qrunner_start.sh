#!/bin/bash
# qrunner_start: a daemon start that fails says why on the terminal and exits 1 (a second qrunner on
# the queue, a bad value), and a SIGHUP names the changed parameters that only a restart applies.
. "$(dirname "$0")/../fixtures/lib.sh"
fx_init qrunner_start
fx_need_built "$FX_QRUNNER" "$FX_CTL"

fx_write_conf "$FX/mxlane.conf" "dns_servers=127.0.0.1:$(fx_port 0)" max_connections=200

# ---- 1. a second qrunner, started as a daemon, while one runs: exit 1, one line on stderr
fx_spawn qrunner "$FX_QRUNNER" -c "$FX/mxlane.conf" -f
Q1=$FX_LAST_PID
fx_check "the first qrunner starts" fx_wait_for -t 20 grep -q "starting" "$FX/qrunner.out"
err=$(timeout 20 "$FX_QRUNNER" -c "$FX/mxlane.conf" 2>&1); rc=$?
fx_check_eq "a second daemon exits 1" 1 "$rc"
fx_check "it says another qrunner runs" grep -q "another mxlane-qrunner (pid $Q1) is running" <<<"$err"
# (besides the note, made at every start here, that syslog is unreachable and log_file is used)
fx_check_eq "in one line" 1 "$(printf '%s\n' "$err" | grep -vc 'syslog is unreachable')"
fx_check "the first one still runs" kill -0 "$Q1"

# ---- 1b. an unknown mail_owner, started as a daemon by root: refused before the log is open, in one line
if [ "$(id -u)" = 0 ]; then
    fx_write_conf "$FX/owner.conf" "queue_directory=$FX/q_owner" mail_owner=no_such_user_mxl
    err=$(timeout 20 "$FX_QRUNNER" -c "$FX/owner.conf" 2>&1); rc=$?
    fx_check_eq "an unknown mail_owner: the daemon exits 1" 1 "$rc"
    fx_check "it names mail_owner" grep -q "^mxlane-qrunner: fatal: .*mail_owner = no_such_user_mxl: no such user" <<<"$err"
    fx_check_eq "in one line" 1 "$(printf '%s\n' "$err" | wc -l)"
fi

# ---- 2. SIGHUP: a restart-only parameter changed is named; a reloadable one is not
fx_write_conf "$FX/mxlane.conf" "dns_servers=127.0.0.2:$(fx_port 0)" max_connections=100
kill -HUP "$Q1"
fx_check "the reload names dns_servers as needing a restart" fx_wait_for -t 10 \
    grep -q "reloaded $FX/mxlane.conf; these changes need a restart to take effect: dns_servers$" "$FX/qrunner.out"
fx_write_conf "$FX/mxlane.conf" "dns_servers=127.0.0.2:$(fx_port 0)" max_connections=100 threads=3 \
    "queue_run_delay=2s"
kill -HUP "$Q1"
fx_check "a second reload still names dns_servers, and threads" fx_wait_for -t 10 \
    grep -q "need a restart to take effect: dns_servers, threads$" "$FX/qrunner.out"
fx_write_conf "$FX/mxlane.conf" "dns_servers=127.0.0.1:$(fx_port 0)" max_connections=100
kill -HUP "$Q1"
fx_check "back to the started values: a plain reload" fx_wait_for -t 10 \
    grep -q "reloaded $FX/mxlane.conf$" "$FX/qrunner.out"
fx_stop_pid "$Q1"

# ---- 3. a bad dns_servers value: the daemon exits 1 with file:line on the terminal, mxlanectl too
fx_write_conf "$FX/bad.conf" "dns_servers=127.0.0.1:53, not-an-ip"
line=$(grep -n '^dns_servers' "$FX/bad.conf" | cut -d: -f1)
err=$(timeout 20 "$FX_QRUNNER" -c "$FX/bad.conf" 2>&1); rc=$?
fx_check_eq "qrunner (daemon) exits 1 on a bad dns_servers" 1 "$rc"
fx_check "and names file:line" grep -q "bad.conf:$line: dns_servers: .*not-an-ip" <<<"$err"
for cmd in config jobs; do
  err=$("$FX_CTL" -c "$FX/bad.conf" $cmd 2>&1 >/dev/null); rc=$?
  fx_check_eq "mxlanectl $cmd exits 1 on it" 1 "$rc"
  fx_check "mxlanectl $cmd names file:line" grep -q "bad.conf:$line: dns_servers" <<<"$err"
done
for v in "relay_host=[127.0.0.1]:99999" "relay_host=[127.0.0.1" "milter_socket=tcp:25"; do
  fx_write_conf "$FX/bad.conf" "$v"
  err=$("$FX_CTL" -c "$FX/bad.conf" config 2>&1 >/dev/null); rc=$?
  fx_check_eq "mxlanectl config refuses $v" 1 "$rc"
done
for v in "dns_servers=127.0.0.1, [::1]:5353 ::1 192.0.2.1:53" "relay_host=relay.example:587" \
         "milter_socket=inet:10025@127.0.0.1"; do
  fx_write_conf "$FX/good.conf" "$v"
  fx_check "mxlanectl config accepts $v" "$FX_CTL" -c "$FX/good.conf" config -n
done

# ---- 4. a daemon that starts well: exit 0, and it is running with its pid in qrunner.pid
fx_write_conf "$FX/mxlane.conf"
timeout 20 "$FX_QRUNNER" -c "$FX/mxlane.conf"; rc=$?
fx_check_eq "a good daemon start exits 0" 0 "$rc"
pid=$(cat "$FX/queue/qrunner.pid" 2>/dev/null)
fx_check "the daemon's pid is in qrunner.pid" kill -0 "${pid:-0}"
[ -n "$pid" ] && fx_register_pid "$pid" && fx_stop_pid "$pid"
# ---- 5. myhostname left empty: the host's fully qualified name, as Postfix finds it (gethostname,
# then the canonical name for it); a warning at start when that is still not qualified.
# In a private UTS and mount namespace: host name mxhost, our own /etc/hosts.
in_host() {  # in_host HOSTS-LINE CMD...: CMD with host name mxhost and /etc/hosts holding HOSTS-LINE
    printf '127.0.0.1 localhost\n%s\n' "$1" > "$FX/hosts"
    shift
    unshare -mu bash -c 'hostname mxhost && mount --bind "$0" /etc/hosts && exec "$@"' "$FX/hosts" "$@"
}
if in_host "127.0.0.1 mxhost" true 2>/dev/null; then
    fx_write_conf "$FX/mxlane.conf"
    fx_check_eq "myhostname: the canonical name of the host name" "myhostname = mxhost.example.test" \
        "$(in_host "127.0.0.1 mxhost.example.test mxhost" "$FX_CTL" -c "$FX/mxlane.conf" config -x | grep '^myhostname')"
    fx_check_eq "smtp_helo_name follows it" "smtp_helo_name = mxhost.example.test" \
        "$(in_host "127.0.0.1 mxhost.example.test mxhost" "$FX_CTL" -c "$FX/mxlane.conf" config -x | grep '^smtp_helo_name')"
    fx_check_eq "no canonical name: the host name" "myhostname = mxhost" \
        "$(in_host "127.0.0.1 mxhost" "$FX_CTL" -c "$FX/mxlane.conf" config -x | grep '^myhostname')"
    in_host "127.0.0.1 mxhost" timeout 30 "$FX_QRUNNER" -c "$FX/mxlane.conf" --once
    fx_check "the qrunner warns about an unqualified myhostname" \
        grep -q "warning: myhostname mxhost is not fully qualified" "$FX/mxlane.log"
    : > "$FX/mxlane.log"
    in_host "127.0.0.1 mxhost.example.test mxhost" timeout 30 "$FX_QRUNNER" -c "$FX/mxlane.conf" --once
    fx_check "and not about a qualified one" bash -c "grep -q starting '$FX/mxlane.log' && ! grep -q 'not fully qualified' '$FX/mxlane.log'"
else
    fx_log "no private mount/UTS namespace here (unshare -mu): myhostname checks skipped"
fi
fx_done
