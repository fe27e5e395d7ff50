#!/usr/bin/env bash
# Build the mosaic-watch image (packaging/container/Containerfile, FROM scratch) with buildah from
# a clean checkout. It compiles the static binary first and pulls nothing from a registry.
#
# Usage: packaging/container/build.sh [TAG]          TAG defaults to mosaic-watch:latest
# Environment:
#   VERSION      version of the binary and the image label (default: git describe, as release.sh)
#   ARCH         amd64 or arm64 (default: this machine's); a scratch image needs no emulation
#   BINARY       use this static linux/ARCH binary instead of compiling one (release.sh does)
#   OCI_ARCHIVE     also write the image to this file as an OCI archive (podman load, skopeo,
#                   containerd); it carries no HEALTHCHECK (the OCI format has none)
#   DOCKER_ARCHIVE  also write it as a docker-archive (docker load -i, including Docker 20.10 on
#                   a Synology), with its HEALTHCHECK
#   ARCHIVE_NAME    the image name inside the archives (default: TAG)
# Needs: go (unless BINARY is set), buildah, Debian's ca-certificates and tzdata. Runs from any
# directory.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PATH:/usr/local/go/bin"

tag="${1:-mosaic-watch:latest}"
VERSION="${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || true)}"
VERSION="${VERSION#v}"
case "$VERSION" in [0-9]*) ;; *) VERSION="0.0.0-dev${VERSION:+.$VERSION}" ;; esac
ARCH="${ARCH:-$(go env GOARCH)}"
certs=/etc/ssl/certs/ca-certificates.crt
uid=10001 # the image's default user and group (Containerfile: USER, COPY --chown)

die() { echo "build.sh: $*" >&2; exit 1; }
command -v buildah >/dev/null || die "buildah is not installed (Debian: apt-get install buildah)"
[ -s "$certs" ] || die "$certs is missing (Debian: apt-get install ca-certificates)"
[ -s /usr/share/zoneinfo/Europe/Berlin ] || die "no /usr/share/zoneinfo (Debian: apt-get install tzdata)"
case "$ARCH" in amd64 | arm64) ;; *) die "ARCH must be amd64 or arm64, not $ARCH" ;; esac

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
root="$ctx/rootfs"
mkdir -p "$root/usr/local/bin" "$root/etc/ssl/certs" "$root/usr/share" "$root/tmp" \
    "$ctx/volumes/config" "$ctx/volumes/state"

bin="$root/usr/local/bin/mosaic-watch"
if [ -n "${BINARY:-}" ]; then
    cp "$BINARY" "$bin"
else
    echo "compiling mosaic-watch $VERSION for linux/$ARCH (CGO_ENABLED=0)"
    CGO_ENABLED=0 GOOS=linux GOARCH="$ARCH" go build -trimpath \
        -ldflags "-s -w -X main.version=$VERSION" -o "$bin" ./cmd/mosaic-watch
fi
# A scratch image has no libc: a dynamically linked binary fails there with "no such file".
meta=$(go version -m "$bin")
grep -q 'CGO_ENABLED=0' <<<"$meta" || die "$bin is not a static build (CGO_ENABLED=0)"
grep -q "GOARCH=$ARCH" <<<"$meta" || die "$bin is not built for $ARCH"
chmod 0755 "$bin"

cp "$certs" "$root/etc/ssl/certs/ca-certificates.crt"
# Debian's time zone database for TZ=Europe/Berlin and the like, without the leap-second
# variants (right/), which nothing here reads.
tar -C /usr/share --exclude=zoneinfo/right -cf - zoneinfo | tar -C "$root/usr/share" -xf -
printf 'root:x:0:0:root:/:/sbin/nologin\nmosaic-watch:x:%d:%d:mosaic-watch:/state:/sbin/nologin\n' \
    "$uid" "$uid" >"$root/etc/passwd"
printf 'root:x:0:\nmosaic-watch:x:%d:\n' "$uid" >"$root/etc/group"
chmod 0644 "$root/etc/passwd" "$root/etc/group" "$root/etc/ssl/certs/ca-certificates.crt"
chmod 1777 "$root/tmp"
chmod 0755 "$ctx/volumes/config"
chmod 0700 "$ctx/volumes/state"

# Files get the last commit's time, so the same commit builds the same image.
stamp=$(git log -1 --format=%ct 2>/dev/null || date +%s)
buildah build --quiet --platform "linux/$ARCH" --format docker --timestamp "$stamp" \
    --build-arg VERSION="$VERSION" \
    --build-arg REVISION="$(git rev-parse HEAD 2>/dev/null || echo unknown)" \
    -f packaging/container/Containerfile -t "$tag" "$ctx" >/dev/null
size=$(buildah images --format '{{.Size}}' "$tag" | head -1)
echo "built $tag (mosaic-watch $VERSION, linux/$ARCH, $size)"
# Archives are written from the image id, so they carry ARCHIVE_NAME and not the local tag too.
id=$(buildah images --quiet "$tag" | head -1)
if [ -n "${OCI_ARCHIVE:-}" ]; then
    rm -f "$OCI_ARCHIVE"
    buildah push --quiet "$id" "oci-archive:$OCI_ARCHIVE:${ARCHIVE_NAME:-$tag}" >/dev/null
    echo "wrote $OCI_ARCHIVE"
fi
if [ -n "${DOCKER_ARCHIVE:-}" ]; then
    rm -f "$DOCKER_ARCHIVE"
    buildah push --quiet "$id" "docker-archive:$DOCKER_ARCHIVE:${ARCHIVE_NAME:-$tag}" >/dev/null
    echo "wrote $DOCKER_ARCHIVE"
fi
