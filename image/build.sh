#!/usr/bin/env bash
# Build the Raspberry Pi SD-card image of the gateway (arm64, Debian bookworm).
#
#   image/build.sh [OUT_DIR]          default OUT_DIR: image/out
#
# Writes OUT_DIR/msgflo-gateway.img (MBR: FAT boot, ext4 root, ext4 data), the release file
# OUT_DIR/msgflo-gateway.img.xz with its .sha256, OUT_DIR/build-report.txt (times, sizes, the
# kernel modules kept, every Debian and Python package with its version) and
# OUT_DIR/test-tools/ (BlueZ's btvirt, for the boot test's virtual Bluetooth controllers; the
# image does not carry it). Needs root, Debian's packages from bootstrap.sh (mmdebstrap,
# qemu-user-static, binfmt-support, fdisk, dosfstools, mtools, e2fsprogs, xz-utils), the
# mirror's packages at image/packages.lock's versions and PyPI's wheels of image/wheels.lock
# (checked by SHA-256); no loop mounts. The same inputs give the same image, byte for byte
# (docs/appliance.md, "Reproducible").
#
# The slow part, the base root filesystem (about 4 min of emulated dpkg), is cached in
# $MSGFLO_IMAGE_CACHE (default /var/cache/msgflo-gateway-image) under a hash of the package
# list (and a recipe version), so a rebuild after a change to the gateway takes a minute or two.
# Theengs Decoder's aarch64 wheel is cached there too (wheels/, by version; image/decoder-wheel.sh).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
out="$(realpath -m "${1:-$here/out}")"
cache="${MSGFLO_IMAGE_CACHE:-/var/cache/msgflo-gateway-image}"
mirror="${MSGFLO_IMAGE_MIRROR:-http://deb.debian.org/debian}"
python="${PYTHON:-$repo/.venv/bin/python}"
# Reproducible builds (docs/appliance.md, "Reproducible"): every file's time is at most this,
# the last commit's, and the tools that stamp times or random identifiers take it instead.
SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct 2>/dev/null || echo 0)}"
export SOURCE_DATE_EPOCH

# Bump when the mmdebstrap call in base_rootfs changes: the cache key is this plus the package list.
BASE_RECIPE="base-v2"

# shellcheck source=image/common.sh
. "$here/common.sh"

[ "$(id -u)" -eq 0 ] || { log "must run as root (chroot, device nodes, file owners)"; exit 2; }

package_list() { grep -v '^\s*\(#\|$\)' "$here/packages.list" | paste -sd, -; }

installed_packages() {
    # A root filesystem's Debian packages, "name version", in a stable order.
    dpkg-query --admindir="$1/var/lib/dpkg" -W -f='${binary:Package} ${Version}\n' | LC_ALL=C sort
}

check_packages() {
    # Debian's mirror moves on with every point release and security fix, and the image must
    # not move with it unnoticed: the base's packages must be exactly image/packages.lock's.
    # MSGFLO_IMAGE_LOCK=update records what was installed instead (then review the diff).
    local root="$1" lock="$here/packages.lock"
    if [ "${MSGFLO_IMAGE_LOCK:-}" = update ]; then
        {
            echo "# The base root filesystem's Debian packages and versions, which image/build.sh"
            echo "# enforces. Made by: MSGFLO_IMAGE_LOCK=update image/build.sh (after a base rebuild)."
            installed_packages "$root"
        } >"$lock"
        log "recorded $(grep -vc '^#' "$lock") packages in $lock"
        return 0
    fi
    if ! diff <(grep -v '^#' "$lock") <(installed_packages "$root") >"$work/packages.diff"; then
        log "the base root filesystem's packages are not image/packages.lock's (< locked, > installed):"
        sed 's/^/  /' "$work/packages.diff" >&2
        log "the mirror has moved on or the package list changed: review, then record with MSGFLO_IMAGE_LOCK=update"
        return 1
    fi
}

base_rootfs() {
    # INITRD=No: the kernel's postinst would otherwise build a full initramfs (~14 min under
    # qemu-user, and several times); customize.sh builds one small one at the end.
    local key tar
    key="$({ cat "$here/packages.list"; echo "$BASE_RECIPE"; } | sha256sum | cut -c1-16)"
    tar="$cache/base-$key.tar"
    if [ -f "$tar" ]; then
        log "base root filesystem from cache: $tar"
    else
        log "building the base root filesystem (cached afterwards in $cache)"
        mkdir -p "$cache"
        rm -rf "$tar.part"
        INITRD=No mmdebstrap --variant=minbase --architectures=arm64 --format=tar \
            --components=main,non-free-firmware --include="$(package_list)" \
            --aptopt='Apt::Install-Recommends "false"' \
            --dpkgopt='path-exclude=/usr/share/doc/*' \
            --dpkgopt='path-include=/usr/share/doc/*/copyright' \
            --dpkgopt='path-exclude=/usr/share/man/*' \
            --dpkgopt='path-exclude=/usr/share/locale/*' \
            --dpkgopt='path-exclude=/usr/share/info/*' \
            --dpkgopt='path-exclude=/usr/share/lintian/*' \
            bookworm "$tar.part" "$mirror" >&2
        mv "$tar.part" "$tar"
        find "$cache" -name 'base-*.tar' ! -name "base-$key.tar" -delete
    fi
    printf '%s\n' "$tar"
}

wheelhouse() {
    # The gateway as a wheel plus its dependencies for aarch64: exactly the files of
    # image/wheels.lock (the versions the tests ran with, in $python's environment, each by its
    # SHA-256; image/wheels.py), except what the image takes from Debian; Theengs Decoder (the
    # ble extra) built here once per version: PyPI has no aarch64 wheel of it.
    local dir="$1" base="$2" decoder
    "$python" "$here/wheels.py" check || {
        log "image/wheels.lock does not match $python's packages (above):" \
            "run \`$python $here/wheels.py lock\` and commit image/wheels.lock"
        exit 1
    }
    # setuptools builds in the tree's build/: a build stopped half-way leaves files there that
    # make the next one fail ("File exists"), and old ones could slip into the wheel.
    rm -rf "$repo/build"
    "$python" -m pip wheel --quiet --no-deps --wheel-dir "$dir" "$repo" >&2
    # The platforms are image/wheels.py's PLATFORMS (lock downloads with the same flags);
    # manylinux_2_34: lgpio's only aarch64 wheels (the GPIO bridge; bookworm has glibc 2.36).
    "$python" -m pip download --quiet --dest "$dir" --only-binary=:all: --no-deps \
        --require-hashes -r "$here/wheels.lock" \
        --platform manylinux2014_aarch64 --platform manylinux_2_17_aarch64 \
        --platform manylinux_2_28_aarch64 --platform manylinux_2_34_aarch64 \
        --python-version 3.11 --implementation cp >&2
    decoder="$("$python" -c 'import importlib.metadata as md; print(md.version("TheengsDecoder"))')"
    cp "$(PYTHON="$python" "$here/decoder-wheel.sh" "$base" "$decoder" "$cache/wheels")" "$dir/"
}

normalize_rootfs() {
    # What the build wrote carries the build's time: clamp every file's to the epoch (what
    # came from Debian's packages is older and keeps its own). /etc/shadow's "last changed"
    # days of the users made here (systemd-sysusers) likewise.
    local root="$1" days=$((SOURCE_DATE_EPOCH / 86400))
    find "$root" -xdev -newermt "@$SOURCE_DATE_EPOCH" -print0 |
        xargs -0r touch -h --no-create -d "@$SOURCE_DATE_EPOCH"
    local shadow
    for shadow in "$root/etc/shadow" "$root/etc/shadow-"; do
        [ -f "$shadow" ] || continue
        awk -F: -v d="$days" 'BEGIN { OFS = ":" } $3 != "" && $3 > d { $3 = d } { print }' \
            "$shadow" >"$work/shadow"
        cat "$work/shadow" >"$shadow"
        touch -d "@$SOURCE_DATE_EPOCH" "$shadow"
    done
}

trim_rootfs() {
    # What the appliance never reads once built (docs/appliance.md, "What the image leaves
    # out"). Files of installed packages: the root is read-only and never upgraded in place
    # (a new release is a new image), so dpkg's view of them does not matter after this point.
    local root="$1"
    # The Pi firmware's debug (db), camera (x) and cut-down (cd) variants: config.txt selects
    # none of them; start.elf/fixup.dat (Pi 3, Zero 2 W) and start4.elf/fixup4.dat (Pi 4) stay.
    rm -f "$root"/boot/firmware/start{,4}{_x,x,_db,db,_cd,cd}.elf \
        "$root"/boot/firmware/fixup{,4}{_x,x,_db,db,_cd,cd}.dat
    # Sources of what raspi-firmware's kernel hook copied to the boot partition: the kernel,
    # initramfs and device trees are read from there, never from the root.
    rm -rf "$root"/usr/lib/raspi-firmware "$root"/usr/lib/linux-image-* \
        "$root"/boot/vmlinuz-* "$root"/boot/initrd.img-* "$root"/boot/System.map-* "$root"/boot/config-*
    # Caches and logs of the build.
    rm -rf "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* "$root"/var/cache/debconf/*-old \
        "$root"/var/cache/ldconfig/aux-cache "$root"/var/log/*.log "$root"/var/log/apt
}

work=""  # global: the EXIT trap runs after main returns

main() {
    local start t0 rootfs base
    start="$(now)"
    enable_binfmt
    work="$(mktemp -d "${TMPDIR:-/var/tmp}/msgflo-image.XXXXXX")"
    trap 'umount -R "$work/rootfs/dev" "$work/rootfs/proc" "$work/rootfs/sys" 2>/dev/null || true; rm -rf "$work"' EXIT
    rootfs="$work/rootfs"
    mkdir -p "$rootfs" "$out"

    t0="$(now)"
    base="$(base_rootfs)"
    tar -C "$rootfs" -xf "$base"
    check_packages "$rootfs"
    local t_base=$(($(now) - t0))

    t0="$(now)"
    local stage="$rootfs/tmp/msgflo-image"
    mkdir -p "$stage/wheels"
    wheelhouse "$stage/wheels" "$base"
    cp -r "$here/rootfs" "$stage/files"
    cp -r "$repo/services" "$stage/services"
    cp -r "$repo/examples" "$stage/examples"
    chroot_run "$rootfs" /bin/sh /tmp/msgflo-image/files/customize.sh >&2
    # What customize.sh set aside for the boot test (btvirt), not part of the image.
    rm -rf "$out/test-tools"
    cp -r "$stage/test-tools" "$out/test-tools"
    rm -rf "$stage"
    local t_custom=$(($(now) - t0))

    t0="$(now)"
    # Only the kernel modules and firmware the boards and functions need (docs/image-modules.md);
    # fails when one the gateway needs is missing.
    "$python" "$here/modules.py" "$rootfs" --report "$work/modules.txt" >&2
    trim_rootfs "$rootfs"
    normalize_rootfs "$rootfs"
    local t_trim=$(($(now) - t0))

    dpkg-query --admindir="$rootfs/var/lib/dpkg" -W \
        -f='${binary:Package} ${Version}\n' >"$work/packages.txt"
    "$python" -m pip list --path "$rootfs/opt/msgflo-gateway/lib/python3.11/site-packages" \
        --format=freeze 2>/dev/null >"$work/wheels.txt"

    t0="$(now)"
    local img="$out/msgflo-gateway.img"
    "$here/assemble.sh" "$rootfs" "$img" >"$work/sizes.txt"
    local t_assemble=$(($(now) - t0))

    t0="$(now)"
    release "$img"
    local t_release=$(($(now) - t0))

    {
        echo "msgflo-gateway image, built $(date -u +%Y-%m-%dT%H:%M:%SZ) from $(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)"
        echo "base root filesystem: ${t_base} s (cached: $base)"
        echo "gateway, services, initramfs: ${t_custom} s"
        echo "kernel modules, firmware, trimming: ${t_trim} s"
        echo "image assembly: ${t_assemble} s"
        echo "release file (xz): ${t_release} s"
        echo "total: $(($(now) - start)) s"
        cat "$work/sizes.txt"
        echo "release: ${img##*/}.xz, $(stat -c %s "$img.xz") bytes"
        echo "  sha256 $(cut -d' ' -f1 "$img.xz.sha256")"
        echo
        cat "$work/modules.txt"
        echo
        echo "Debian packages ($(wc -l <"$work/packages.txt")):"
        sed 's/^/  /' "$work/packages.txt"
        echo "Python packages in /opt/msgflo-gateway ($(wc -l <"$work/wheels.txt")):"
        sed 's/^/  /' "$work/wheels.txt"
    } | tee "$out/build-report.txt" >&2
}

release() {
    # The file to download and flash (Raspberry Pi Imager takes .img.xz as it is) and its
    # checksum, in sha256sum's format: `sha256sum -c msgflo-gateway.img.xz.sha256`.
    local img="$1"
    xz --threads=0 -6 --keep --force "$img"
    (cd "$(dirname "$img")" && sha256sum "${img##*/}.xz" >"${img##*/}.xz.sha256")
}

main "$@"
