#!/usr/bin/env bash
# Lay out a root filesystem directory as a partitioned SD-card image, without loop mounts
# (none work on the build machines: no device-mapper, no partition devices):
#
#   image/assemble.sh ROOTFS_DIR OUT.img
#
#   p1  FAT32 "RASPIFIRM"   its content + 16 MiB, at least 64 MiB: ROOTFS/boot/firmware (Pi
#       firmware, kernel, initrd, dtbs, config.txt; room for what a user drops there)
#   p2  ext4 "msgflo-root"  shrunk to its content (resize2fs -M): mounted read-only with a RAM
#       overlay, it never needs free space
#   p3  ext4 "msgflo-data"  64 MiB: ROOTFS/var/lib/msgflo-gateway (config, secrets, graph),
#       grown to the end of the card at first boot (msgflo-grow-data.service)
#
# Each filesystem is made in a file (mkfs.vfat -C + mcopy, mkfs.ext4 -d) and placed with dd.
# Prints a size report on stdout. Reproducible: the same root filesystem directory gives the
# same image, byte for byte, given SOURCE_DATE_EPOCH (set by image/build.sh): every time in
# the filesystems is it, every identifier is derived from it, files are added in sorted order.
set -euo pipefail

rootfs="$1"
img="$2"
MiB=$((1024 * 1024))
data_mib=64
: "${SOURCE_DATE_EPOCH:?image/build.sh sets it: the time every file and filesystem gets}"
work="$(mktemp -d "${TMPDIR:-/var/tmp}/msgflo-assemble.XXXXXX")"
trap 'rm -rf "$work"' EXIT
# mke2fs, debugfs and resize2fs take "now" from here (superblock and creation times), e2fsck
# (the last check's time) from E2FSCK_TIME;
# mkfs.vfat --invariant and mtools from SOURCE_DATE_EPOCH.
export E2FSPROGS_FAKE_TIME="$SOURCE_DATE_EPOCH" E2FSCK_TIME="$SOURCE_DATE_EPOCH" SOURCE_DATE_EPOCH

derived() {
    # 32 hex digits from a name and the epoch: a filesystem's UUID or hash seed, a disk id.
    printf '%s-%s' "$1" "$SOURCE_DATE_EPOCH" | sha256sum | cut -c1-32
}

uuid() { derived "$1" | sed -E 's/^(.{8})(.{4})(.{4})(.{4})(.{12})$/\1-\2-\3-\4-\5/'; }

ext4_times() {
    # mke2fs -d copies each file's ctime and atime, which nothing can set on the build machine
    # (the times the build wrote and read them); debugfs sets both to the epoch, as the
    # files' mtimes already are.
    local fs="$1" src="$2"
    (cd "$src" && find . -mindepth 1 -printf '%P\n') | LC_ALL=C sort |
        awk -v t="@$SOURCE_DATE_EPOCH" 'BEGIN { printf "sif / ctime %s\nsif / atime %s\n", t, t }
            { printf "sif \"/%s\" ctime %s\nsif \"/%s\" atime %s\n", $0, t, $0, t }' >"$work/times"
    debugfs -w -f "$work/times" "$fs" >/dev/null 2>"$work/times.err"
    if grep -v '^debugfs [0-9]' "$work/times.err" >&2; then
        echo "assemble: debugfs could not set the times above in $fs" >&2
        exit 1
    fi
}

mkext4() {
    # mkfs.ext4 -d with derived identifiers, then the times. Options before the image file.
    local label="$1" src="$2" fs="$3" size="$4"
    shift 4
    mkfs.ext4 -q -F -L "$label" -U "$(uuid "$label")" \
        -E "root_owner=0:0,hash_seed=$(uuid "$label-hash")${EXT4_EXTENDED:+,$EXT4_EXTENDED}" \
        "$@" -d "$src" "$fs" "$size" >/dev/null
    ext4_times "$fs" "$src"
}

# The boot and data partitions' content leaves the root: their mount points stay, empty.
mkdir -p "$work/boot" "$work/data"
cp -a "$rootfs/boot/firmware/." "$work/boot/"
find "$rootfs/boot/firmware" -mindepth 1 -delete
cp -a "$rootfs/var/lib/msgflo-gateway/." "$work/data/"
find "$rootfs/var/lib/msgflo-gateway" -mindepth 1 -delete
touch -d "@$SOURCE_DATE_EPOCH" "$rootfs/boot/firmware" "$rootfs/var/lib/msgflo-gateway"

boot_kib="$(du -sk "$work/boot" | cut -f1)"
boot_mib=$((boot_kib / 1024 + 16))
[ "$boot_mib" -ge 64 ] || boot_mib=64  # FAT32 wants 65,525 clusters: about 33 MiB at least
root_kib="$(du -sk --apparent-size "$rootfs" | cut -f1)"

mkfs.vfat -F 32 -n RASPIFIRM --invariant -i "$(derived RASPIFIRM | cut -c1-8)" \
    -C "$work/boot.vfat" $((boot_mib * 1024)) >/dev/null
# One by one in sorted order (mcopy -s would follow the directory's order on this machine);
# -m keeps the (epoch) modification times.
(cd "$work/boot" && find . -mindepth 1 -printf '%P\n') | LC_ALL=C sort | while read -r entry; do
    if [ -d "$work/boot/$entry" ]; then
        mmd -i "$work/boot.vfat" "::/$entry"
    else
        mcopy -m -i "$work/boot.vfat" "$work/boot/$entry" "::/$entry"
    fi
done
# Made roomy (ext4's inodes and journal need a guess), then shrunk to the smallest size that
# holds it, rounded up to whole MiB for the partition table.
mkext4 msgflo-root "$rootfs" "$work/root.ext4" "$((root_kib * 3 / 2 / 1024 + 64))M" -m 0
e2fsck -fp "$work/root.ext4" >/dev/null 2>&1 || { echo "assemble: e2fsck of the root failed" >&2; exit 1; }
resize2fs -M "$work/root.ext4" >/dev/null 2>&1
root_blocks="$(dumpe2fs -h "$work/root.ext4" 2>/dev/null | awk -F: '/^Block count/ {print $2+0}')"
root_bsize="$(dumpe2fs -h "$work/root.ext4" 2>/dev/null | awk -F: '/^Block size/ {print $2+0}')"
root_mib=$(((root_blocks * root_bsize + MiB - 1) / MiB))
truncate -s "${root_mib}M" "$work/root.ext4"
# resize=: block group descriptors reserved for online growth up to 256 GiB (a card's size),
# which the first boot's resize2fs needs on a mounted filesystem.
EXT4_EXTENDED="resize=$((256 * 1024 * 256))" mkext4 msgflo-data "$work/data" "$work/data.ext4" \
    "${data_mib}M" -b 4096

first=4
total=$((first + boot_mib + root_mib + data_mib + 1))
rm -f "$img"
truncate -s "${total}M" "$img"
sfdisk --quiet "$img" <<LAYOUT
label: dos
label-id: 0x$(derived disk | cut -c1-8)
start=${first}MiB, size=${boot_mib}MiB, type=c, bootable
start=$((first + boot_mib))MiB, size=${root_mib}MiB, type=83
start=$((first + boot_mib + root_mib))MiB, size=${data_mib}MiB, type=83
LAYOUT
dd if="$work/boot.vfat" of="$img" bs=1M seek="$first" conv=notrunc,sparse status=none
dd if="$work/root.ext4" of="$img" bs=1M seek=$((first + boot_mib)) conv=notrunc,sparse status=none
dd if="$work/data.ext4" of="$img" bs=1M seek=$((first + boot_mib + root_mib)) conv=notrunc,sparse status=none

echo "image: $img, $((total)) MiB ($(du -k "$img" | cut -f1 | awk '{printf "%d", $1/1024}') MiB allocated)"
echo "  p1 boot (FAT32, RASPIFIRM): ${boot_mib} MiB, ${boot_kib} KiB used"
echo "  p2 root (ext4, msgflo-root): ${root_mib} MiB, $((root_kib / 1024)) MiB of files"
echo "  p3 data (ext4, msgflo-data): ${data_mib} MiB, $(du -sk "$work/data" | cut -f1) KiB used"
for initrd in "$work/boot"/initrd.img-*; do
    if [ -e "$initrd" ]; then echo "  initrd: $(($(stat -c %s "$initrd") / 1024)) KiB"; fi
done
echo "  largest in the root:"
# sed, not head: head would close the pipe early, and pipefail turns sort's SIGPIPE into a failure.
du -xsm "$rootfs"/usr/lib/* "$rootfs"/usr/share/* "$rootfs"/opt/* 2>/dev/null | sort -rn |
    sed -n "1,8{s|$rootfs||; s|^|    |; s|\t| MiB  |; p}"
