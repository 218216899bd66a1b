#!/bin/bash
# deps.sh: installs (as root, on Debian 12) every package mxlane needs to build, test and demo.
set -euo pipefail
PACKAGES=(
  # build
  g++ make autoconf automake libtool pkg-config
  libmilter-dev libssl-dev libc-ares-dev libboost1.81-dev libdb++-dev libcppunit-dev libpcre2-dev libopendkim-dev libspf2-dev libhiredis-dev
  # tests and demo: real MTAs, milter driver, DNS, sinks, mail-log reader
  postfix miltertest dnsmasq-base swaks python3-aiosmtpd pflogsumm dnsutils openssl
  python3-dkim python3-nacl python3-prometheus-client curl
  # shared state across hosts: the tests start private redis-server instances on loopback
  redis-server
  iproute2 util-linux procps
  # crash tests (db5.3_verify) and fuzzers (clang, libFuzzer's runtime; GMime, the reference the
  # mime_gmime target checks mxlane's MIME encoders against)
  db5.3-util clang libclang-rt-14-dev libgmime-3.0-dev
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "deps: missing packages: ${missing[*]}; run as root to install them" >&2
  exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Without this the postfix package asks which configuration to install and hangs a script.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
# redis-server's package would start and enable the machine's own Redis; the tests run
# private ones, so a policy-rc.d refuses service starts for the duration of the install
# (unless the machine already has one), and the service is disabled right after.
own_policy=
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
  own_policy=1
fi
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
[ -z "$own_policy" ] || rm -f /usr/sbin/policy-rc.d
if dpkg-query -W -f='${Status}' redis-server 2>/dev/null | grep -q 'install ok installed'; then
  if [ -d /run/systemd/system ]; then
    systemctl disable --now redis-server >/dev/null 2>&1 || true
  else
    update-rc.d redis-server disable >/dev/null 2>&1 || true
  fi
fi
# The package may start the machine's own Postfix; mxlane's tests run private instances
# and never use it, so leave the system service as the admin had it.
echo "deps: done"
