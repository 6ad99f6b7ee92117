#!/usr/bin/env bash
# npm run test:package — the Debian package as an operator meets it, on this machine, as root:
# replaces an installed MTA, owns /usr/sbin/sendmail, keeps later MTA-dependent installs from
# pulling another MTA back, delivers `mail root` to the capture upstream, survives an upgrade with
# mail queued, keeps spool and config on remove and deletes them on purge; lintian has no errors;
# `npm pack` installs with `npm install -g` and runs.
#
# It changes the machine (installs exim4, mailutils, cron; installs and purges mailshim), so it is
# not part of `npm test`: .ci/run calls it after the test suite. Without root, apt-get or dpkg it
# says why and exits 0 with "0 passed, 0 failed, 1 skipped".
set -uo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
export DEBIAN_FRONTEND=noninteractive

pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
not_ok() { fail=$((fail + 1)); echo "not ok - $*"; }
check() { local what=$1; shift; if "$@" >/dev/null; then ok "$what"; else not_ok "$what"; fi; }
finish() { echo "$pass passed, $fail failed"; [ "$fail" -eq 0 ]; exit $?; }

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null || ! command -v dpkg >/dev/null; then
  echo "# skipped: needs root, apt-get and dpkg (Debian or Ubuntu)"
  echo "0 passed, 0 failed, 1 skipped"
  exit 0
fi

WORK=$(mktemp -d /tmp/mailshim-deb.XXXXXX)
DAEMON_PID=
cleanup() {
  [ -n "$DAEMON_PID" ] && kill "$DAEMON_PID" 2>/dev/null && wait "$DAEMON_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

installed() { [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]; }
apt_quiet() { apt-get -o Dpkg::Options::=--force-confold -y -q "$@" >"$WORK/apt.log" 2>&1 || { cat "$WORK/apt.log"; return 1; }; }

# Start/stop the daemon the way the unit does (as mailshim, port 25 through a capability) on hosts
# where no systemd runs as PID 1 — the package's postinst starts it itself where one does.
start_daemon() {
  setpriv --reuid="$(id -u mailshim)" --regid="$(id -g mailshim)" --init-groups --inh-caps=+net_bind_service --ambient-caps=+net_bind_service \
    /usr/sbin/mailshim serve --config /etc/mailshim/mailshim.toml >>"$WORK/daemon.log" 2>&1 &
  DAEMON_PID=$!
  for _ in $(seq 100); do grep -q '"event":"started"' "$WORK/daemon.log" 2>/dev/null && return 0; kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
  echo "# daemon did not start:"; sed 's/^/#   /' "$WORK/daemon.log"; return 1
}
stop_daemon() { [ -n "$DAEMON_PID" ] && kill "$DAEMON_PID" && wait "$DAEMON_PID" 2>/dev/null; DAEMON_PID=; true; }
# Waits until the outbox holds a message containing the text.
delivered() { for _ in $(seq 150); do grep -rlqs -- "$1" /var/lib/mailshim/outbox && return 0; sleep 0.2; done; return 1; }

apt-get update -qq >/dev/null 2>&1 || true
# Prerequisites from Debian's archive: when they cannot be had, that is a skip, not a pass or a failure.
skip() { echo "# skipped: $*"; echo "$pass passed, $fail failed, 1 skipped"; exit 0; }
command -v lintian >/dev/null && command -v go-md2man >/dev/null || apt_quiet install --no-install-recommends lintian go-md2man || skip "cannot install lintian and go-md2man"

# 1. Build this checkout, and an "older" build of it for the upgrade.
# (MAILSHIM_DEB_REUSE=1 reuses packages built earlier, while working on this script.)
build() { local v=${1:-$(node -p 'require("./package.json").version')} arch; arch=$(dpkg --print-architecture)
  if [ -n "${MAILSHIM_DEB_REUSE:-}" ] && [ -f "dist/mailshim_${v}_${arch}.deb" ]; then echo "$REPO/dist/mailshim_${v}_${arch}.deb"; else MAILSHIM_DEB_VERSION=$v bash packaging/deb/build.sh; fi; }
OLD=$(build 0.0.9) || { not_ok "build the old package"; finish; }
NEW=$(build) || { not_ok "build the package"; finish; }
ok "npm run package:deb builds $(basename "$NEW")"
errors=$(lintian --tag-display-limit 0 "$NEW" 2>&1 | grep -c '^E:')
check "lintian reports no errors ($errors)" test "$errors" -eq 0
lintian --tag-display-limit 0 "$NEW" 2>&1 | grep -v 'root privileges' | sed 's/^/# lintian: /'

# 2. An MTA is installed first (CI's bsd-mailx already brought exim4); dpkg replaces it.
if ! installed exim4-daemon-light && ! installed postfix; then apt_quiet install --no-install-recommends exim4-daemon-light || skip "cannot install exim4-daemon-light"; fi
other=$(installed postfix && echo postfix || echo exim4-daemon-light)
check "$other is installed before mailshim" installed "$other"
# dpkg alone cannot swap MTAs: the installed one's own "Conflicts: mail-transport-agent" is
# violated by any package that provides it, and dpkg only removes packages the *new* one replaces.
# It must refuse and change nothing; apt (as operators install a .deb) removes the old MTA.
before=$(readlink -f /usr/sbin/sendmail)
dpkg -i "$OLD" >"$WORK/dpkg.log" 2>&1
status=$?
check "dpkg -i over $other refuses (conflicting packages) and changes nothing" bash -c "[ $status -ne 0 ] && grep -q 'conflicting packages' '$WORK/dpkg.log' && [ \"\$(readlink -f /usr/sbin/sendmail)\" = '$before' ]"
apt_quiet install "$OLD"
check "apt-get install ./mailshim.deb installs it" installed mailshim
check "and removes $other (Provides/Conflicts/Replaces: mail-transport-agent)" bash -c "! dpkg-query -W -f='\${db:Status-Status}' $other 2>/dev/null | grep -qx installed"
check "/usr/sbin/sendmail is mailshim's" test "$(readlink -f /usr/sbin/sendmail)" = /usr/lib/mailshim/bin/sendmail
check "/usr/lib/sendmail, mailq and newaliases are mailshim's" bash -c '[ "$(readlink -f /usr/lib/sendmail)" = /usr/lib/mailshim/bin/sendmail ] && [ "$(readlink -f /usr/bin/mailq)" = /usr/lib/mailshim/bin/mailq ] && [ "$(readlink -f /usr/bin/newaliases)" = /usr/lib/mailshim/bin/newaliases ]'
check "the mailshim user exists" getent passwd mailshim
check "mailshim --version runs" /usr/sbin/mailshim --version
check "mailshim check-config accepts the packaged config" /usr/sbin/mailshim check-config --config /etc/mailshim/mailshim.toml
check "man pages are installed" bash -c 'for p in man8/mailshim.8.gz man8/sendmail.8.gz man5/mailshim.toml.5.gz; do zcat /usr/share/man/$p | grep -q "^\.TH" || exit 1; done'

# 3. Packages that want an MTA do not pull another one back.
apt_quiet install mailutils cron
check "apt-get install mailutils cron keeps mailshim as the MTA" bash -c "dpkg-query -W -f='\${db:Status-Status}' mailshim | grep -qx installed && ! dpkg-query -W -f='\${db:Status-Status}' exim4-daemon-light postfix 2>/dev/null | grep -qx installed"

# 4. `mail root`, with the daemon down (maildrop) and up (socket), reaches the capture upstream.
echo "while the daemon was down" | mail -s "package test 1" root
check "mail(1) with the daemon down leaves the message in the maildrop" bash -c 'ls -A /var/lib/mailshim/maildrop | grep -q .'
start_daemon && ok "the daemon starts from the packaged config as user mailshim" || not_ok "the daemon starts"
check "the maildrop message reaches the outbox" delivered "while the daemon was down"
echo "hi" | mail -s "package test 2" root
check "echo hi | mail -s t root reaches the capture upstream" delivered "package test 2"

# 5. Upgrade with mail queued: point the (locally modified) conffile at a closed port, queue a
# message, upgrade, point it back: the queued message is delivered and the local edit survived.
stop_daemon
cp /etc/mailshim/mailshim.toml "$WORK/mailshim.toml.orig"
cat >>/etc/mailshim/mailshim.toml <<'TOML'
# package test: an upstream that is down, tried first
[[upstream]]
name = "down"
type = "smtp"
host = "127.0.0.1"
port = 9
tls = "none"
TOML
# The capture upstream must not take it: make "down" the only upstream for now.
python3 - <<'PY'
import re
p = '/etc/mailshim/mailshim.toml'
s = open(p).read()
s = re.sub(r'\[\[upstream\]\]\nname = "outbox"\ntype = "maildir"\npath = "/var/lib/mailshim/outbox"\n', '', s)
open(p, 'w').write(s)
PY
start_daemon
echo "queued across the upgrade" | /usr/sbin/sendmail -i root
for _ in $(seq 50); do /usr/sbin/mailshim queue list --config /etc/mailshim/mailshim.toml 2>/dev/null | grep -q . && break; sleep 0.2; done
queued=$(/usr/sbin/mailshim queue list --json --config /etc/mailshim/mailshim.toml 2>/dev/null | grep -c '"id"')
check "a message is queued before the upgrade ($queued)" test "$queued" -ge 1
stop_daemon
dpkg -i "$NEW" >"$WORK/dpkg.log" 2>&1
check "dpkg -i upgrades 0.0.9 → $(dpkg-query -W -f='${Version}' mailshim)" test $? -eq 0
check "the local edit of the conffile survived the upgrade" grep -q 'name = "down"' /etc/mailshim/mailshim.toml
cp "$WORK/mailshim.toml.orig" /etc/mailshim/mailshim.toml
start_daemon
# The message waits for its next retry (minutes away): flush makes it due now. The daemon may still
# be importing or opening its control socket, so ask until it answers, and show what it said.
for _ in $(seq 20); do /usr/sbin/mailshim queue flush --config /etc/mailshim/mailshim.toml >"$WORK/flush.log" 2>&1 && break; sleep 0.5; done
sed 's/^/# queue flush: /' "$WORK/flush.log"
check "mail queued before the upgrade is delivered after it" delivered "queued across the upgrade"
stop_daemon

# 6. Remove keeps spool and config; purge deletes them. bsd-mailx depends on an MTA: take it out
# first (dpkg would rightly refuse), and put it back at the end.
had_mailx=no
if installed bsd-mailx; then had_mailx=yes; dpkg -r bsd-mailx >/dev/null 2>&1; fi
dpkg -r mailshim >"$WORK/dpkg.log" 2>&1
check "dpkg -r mailshim succeeds" test $? -eq 0
sed 's/^/# dpkg -r: /' "$WORK/dpkg.log" | grep -i kept
check "dpkg -r keeps the spool and the config" bash -c '[ -d /var/lib/mailshim/spool ] && [ -f /etc/mailshim/mailshim.toml ]'
check "dpkg -r removes /usr/sbin/sendmail" test ! -e /usr/sbin/sendmail
dpkg -P mailshim >"$WORK/dpkg.log" 2>&1
check "dpkg -P mailshim succeeds" test $? -eq 0
check "dpkg -P deletes the spool and the config" bash -c '[ ! -e /var/lib/mailshim ] && [ ! -e /etc/mailshim ]'
[ "$had_mailx" = yes ] && apt_quiet install --no-install-recommends bsd-mailx

# 7. npm pack → npm install -g → it runs (the path for hosts without the package).
(cd "$WORK" && npm pack --silent "$REPO" >pack.txt 2>"$WORK/pack.log")
tarball="$WORK/$(tail -1 "$WORK/pack.txt")"
check "npm pack produces a tarball" test -f "$tarball"
check "the tarball holds the compiled code and no tests" bash -c "tar -tzf '$tarball' | grep -q 'package/dist/src/cli/main.js' && ! tar -tzf '$tarball' | grep -q 'package/dist/test/'"
npm install -g --prefix "$WORK/global" --no-audit --no-fund "$tarball" >"$WORK/npm.log" 2>&1
check "npm install -g installs the tarball" test -x "$WORK/global/bin/mailshim"
check "the installed mailshim runs" "$WORK/global/bin/mailshim" --version
check "mailshim install --systemd still stages the units" bash -c "'$WORK/global/bin/mailshim' install --systemd --prefix '$WORK/stage' >/dev/null && [ -f '$WORK/stage/etc/systemd/system/mailshim.service' ]"

finish
