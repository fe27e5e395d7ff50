#!/usr/bin/env bash
# Packaging and service checks (issue 5). Run by .ci/run as root on a fresh Debian machine;
# also runnable by hand (the dpkg part needs root). Installs what it needs only if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
t0=$(date +%s)
step() { echo; echo "== $* [$(($(date +%s) - t0))s]"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

step "tools"
missing=()
command -v systemd-analyze >/dev/null || missing+=(systemd)
command -v dpkg-deb >/dev/null || missing+=(dpkg)
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
systemd-analyze --version | head -1

step "service definition tests, systemd-analyze verify, service lifecycle"
# TestSystemdAnalyzeVerify may not skip here. TestServiceLifecycle installs, runs and removes a
# real service as root with this machine's service manager, or says why it skips.
tests='TestSystemd|TestSysv|TestLaunchd|TestStaticPackaging|TestWindowsService|TestKardianos|TestMacProtected|TestEventLog|TestManagedDaemon|TestServiceInstallDryRun|TestServiceCommand|TestServiceLifecycle'
if ! MOSAIC_WATCH_REQUIRE_SYSTEMD_ANALYZE=1 go test -count=1 -v -run "$tests" ./cmd/mosaic-watch/ ./cmd/mosaic-watch/internal/service/ >"$tmp/test.log" 2>&1; then
    cat "$tmp/test.log"
    fail "service tests"
fi
grep -E '^(--- |ok )|service manager:|skip' "$tmp/test.log" || true

step "release build: six static binaries, .deb and .rpm"
version=0.0.0-ci
VERSION=$version packaging/release.sh
for os in linux darwin windows; do
    for arch in amd64 arm64; do
        bin="dist/mosaic-watch_${version}_${os}_${arch}/mosaic-watch"
        [ "$os" = windows ] && bin="$bin.exe"
        [ -s "$bin" ] || fail "missing $bin"
        go version -m "$bin" | grep -q 'CGO_ENABLED=0' || fail "$bin is not built with CGO_ENABLED=0"
        go version -m "$bin" | grep -q "GOOS=$os" || fail "$bin is not for $os"
    done
done
ls dist/*.rpm >/dev/null || fail "no .rpm built"

step "go vet for linux, darwin, windows"
# Same flags as the release builds, so the compiled dependencies are reused.
for os in linux darwin windows; do
    CGO_ENABLED=0 GOOS=$os go vet -trimpath ./cmd/mosaic-watch/
done

if [ "$(id -u)" != 0 ]; then
    echo "not root: skipping the dpkg install/purge check"
    exit 0
fi

step "install the .deb"
arch=$(dpkg --print-architecture)
deb=$(ls dist/mosaic-watch_"${version/-/\~}"_"$arch".deb)
dpkg -s mosaic-watch >/dev/null 2>&1 && dpkg --purge mosaic-watch >/dev/null
dpkg -i "$deb"

check() { # path owner:group mode
    [ -e "$1" ] || fail "$1 missing"
    got=$(stat -c '%U:%G %a' "$1")
    [ "$got" = "$2 $3" ] || fail "$1 is $got, want $2 $3"
    echo "ok  $1  $got"
}
check /usr/bin/mosaic-watch root:root 755
check /etc/mosaic-watch root:mosaic-watch 750
check /etc/mosaic-watch/config.yaml root:mosaic-watch 640
check /etc/mosaic-watch/environment root:root 600
check /var/lib/mosaic-watch mosaic-watch:mosaic-watch 750
check /usr/lib/systemd/system/mosaic-watch.service root:root 644
getent passwd mosaic-watch | grep -Eq ':/var/lib/mosaic-watch:(/usr)?/s?bin/nologin$' || fail "user mosaic-watch: $(getent passwd mosaic-watch)"
/usr/bin/mosaic-watch version | grep -q "mosaic-watch $version" || fail "version: $(/usr/bin/mosaic-watch version)"
runuser -u mosaic-watch -- cat /etc/mosaic-watch/config.yaml >/dev/null || fail "the service user cannot read its config"
if runuser -u nobody -- cat /etc/mosaic-watch/config.yaml >/dev/null 2>&1; then fail "other users can read the config"; fi
systemd-analyze verify /usr/lib/systemd/system/mosaic-watch.service >"$tmp/verify.log" 2>&1 || true
[ ! -s "$tmp/verify.log" ] || { cat "$tmp/verify.log"; fail "systemd-analyze verify of the packaged unit"; }
echo "ok  systemd-analyze verify /usr/lib/systemd/system/mosaic-watch.service"

step "validate the installed example config (agent id and folders set)"
cfg="$tmp/config.yaml"
cp /etc/mosaic-watch/config.yaml "$cfg"
sed -i -e "s#/srv/video#$tmp/video#g" -e "s#state_dir: .*#state_dir: $tmp/state#" \
    -e "s#agent_id: .*#agent_id: 0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d#" "$cfg"
mkdir -p "$tmp/video/inbox/captions" "$tmp/video/inbox/social"
MOSAIC_API_KEY=mk_test_0123456789abcdef /usr/bin/mosaic-watch validate --config "$cfg" >"$tmp/validate.log" 2>&1 ||
    { cat "$tmp/validate.log"; fail "validate the installed example config"; }
head -1 "$tmp/validate.log"

step "upgrade in place (same package again), then purge"
dpkg -i "$deb" >/dev/null
check /etc/mosaic-watch/config.yaml root:mosaic-watch 640
dpkg --purge mosaic-watch
for p in /usr/bin/mosaic-watch /etc/mosaic-watch /var/lib/mosaic-watch /usr/lib/systemd/system/mosaic-watch.service /usr/share/doc/mosaic-watch; do
    [ ! -e "$p" ] || fail "$p left after purge"
done
! getent passwd mosaic-watch >/dev/null || fail "user mosaic-watch left after purge"
! getent group mosaic-watch >/dev/null || fail "group mosaic-watch left after purge"
! dpkg -s mosaic-watch >/dev/null 2>&1 || fail "package still known to dpkg"
echo "ok  purged: no files, user or group left"

step "packaging checks passed"
