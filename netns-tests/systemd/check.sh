#!/bin/bash
# Runs inside the systemd-nspawn container of netns-tests/systemd-unit.test.ts
# as the oneshot pilot-check.service, once pilot-tun.service has started.
# Records what the host-side test asserts into /pilot-results (bind-mounted
# from the host); the unit powers the container off when this exits, however
# it exits (SuccessAction=/FailureAction=poweroff).
#
#   phase 1: the shipped unit (only ExecStart changed by a drop-in)
#   phase 2: the same unit without CAP_NET_BIND_SERVICE: up must degrade, not die
set -u
out=/pilot-results
pt() { /opt/pilot-tun/bin/pilot-tun.js "$@"; }
echo started > "$out/started"
# The journal goes to the host however this ends (a failed start explains itself there).
trap 'journalctl -b -o cat -u pilot-tun -u pilot-registry -u pilot-beacon > "$out/journal.txt" 2>&1' EXIT

# Until the control socket answers and pilot0 has a global IPv6 address (or
# 20 s; both phases failing still ends well within TimeoutStartSec=).
wait_up() {
  local tag=$1
  for _ in $(seq 1 40); do
    if pt status --json > "$out/status$tag.json" 2> "$out/status$tag.err" &&
       ip -6 addr show dev pilot0 scope global 2> /dev/null | grep -q inet6; then
      return 0
    fi
    sleep 0.5
  done
  return 1
}

record_service() {
  local tag=$1
  systemctl show pilot-tun -p ActiveState -p SubState -p MainPID -p User -p DynamicUser -p NRestarts \
    -p MemoryMax -p TasksMax -p LimitNOFILE > "$out/show$tag.txt"
  local pid
  pid=$(systemctl show -p MainPID --value pilot-tun)
  grep -E '^(Uid|Gid|CapEff|CapAmb|Threads|VmRSS):' "/proc/$pid/status" > "$out/proc-status$tag.txt" 2>&1
  grep '^Max open files' "/proc/$pid/limits" > "$out/limits$tag.txt" 2>&1
}

# ---- phase 1: the shipped unit ----
wait_up ''
record_service ''
ip -6 addr show dev pilot0 > "$out/ip-addr.txt" 2>&1
{
  echo "default $(cat /proc/sys/net/ipv6/conf/default/disable_ipv6)"
  echo "pilot0 $(cat /proc/sys/net/ipv6/conf/pilot0/disable_ipv6)"
} > "$out/sysctl.txt" 2>&1
stat -c '%a %u %n' /run/pilot-tun /run/pilot-tun/control.sock > "$out/run-dir.txt" 2>&1
addr=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).tun.address)' "$out/status.json")
name="$PILOT_TEST_HOSTNAME.pilot"
# node's resolver always (the assertion), dig when installed (for people).
node -e '
  const { Resolver } = require("node:dns").promises
  const r = new Resolver({ timeout: 2000, tries: 2 })
  r.setServers([process.argv[1]])
  r.resolve6(process.argv[2]).then(
    (answers) => console.log(JSON.stringify({ answers })),
    (err) => console.log(JSON.stringify({ error: err.code ?? err.message })))
' "$addr" "$name" > "$out/dns.json" 2>&1
if command -v dig > /dev/null; then dig +time=2 +tries=2 "@$addr" "$name" AAAA > "$out/dig.txt" 2>&1; fi
# The registry's TLS certificate, kept in its StateDirectory, and the pin it presents on port 9000.
stat -c '%a %u %n' /var/lib/private/pilot-registry/registry-tls-cert.pem /var/lib/private/pilot-registry/registry-tls-key.pem > "$out/registry-tls.txt" 2>&1
stored=$(pt registry pin --store /var/lib/pilot-registry/registry.db 2>&1)
node -e '
  const s = require("node:tls").connect({ host: "127.0.0.1", port: 9000, rejectUnauthorized: false }, () => {
    const presented = require("node:crypto").createHash("sha256").update(s.getPeerCertificate().raw).digest("hex")
    console.log(JSON.stringify({ stored: process.argv[1], presented })); s.destroy()
  })
  s.on("error", (e) => console.log(JSON.stringify({ stored: process.argv[1], error: e.message })))
' "$stored" > "$out/registry-pin.json" 2>&1

# ---- phase 2: no CAP_NET_BIND_SERVICE (a runtime drop-in; empty assignments reset the sets) ----
mkdir -p /run/systemd/system/pilot-tun.service.d
cat > /run/systemd/system/pilot-tun.service.d/zz-no-bind.conf <<'UNIT'
[Service]
CapabilityBoundingSet=
CapabilityBoundingSet=CAP_NET_ADMIN
AmbientCapabilities=
AmbientCapabilities=CAP_NET_ADMIN
UNIT
systemctl daemon-reload
systemctl restart pilot-tun
wait_up -nobind
record_service -nobind
echo finished > "$out/done"
