#!/usr/bin/env bash
# Build release artifacts into dist/:
#   dist/mosaic-watch_<version>_<os>_<arch>/mosaic-watch[.exe]   static binaries (CGO_ENABLED=0)
#                                                                for linux, darwin, windows x amd64, arm64
#   dist/mosaic-watch_<version>_<arch>.deb, dist/mosaic-watch-<version>-1.<arch>.rpm
#   dist/mosaic-watch_<version>_linux_<arch>.oci.tar          container image (FROM scratch) for
#   dist/mosaic-watch_<version>_linux_<arch>.docker.tar.gz    amd64, arm64: OCI archive (podman,
#                                                             skopeo, containerd) and docker load
#   dist/SHA256SUMS
# Usage: VERSION=1.2.3 packaging/release.sh [--no-packages] [--no-images]
# VERSION defaults to `git describe` (or 0.0.0-dev). Runs from any directory. The images need
# buildah (Debian: apt-get install buildah); without it they are skipped with a warning.
set -euo pipefail
cd "$(dirname "$0")/.."

NFPM_DEFAULT="go run github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2"
NFPM="${NFPM:-$NFPM_DEFAULT}"
VERSION="${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || true)}"
VERSION="${VERSION#v}"
case "$VERSION" in [0-9]*) ;; *) VERSION="0.0.0-dev${VERSION:+.$VERSION}" ;; esac
packages=yes
images=yes
for arg in "$@"; do
    case "$arg" in
    --no-packages) packages=no ;;
    --no-images) images=no ;;
    *) echo "usage: VERSION=1.2.3 $0 [--no-packages] [--no-images]" >&2; exit 2 ;;
    esac
done

mkdir -p dist
echo "release $VERSION"
nfpm_job=
if [ "$packages" = yes ] && [ "$NFPM" = "$NFPM_DEFAULT" ]; then
    # Build nfpm while the binaries compile (the Go module proxy serves it; not in go.mod).
    GOBIN="$PWD/dist/.tools" go install github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2 &
    nfpm_job=$!
    NFPM="$PWD/dist/.tools/nfpm"
fi

build() { # os arch
    local out="dist/mosaic-watch_${VERSION}_$1_$2/mosaic-watch"
    [ "$1" = windows ] && out="$out.exe"
    CGO_ENABLED=0 GOOS="$1" GOARCH="$2" go build -trimpath \
        -ldflags "-s -w -X main.version=$VERSION" -o "$out" ./cmd/mosaic-watch
    echo "  built $out"
}
# Targets build in parallel batches: each is dominated by one big package (the pure-Go SQLite)
# that a single compiler process works on.
parallel=$(nproc 2>/dev/null || echo 2)
targets=(linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64)
for ((i = 0; i < ${#targets[@]}; i += parallel)); do
    pids=()
    for t in "${targets[@]:i:parallel}"; do
        build "${t%/*}" "${t#*/}" &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid"; done
done
if [ -n "$nfpm_job" ]; then wait "$nfpm_job"; fi

if [ "$packages" = yes ]; then
    mkdir -p dist/.stage
    for arch in amd64 arm64; do
        cp "dist/mosaic-watch_${VERSION}_linux_${arch}/mosaic-watch" dist/.stage/mosaic-watch
        for packager in deb rpm; do
            echo "  package $packager/$arch"
            VERSION="$VERSION" ARCH="$arch" $NFPM package --config packaging/nfpm.yaml \
                --packager "$packager" --target dist/ >/dev/null
        done
    done
    rm -rf dist/.stage
fi
rm -rf dist/.tools

if [ "$images" = yes ] && ! command -v buildah >/dev/null; then
    echo "WARNING: buildah is not installed: no container images (apt-get install buildah)" >&2
    images=no
fi
if [ "$images" = yes ]; then
    # A scratch image holds only files: assembling one for arm64 needs no emulation.
    for arch in amd64 arm64; do
        base="dist/mosaic-watch_${VERSION}_linux_${arch}"
        echo "  image linux/$arch"
        tag="localhost/mosaic-watch:$VERSION-release-$arch"
        VERSION="$VERSION" ARCH="$arch" BINARY="$base/mosaic-watch" OCI_ARCHIVE="$base.oci.tar" \
            DOCKER_ARCHIVE="$base.docker.tar" ARCHIVE_NAME="mosaic-watch:$VERSION" \
            packaging/container/build.sh "$tag" >/dev/null
        buildah rmi "$tag" >/dev/null
        gzip -9 -f "$base.docker.tar"
    done
fi

(cd dist && find . -maxdepth 2 -type f ! -name SHA256SUMS | sort | xargs sha256sum > SHA256SUMS)
echo "artifacts in dist/:"
(cd dist && ls -1 *.deb *.rpm *.oci.tar *.docker.tar.gz 2>/dev/null || true)
