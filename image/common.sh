# Shell functions shared by image/build.sh and image/decoder-wheel.sh (sourced, not run).

log() { printf 'image: %s\n' "$*" >&2; }
now() { date +%s; }

enable_binfmt() {
    # qemu-user-static registers aarch64 with the F flag: the interpreter is opened at
    # registration, so it works inside the chroot without copying it there.
    [ "$(uname -m)" = aarch64 ] && return 0
    if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
        mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
    fi
    [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64
}

chroot_run() {
    local root="$1"
    shift
    mount -t proc proc "$root/proc"
    mount -t sysfs sysfs "$root/sys"
    mount --rbind /dev "$root/dev"
    local rc=0
    # A clean environment: the host's PIP_*, proxy and locale settings mean nothing in there.
    # SOURCE_DATE_EPOCH: mkinitramfs and Python's bytecode compiler honour it.
    chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 \
        ${SOURCE_DATE_EPOCH:+SOURCE_DATE_EPOCH="$SOURCE_DATE_EPOCH"} \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@" || rc=$?
    umount -R "$root/dev"
    umount "$root/proc" "$root/sys"
    return "$rc"
}
