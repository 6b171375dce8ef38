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
# Prints a size report on stdout.
set -euo pipefail

rootfs="$1"
img="$2"
MiB=$((1024 * 1024))
data_mib=64
work="$(mktemp -d "${TMPDIR:-/var/tmp}/msgflo-assemble.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# The boot and data partitions' content leaves the root: their mount points stay, empty.
mkdir -p "$work/boot" "$work/data"
cp -a "$rootfs/boot/firmware/." "$work/boot/"
find "$rootfs/boot/firmware" -mindepth 1 -delete
cp -a "$rootfs/var/lib/msgflo-gateway/." "$work/data/"
find "$rootfs/var/lib/msgflo-gateway" -mindepth 1 -delete

boot_kib="$(du -sk "$work/boot" | cut -f1)"
boot_mib=$((boot_kib / 1024 + 16))
[ "$boot_mib" -ge 64 ] || boot_mib=64  # FAT32 wants 65,525 clusters: about 33 MiB at least
root_kib="$(du -sk --apparent-size "$rootfs" | cut -f1)"

mkfs.vfat -F 32 -n RASPIFIRM -C "$work/boot.vfat" $((boot_mib * 1024)) >/dev/null
mcopy -s -i "$work/boot.vfat" "$work/boot/"* ::/
# Made roomy (ext4's inodes and journal need a guess), then shrunk to the smallest size that
# holds it, rounded up to whole MiB for the partition table.
mkfs.ext4 -q -F -L msgflo-root -m 0 -E root_owner=0:0 -d "$rootfs" "$work/root.ext4" \
    "$((root_kib * 3 / 2 / 1024 + 64))M" >/dev/null
e2fsck -fp "$work/root.ext4" >/dev/null 2>&1 || { echo "assemble: e2fsck of the root failed" >&2; exit 1; }
resize2fs -M "$work/root.ext4" >/dev/null 2>&1
root_blocks="$(dumpe2fs -h "$work/root.ext4" 2>/dev/null | awk -F: '/^Block count/ {print $2+0}')"
root_bsize="$(dumpe2fs -h "$work/root.ext4" 2>/dev/null | awk -F: '/^Block size/ {print $2+0}')"
root_mib=$(((root_blocks * root_bsize + MiB - 1) / MiB))
truncate -s "${root_mib}M" "$work/root.ext4"
# resize=: block group descriptors reserved for online growth up to 256 GiB (a card's size),
# which the first boot's resize2fs needs on a mounted filesystem.
mkfs.ext4 -q -F -L msgflo-data -b 4096 -E root_owner=0:0,resize=$((256 * 1024 * 256)) \
    -d "$work/data" "$work/data.ext4" "${data_mib}M" >/dev/null

first=4
total=$((first + boot_mib + root_mib + data_mib + 1))
rm -f "$img"
truncate -s "${total}M" "$img"
sfdisk --quiet "$img" <<LAYOUT
label: dos
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
