#!/usr/bin/env bash
# The aarch64 wheel, proven on arm64 (Vista's CPU), not only built: builds it
# (scripts/build-wheel.sh --target aarch64), installs it with pip into a real
# Debian arm64 userland and runs it there against the fake Tapis on this
# machine's loopback, over TLS (a forwarder with a CA made for the run):
# tapis-agent, tapis-cred login (--password-stdin), establish of three
# systems, token, and the Python package with the tapipy plugin making calls.
# Every arm64 program (Debian's python3 and pip, the wheel's tapis-agent and
# tapis-cred) runs under qemu-user through the kernel's binfmt_misc, as it
# would on an arm64 machine.
#
# The userland is Debian bookworm arm64 (debootstrap --foreign, then its
# second stage under qemu) with a venv holding the real tapipy from PyPI;
# both are cached in target/arm64/ (the first run takes minutes, reruns
# reuse them: rm -rf target/arm64 starts over).
#
# Needs root (debootstrap, chroot, a mount namespace for /proc) and
# Debian's debootstrap and qemu-user-static (installed with apt-get when
# missing); registers qemu-aarch64 with binfmt_misc when it is not already
# (the F flag: the interpreter is opened now, so it works inside the
# chroot), and removes that entry again at the end.
#
# Usage: sudo bash scripts/test-arm64.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

suite="bookworm"
mirror="http://deb.debian.org/debian"
# The userland's venv holds these; a change rebuilds the venv.
venv_pins=("tapipy==25.4.0")
cache="$root/target/arm64"
rootfs="$cache/rootfs"
# Bounds for the fake and the agent to come up, and for the whole run inside.
wait_secs=30
run_secs=600

if [ "$(id -u)" -ne 0 ]; then
  echo "test-arm64.sh needs root (debootstrap, chroot, mounts): sudo bash $0" >&2
  exit 1
fi

echo "--- host tools: debootstrap, qemu-user-static"
if ! command -v debootstrap >/dev/null || [ ! -x /usr/bin/qemu-aarch64-static ]; then
  apt-get update -qq
  apt-get install -y -qq debootstrap qemu-user-static >/dev/null
fi

# What this run changes on the host is undone when it ends: the binfmt_misc
# entry and mount it added, the fake Tapis, the temporary directory.
binfmt=/proc/sys/fs/binfmt_misc
mounted=0
registered=0
work=""
fake_pid=""
tls_pid=""
cleanup() {
  if [ -n "$fake_pid" ]; then kill "$fake_pid" 2>/dev/null || true; fi
  if [ -n "$tls_pid" ]; then kill "$tls_pid" 2>/dev/null || true; fi
  if [ -n "$work" ]; then rm -rf "$work"; fi
  if [ "$registered" = 1 ]; then echo -1 >"$binfmt/qemu-aarch64" || true; fi
  if [ "$mounted" = 1 ]; then umount "$binfmt" || true; fi
}
trap cleanup EXIT

echo "--- binfmt_misc: qemu-aarch64"
if [ ! -e "$binfmt/register" ]; then
  mount -t binfmt_misc binfmt_misc "$binfmt"
  mounted=1
fi
if [ ! -e "$binfmt/qemu-aarch64" ]; then
  # Debian's entry (qemu-user-static), flags OPF: F opens the interpreter
  # once, here, so that the chroot needs no copy of it.
  cat /usr/lib/binfmt.d/qemu-aarch64.conf >"$binfmt/register"
  registered=1
fi
if ! grep -qx enabled "$binfmt/qemu-aarch64" || ! grep -q '^flags: .*F' "$binfmt/qemu-aarch64"; then
  echo "binfmt_misc's qemu-aarch64 entry is disabled or lacks the F flag:" >&2
  cat "$binfmt/qemu-aarch64" >&2
  exit 1
fi

echo "--- the aarch64 wheel and the (host) fake Tapis"
bash scripts/build-wheel.sh --target aarch64
wheel="$(ls "$root"/target/wheels/tapis_agent-*_aarch64.whl)"
cargo build -q -p tapis-agent-tests --bin fake-tapis
fake_bin="$root/target/debug/fake-tapis"

# Runs a command inside the userland, in a mount namespace of its own (its
# /proc disappears with it: nothing stays mounted under target/), with an
# environment of its own: a proxy's variables pass, and pip trusts the
# certificates this machine trusts (copied in: a proxy may sign with its own).
in_arm64() {
  local pass=() v
  for v in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
    if [ -n "${!v:-}" ]; then pass+=("$v=${!v}"); fi
  done
  unshare --mount --propagation private -- bash -c \
    'mount -t proc proc "$0/proc" && exec chroot "$0" "$@"' "$rootfs" \
    env -i PATH=/usr/bin:/bin HOME=/root LANG=C.UTF-8 PIP_CERT=/etc/ssl/host-ca-certificates.crt \
    "${pass[@]}" "$@"
}

if [ ! -e "$rootfs/.tapis-rootfs-done" ]; then
  echo "--- debootstrap $suite arm64 into $rootfs (once)"
  rm -rf "$rootfs" "$rootfs.tmp"
  debootstrap --foreign --arch arm64 --variant=minbase \
    --include=python3,python3-venv,ca-certificates "$suite" "$rootfs.tmp" "$mirror"
  chroot "$rootfs.tmp" /debootstrap/debootstrap --second-stage
  chroot "$rootfs.tmp" useradd --create-home --uid 1000 tester
  mv "$rootfs.tmp" "$rootfs"
  touch "$rootfs/.tapis-rootfs-done"
fi
if [ "$(cat "$rootfs/.tapis-venv" 2>/dev/null)" != "${venv_pins[*]}" ]; then
  echo "--- venv with ${venv_pins[*]} in the arm64 userland (once)"
  cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
  cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/host-ca-certificates.crt"
  rm -rf "$rootfs/opt/venv"
  in_arm64 /usr/bin/python3 -m venv /opt/venv
  in_arm64 /opt/venv/bin/pip install --quiet --disable-pip-version-check "${venv_pins[@]}"
  echo "${venv_pins[*]}" >"$rootfs/.tapis-venv"
fi

echo "--- pip install $(basename "$wheel") in the arm64 userland"
cp "$wheel" "$rootfs/tmp/"
in_arm64 /opt/venv/bin/pip install --quiet --disable-pip-version-check --force-reinstall --no-deps \
  "/tmp/$(basename "$wheel")"

for bin in tapis-agent tapis-cred; do
  if ! readelf -h "$rootfs/opt/venv/bin/$bin" | grep -q 'Machine: *AArch64'; then
    echo "$rootfs/opt/venv/bin/$bin is not an AArch64 program" >&2
    exit 1
  fi
done

# The URL a server started in the background prints as "listening on URL"
# to $1.out within wait_secs; else what it said in $1.err, and a failure.
# $2 names it.
listening_url() {
  local url=""
  for _ in $(seq 1 $((wait_secs * 10))); do
    url="$(sed -n 's/^listening on //p' "$1.out" 2>/dev/null)"
    [ -n "$url" ] && break
    sleep 0.1
  done
  if [ -z "$url" ]; then
    echo "$2 did not start:" >&2
    cat "$1.err" >&2
    return 1
  fi
  echo "$url"
}

echo "--- fake Tapis on the host's loopback"
work="$(mktemp -d)"
"$fake_bin" --listen 127.0.0.1:0 >"$work/fake.out" 2>"$work/fake.err" &
fake_pid=$!
url="$(listening_url "$work/fake" "the fake Tapis")"
echo "fake Tapis at $url"

# Tapis is HTTPS: the programs in the userland reach the fake through a TLS
# forwarder on the host, with a certificate of a CA made for this run, so
# that their TLS (rustls with ring, built for aarch64 by zig) runs too.
echo "--- TLS in front of the fake"
(
  cd "$work"
  openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
    -keyout ca.key -out ca.pem -days 1 -subj "/CN=tapis-agent arm64 test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" 2>/dev/null
  openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
    -keyout key.pem -out server.csr -subj "/CN=127.0.0.1" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >server.ext
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
    -out cert.pem -days 1 -extfile server.ext 2>/dev/null
)
cat >"$work/tls_forward.py" <<'PYFWD'
"""HTTPS on 127.0.0.1 (an ephemeral port) forwarded to the fake's HTTP."""
import http.client
import http.server
import ssl
import sys
import urllib.parse

cert, key, upstream = sys.argv[1:4]
up = urllib.parse.urlsplit(upstream)
HOP = {"host", "connection", "keep-alive", "transfer-encoding", "content-length", "server", "date"}


class Forward(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=30)
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in HOP:
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = forward

    def log_message(self, *args: object) -> None:
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Forward)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
server.socket = context.wrap_socket(server.socket, server_side=True)
print(f"listening on https://127.0.0.1:{server.server_address[1]}", flush=True)
server.serve_forever()
PYFWD
python3 "$work/tls_forward.py" "$work/cert.pem" "$work/key.pem" "$url" >"$work/tls.out" 2>"$work/tls.err" &
tls_pid=$!
https_url="$(listening_url "$work/tls" "the TLS forwarder")"
cp "$work/ca.pem" "$rootfs/tmp/tapis-arm64-ca.pem"
echo "fake Tapis over TLS at $https_url"

# The run inside, as an unprivileged user: the programs of the wheel's venv
# only, the agent started explicitly, then the client and the plugin; TLS
# trusts this run's CA only (the agent reads SSL_CERT_FILE; tapipy is given
# the file as its `verify`).
cat >"$rootfs/tmp/tapis-arm64-run.sh" <<'EOF'
set -euo pipefail
url="$1"
export HOME=/home/tester PATH=/opt/venv/bin:/usr/bin:/bin
export SSL_CERT_FILE=/tmp/tapis-arm64-ca.pem
cd "$HOME"
rm -rf .local/state/tapis-agent /tmp/tapis-agent-1000
echo "uname -m: $(uname -m); python: $(python3 -c 'import platform; print(platform.machine(), platform.python_version())')"
test "$(uname -m)" = aarch64
tapis-agent --version
tapis-cred --version
tapis-agent --base-url "$url" 2>"$HOME/agent.log" &
agent=$!
trap 'kill $agent 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
  tapis-cred status >/dev/null 2>&1 && break
  sleep 0.1
done
echo testpass | tapis-cred login --username testuser --password-stdin
tapis-cred establish stampede3 ls6 frontera
token="$(tapis-cred token)"
test -n "$token"
echo "token: ${#token} characters"
python3 - "$url" <<'PY'
import os
import sys
import tapis_agent
from tapipy.tapis import Tapis

url = sys.argv[1]
st = tapis_agent.status()
assert st.agent.base_url == url, st.agent.base_url
print("status:", st.login.state, st.login.username)
t = Tapis(base_url=url, plugins=["tapis_agent.tapipy"], verify=os.environ["SSL_CERT_FILE"])
for system in ("stampede3", "ls6", "frontera"):
    s = t.systems.getSystem(systemId=system)
    print("tapipy getSystem:", s.id, s.defaultAuthnMethod)
again = tapis_agent.establish("stampede3", "ls6", "frontera")
assert all(r.cached for r in again), again
print("establish again from Python: cached")
PY
kill "$agent"
wait "$agent" 2>/dev/null || true
trap - EXIT
echo "arm64 run: ok"
EOF
echo "--- the arm64 run"
start=$(date +%s)
timeout "$run_secs" unshare --mount --propagation private -- bash -c \
  'mount -t proc proc "$0/proc" && exec chroot --userspec=1000:1000 "$0" env -i LANG=C.UTF-8 /bin/bash /tmp/tapis-arm64-run.sh "$1"' \
  "$rootfs" "$https_url"
echo "arm64 run took $(($(date +%s) - start)) s"

# What the fake saw: one login, the establishes, the plugin's calls.
stats="$(python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1] + "/_fake/stats", timeout=10).read().decode())' "$url")"
echo "fake Tapis stats: $stats"
python3 - "$stats" <<'EOF'
import json, sys
calls = json.loads(sys.argv[1])["calls"]
# One login (it registers one OAuth client), three credentials created, the
# establishes' and the plugin's getSystem calls, nothing the fake lacks.
assert calls.get("create_client") == 1, calls
assert calls.get("createUserCredential") == 3, calls
assert calls.get("getSystem") == 6, calls
assert "unmatched" not in calls, calls
EOF
echo "test-arm64: ok"
