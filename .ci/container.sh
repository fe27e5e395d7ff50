#!/usr/bin/env bash
# Container image checks (issue 16). Run by .ci/run as root on a fresh Debian 12 machine: installs
# buildah from Debian if missing, builds the image FROM scratch (packaging/container/build.sh) and
# checks it from the inside with `buildah run --isolation chroot`: version, validate on a mounted
# config, demo, SIGTERM as PID 1, health, size and user. Needs no Docker daemon and no registry.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
t0=$(date +%s)
step() { echo; echo "== $* [$(($(date +%s) - t0))s]"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
version=0.0.0-ci
image=localhost/mosaic-watch:ci
uid=10001                 # the image's default user (Containerfile)
max_bytes=$((25 * 1000 * 1000)) # 25 MB
tmp=$(mktemp -d)
ctrs=()
runner= daemon= daemon_log=
cleanup() {
    if [ -n "$daemon" ]; then kill -KILL "$daemon" "$runner" 2>/dev/null || true; fi
    for c in "${ctrs[@]}"; do buildah rm "$c" >/dev/null 2>&1 || true; done
    for i in "$image" "$image-arm64"; do buildah rmi "$i" >/dev/null 2>&1 || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT

step "tools"
missing=()
command -v buildah >/dev/null || missing+=(buildah)
[ -s /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)
[ -s /usr/share/zoneinfo/Europe/Berlin ] || missing+=(tzdata)
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
buildah --version

step "build the image (static binary, FROM scratch, nothing pulled)"
VERSION=$version packaging/container/build.sh "$image"

step "size, user, entrypoint, volumes, labels"
cfg() { buildah inspect --type image --format "$1" "$image"; }
[ "$(cfg '{{.Docker.Config.User}}')" = "$uid:$uid" ] || fail "default user: $(cfg '{{.Docker.Config.User}}')"
[ "$(cfg '{{.Docker.Config.Entrypoint}}')" = "[/usr/local/bin/mosaic-watch]" ] || fail "entrypoint"
[ "$(cfg '{{.Docker.Config.Cmd}}')" = "[run --config /config/config.yaml]" ] || fail "command"
cfg '{{.Docker.Config.Volumes}}' | grep -q '/config' || fail "no /config volume"
cfg '{{.Docker.Config.Volumes}}' | grep -q '/state' || fail "no /state volume"
cfg '{{.Docker.Config.Env}}' | grep -q 'MOSAIC_WATCH_STATE_DIR=/state' || fail "no MOSAIC_WATCH_STATE_DIR"
cfg '{{.Docker.Config.Healthcheck.Test}}' | grep -q 'mosaic-watch health' || fail "no HEALTHCHECK"
cfg '{{index .Docker.Config.Labels "org.opencontainers.image.version"}}' | grep -qx "$version" ||
    fail "version label"
echo "ok  user $uid:$uid, entrypoint, volumes, HEALTHCHECK, labels"

# Folders on the host, owned by the image's user as a user's share would be.
mkdir -p "$tmp/config" "$tmp/state" "$tmp/media/inbox/captions" "$tmp/media/outbox"
cp packaging/container/config.yaml "$tmp/config/config.yaml"
chown -R "$uid:$uid" "$tmp/state" "$tmp/media"
chmod 0755 "$tmp"
ctr=$(buildah from --quiet "$image")
ctrs+=("$ctr")
# The image's size: the bytes of its files (what `docker images` shows, give or take the tar
# headers), and compressed, as a release archive ships it.
size=$(du -s --apparent-size -B1 "$(buildah mount "$ctr")" | cut -f1)
buildah umount "$ctr" >/dev/null
buildah push --quiet "$image" "oci-archive:$tmp/image.tar" >/dev/null
echo "image size: $size bytes ($(awk -v b="$size" 'BEGIN{printf "%.1f", b/1e6}') MB); OCI archive:" \
    "$(stat -c %s "$tmp/image.tar") bytes"
rm -f "$tmp/image.tar"
[ "$size" -lt "$max_bytes" ] || fail "the image holds $size bytes, over 25 MB"
key=mk_test_0123456789abcdef
token=ci-http-token-0123456789
inside() { # [buildah run options...] -- command args: run in the image as its default user
    buildah run --isolation chroot "$@"
}
mounts=(-v "$tmp/config:/config:ro" -v "$tmp/state:/state" -v "$tmp/media:/media")

step "in the image: version"
out=$(inside "$ctr" -- mosaic-watch version)
echo "$out"
grep -q "mosaic-watch $version" <<<"$out" || fail "version"

step "in the image: validate a mounted config (state_dir defaults to /state)"
if ! out=$(inside "${mounts[@]}" --env MOSAIC_API_KEY=$key --env MOSAIC_WATCH_HTTP_TOKEN=$token \
    "$ctr" -- mosaic-watch validate --config /config/config.yaml 2>&1); then
    echo "$out"
    fail "validate in the image"
fi
echo "$out" | head -4
grep -q '^State: *\/state$' <<<"$out" || fail "state_dir is not /state"

step "in the image: demo --dir /state/demo (as the non-root user, TZ from the zoneinfo)"
if ! out=$(inside "${mounts[@]}" --env TZ=Asia/Tokyo "$ctr" -- \
    mosaic-watch demo --dir /state/demo --verbose 2>&1); then
    echo "$out"
    fail "demo in the image"
fi
echo "$out" | grep -E '^[0-9]+\. ' | tail -3
outputs=$(find "$tmp/state/demo/outbox" -type f | wc -l)
[ "$outputs" -ge 1 ] || fail "the demo wrote no outputs"
owners=$(find "$tmp/state/demo" -newer "$tmp/config/config.yaml" -printf '%u:%g\n' | sort -u)
[ "$owners" = "$uid:$uid" ] || fail "files written in the image are owned by $owners, want $uid:$uid"
echo "ok  $outputs outputs; every file written is owned by $owners (not root)"
grep -q 'time=[0-9T:.-]*+09:00 ' <<<"$out" || fail "TZ=Asia/Tokyo not applied (zoneinfo missing?)"
echo "ok  TZ=Asia/Tokyo gives +09:00 log times"

# The daemon, started by start_daemon, stopped by stop_daemon.
daemon_env=(MOSAIC_API_KEY=$key MOSAIC_WATCH_HTTP_TOKEN=$token)
wait_log() { # text: wait up to 30 s for the daemon's log to show it
    local deadline=$(($(date +%s) + 30))
    until grep -q "$1" "$daemon_log"; do
        kill -0 "$runner" 2>/dev/null || { cat "$daemon_log"; fail "the daemon exited"; }
        [ "$(date +%s)" -lt "$deadline" ] || { cat "$daemon_log"; fail "no \"$1\" in 30s"; }
        sleep 0.1
    done
}
descendant() { # pid name: the process called name below pid
    local c
    for c in $(ps -o pid= --ppid "$1"); do
        if [ "$(cat "/proc/$c/comm" 2>/dev/null)" = "$2" ]; then echo "$c"; return; fi
        descendant "$c" "$2"
    done
}
health() { # expected exit code: mosaic-watch health, in the image, against the running daemon
    local rc=0
    out=$(inside -v "$tmp/config:/config:ro" "${daemon_env[@]/#/--env=}" "$ctr" -- \
        mosaic-watch health --config /config/config.yaml 2>&1) || rc=$?
    echo "health: exit $rc: $(head -1 <<<"$out")"
    [ "$rc" = "$1" ] || fail "health exited $rc, want $1: $out"
}
stop_daemon() { # SIGTERM to the daemon itself; a clean exit 0 within shutdown_timeout (10s)
    local start=$(date +%s%N) rc=0
    kill -TERM "$daemon"
    wait "$runner" || rc=$?
    local ms=$((($(date +%s%N) - start) / 1000000))
    daemon=
    echo "SIGTERM to exit: ${ms} ms, exit $rc"
    [ "$rc" = 0 ] || { cat "$daemon_log"; fail "exit $rc after SIGTERM"; }
    [ "$ms" -le 10000 ] || fail "took ${ms} ms to stop, over shutdown_timeout (10s)"
    grep -q 'msg="stopped cleanly"' "$daemon_log" || { cat "$daemon_log"; fail "not stopped cleanly"; }
}
# A daemon that needs no Mosaic (no jobs) and listens on a free port.
port=$(perl -MIO::Socket::INET -e 'print IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1:0")->sockport')
sed -i -e "s/0.0.0.0:8787/0.0.0.0:$port/" -e 's#^mosaic:$#mosaic:\n  base_url: http://127.0.0.1:9#' \
    "$tmp/config/config.yaml"

step "in the image: run under buildah run, health, SIGTERM"
daemon_log="$tmp/run.log"
inside "${mounts[@]}" "${daemon_env[@]/#/--env=}" "$ctr" -- \
    mosaic-watch run --config /config/config.yaml >"$daemon_log" 2>&1 &
runner=$!
wait_log 'msg="mosaic-watch started"'
wait_log 'msg="http listening"'
# buildah run does not forward signals (it kills its child), so signal the daemon directly.
daemon=$(descendant "$runner" mosaic-watch)
[ -n "$daemon" ] || fail "no mosaic-watch process under buildah run"
[ "$(awk '/^Uid:/{print $2}' "/proc/$daemon/status")" = "$uid" ] || fail "the daemon does not run as $uid"
health 0
stop_daemon
health 1

step "in the image: run as PID 1 (own PID namespace), SIGTERM"
# buildah's chroot isolation makes no PID namespace; unshare does, over the same image files.
# As PID 1 the kernel drops every signal the process does not handle: SIGTERM must still work.
mnt=$(buildah mount "$ctr")
mkdir -p "$mnt/media"
daemon_log="$tmp/pid1.log"
env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin MOSAIC_WATCH_STATE_DIR=/state "${daemon_env[@]}" \
    unshare --pid --fork --kill-child --mount --propagation private sh -c '
        set -e
        for d in config state media; do mount --bind "$1/$d" "$2/$d"; done
        exec chroot --userspec="$3:$3" "$2" /usr/local/bin/mosaic-watch run --config /config/config.yaml
    ' sh "$tmp" "$mnt" "$uid" >"$daemon_log" 2>&1 &
runner=$!
wait_log 'msg="mosaic-watch started"'
daemon=$(descendant "$runner" mosaic-watch)
[ -n "$daemon" ] || fail "no mosaic-watch process under unshare"
nspid=$(awk '/^NSpid:/{print $NF}' "/proc/$daemon/status")
[ "$nspid" = 1 ] || fail "the daemon is PID $nspid in its namespace, not 1"
echo "ok  the daemon is PID 1 in its namespace (host PID $daemon), user $uid"
health 0
stop_daemon
buildah umount "$ctr" >/dev/null

step "the linux/arm64 image, as release.sh builds it (no emulation: nothing runs in it)"
ARCH=arm64 VERSION=$version OCI_ARCHIVE="$tmp/arm64.oci.tar" packaging/container/build.sh "$image-arm64"
buildah rmi "$image-arm64" >/dev/null
mkdir "$tmp/arm64"
tar -C "$tmp/arm64" -xf "$tmp/arm64.oci.tar"
grep -rqs '"architecture":"arm64"' "$tmp/arm64/blobs" || fail "the arm64 archive is not for arm64"
echo "ok  $(stat -c %s "$tmp/arm64.oci.tar") bytes, architecture arm64"

step "container checks passed (image $size bytes)"
