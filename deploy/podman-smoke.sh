#!/bin/sh
# Runs a built Missive image as far as a host without a working OCI runtime allows (docs/deploy.md,
# "What the tests exercise"): the image's root file system, mounted READ-ONLY, with a writable
# /var/lib/missive, entered with chroot as the image's user (10001) and the image's environment.
# No namespaces or cgroups: this checks the image's contents, user, paths and read-only root,
# not the container runtime. Usage, as root: deploy/podman-smoke.sh [image] (default missive:latest).
# Build the image with `--format docker`: the OCI format has no HEALTHCHECK and podman drops it.
set -eu
image=${1:-missive:latest}
port=18888
cid=$(podman create "$image" serve)
mnt=$(podman mount "$cid")
ro=$(mktemp -d)
data=$(mktemp -d)
cleanup() {
  [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null || true
  umount "$ro/var/lib/missive" 2>/dev/null || true
  umount "$ro/proc" 2>/dev/null || true
  umount "$ro" 2>/dev/null || true
  podman umount "$cid" >/dev/null 2>&1 || true
  podman rm "$cid" >/dev/null 2>&1 || true
  rm -rf "$ro" "$data" "$data.log"
}
trap cleanup EXIT
mount --bind "$mnt" "$ro"
mount -o remount,ro,bind "$ro"
mount -t proc proc "$ro/proc"
chown 10001:10001 "$data" && chmod 0700 "$data"
mount --bind "$data" "$ro/var/lib/missive"

# The image's own environment (ENV), then the port for this run.
envs=$(podman image inspect "$image" --format '{{range .Config.Env}}{{.}}{{"\n"}}{{end}}')
run() { env -i $envs MISSIVE_PORT=$port "$@"; }

echo "--- the root file system is read-only:"
if chroot --userspec=10001:10001 "$ro" /bin/sh -c 'touch /opt/missive/x' 2>/dev/null; then echo "FAIL: writable"; exit 1; fi
echo "ok"
echo "--- missive --version, as uid $(chroot --userspec=10001:10001 "$ro" /usr/bin/id -u):"
run chroot --userspec=10001:10001 "$ro" node /opt/missive/dist/bin/missive.js --version
echo "--- missive serve:"
# exec: $! must be the supervisor itself (env and chroot exec into it), not a subshell.
(exec env -i $envs MISSIVE_PORT=$port chroot --userspec=10001:10001 "$ro" node /opt/missive/dist/bin/missive.js serve > "$data.log" 2>&1) &
pid=$!
i=0
until curl -s -o /dev/null "http://127.0.0.1:$port/"; do
  i=$((i + 1)); [ $i -gt 150 ] && { echo "FAIL: no answer"; cat "$data.log"; exit 1; }; sleep 0.2
done
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v2/ping" -H 'Client-ID: 00000000-0000-4000-8000-000000000000' -H 'X-Project-ID: smoke')
echo "ping: $code"; [ "$code" = 204 ]
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$port/v2/queues/smoke/messages" -H 'Client-ID: 00000000-0000-4000-8000-000000000000' -H 'X-Project-ID: smoke' -H 'Content-Type: application/json' -d '{"messages":[{"body":1}]}')
echo "post: $code"; [ "$code" = 201 ]
echo "--- the HEALTHCHECK, as the image declares it:"
hc=$(podman image inspect "$image" --format '{{range .HealthCheck.Test}}{{.}}{{"\n"}}{{end}}' | sed 1d)
[ -n "$hc" ] || { echo "FAIL: the image has no HEALTHCHECK (built without --format docker?)"; exit 1; }
printf '%s\n' "$hc" | { read -r bin; read -r flag; read -r script; run chroot --userspec=10001:10001 "$ro" "$bin" "$flag" "$script"; } && echo "healthy"
echo "--- stop with SIGTERM:"
kill -TERM "$pid"; status=0; wait "$pid" || status=$?
echo "exit $status"; [ "$status" = 0 ]
ls -l "$data"
pid=
echo "PASS"
