#!/usr/bin/env bash
# Build Theengs Decoder's aarch64 wheel, which PyPI does not have (only the source: C++ built
# with scikit-build, CMake and Ninja), and cache it:
#
#   image/decoder-wheel.sh BASE_TAR VERSION WHEEL_DIR
#
# Prints the wheel's path. WHEEL_DIR keeps one wheel per version: a later build of the image
# with the same version takes it from there in no time. The compiler never reaches the image:
# the build runs in a throwaway arm64 chroot (under qemu-user) unpacked from the image's
# cached base root filesystem, with Debian's g++, python3-dev, cmake, ninja-build and
# scikit-build installed from the mirror, and the source from PyPI.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
# shellcheck source=image/common.sh
. "$here/common.sh"
base="$1"
version="$2"
dest="$3"
python="${PYTHON:-$repo/.venv/bin/python}"
BUILD_PACKAGES="g++ python3-dev python3-pip cmake ninja-build python3-skbuild python3-setuptools-scm python3-wheel"
# The source archive of each version the gateway has used, by SHA-256 (PyPI's, checked by pip:
# a changed archive stops the build). A new version needs its line here.
declare -A SOURCE_SHA256=(
    [2.5.0]=87f0cc1b289c8220263bb0ddcbe2eac146fc8f110360277c2ed0cba1e77f688f
)

cached="$(find "$dest" -maxdepth 1 -name "theengsdecoder-$version-*.whl" 2>/dev/null | head -1 || true)"
if [ -n "$cached" ]; then
    log "Theengs Decoder $version for aarch64 from cache: $cached"
    printf '%s\n' "$cached"
    exit 0
fi

[ "$(id -u)" -eq 0 ] || { log "must run as root (chroot)"; exit 2; }
enable_binfmt
start="$(now)"
build="$(mktemp -d "${TMPDIR:-/var/tmp}/msgflo-decoder.XXXXXX")"
trap 'umount -R "$build/root/dev" "$build/root/proc" "$build/root/sys" 2>/dev/null || true; rm -rf "$build"' EXIT
root="$build/root"
mkdir -p "$root" "$dest"
log "building Theengs Decoder $version for aarch64 (cached afterwards in $dest)"
tar -C "$root" -xf "$base"
mkdir -p "$root/tmp/decoder/src" "$root/tmp/decoder/wheel"
sha="${SOURCE_SHA256[$version]:-}"
[ -n "$sha" ] || { log "no SHA-256 for Theengs Decoder $version's source: add it to SOURCE_SHA256 in $0"; exit 2; }
"$python" -m pip download --quiet --no-deps --no-binary TheengsDecoder --require-hashes \
    --dest "$root/tmp/decoder/src" -r /dev/stdin >&2 <<<"TheengsDecoder==$version --hash=sha256:$sha"
cp -L /etc/resolv.conf "$root/etc/resolv.conf"
# No build isolation: the build tools are Debian's (scikit-build's setup_requires would
# otherwise fetch CMake from PyPI inside the chroot).
chroot_run "$root" /bin/sh -eu -c "
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $BUILD_PACKAGES >/dev/null
    python3 -m pip wheel --no-deps --no-build-isolation --no-index \
        --wheel-dir /tmp/decoder/wheel /tmp/decoder/src/*.tar.gz
" >&2
wheel="$(find "$root/tmp/decoder/wheel" -name 'theengsdecoder-*.whl' | head -1)"
[ -n "$wheel" ] || { log "no wheel was built"; exit 1; }
cp "$wheel" "$dest/"
find "$dest" -maxdepth 1 -name 'theengsdecoder-*.whl' ! -name "$(basename "$wheel")" -delete
log "Theengs Decoder $version for aarch64 built in $(($(now) - start)) s"
printf '%s\n' "$dest/$(basename "$wheel")"
