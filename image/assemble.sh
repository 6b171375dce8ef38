#!/usr/bin/env bash
# Lay out a root filesystem directory as a partitioned SD-card image, without loop mounts
# (none work on the build machines: no device-mapper, no partition devices):
#
#   image/assemble.sh ROOTFS_DIR OUT.img
#
#   p1  FAT32 "RASPIFIRM"   256 MiB   ROOTFS/boot/firmware (Pi firmware, kernel, initrd, dtbs)
#   p2  ext4 "msgflo-root"  sized to fit, mounted read-only with a RAM overlay
#   p3  ext4 "msgflo-data"  64 MiB    ROOTFS/var/lib/msgflo-gateway (config, secrets, graph)
#
# Each filesystem is made in a file (mkfs.vfat -C + mcopy, mkfs.ext4 -d) and placed with dd.
# Prints a size report on stdout.
set -euo pipefail

rootfs="$1"
img="$2"
MiB=$((1024 * 1024))
boot_mib=256
data_mib=64
work="$(mktemp -d "${TMPDIR:-/var/tmp}/msgflo-assemble.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# The boot and data partitions' content leaves the root: their mount points stay, empty.
mkdir -p "$work/boot" "$work/data"
cp -a "$rootfs/boot/firmware/." "$work/boot/"
find "$rootfs/boot/firmware" -mindepth 1 -delete
cp -a "$rootfs/var/lib/msgflo-gateway/." "$work/data/"
find "$rootfs/var/lib/msgflo-gateway" -mindepth 1 -delete

root_kib="$(du -sk --apparent-size "$rootfs" | cut -f1)"
# ext4 needs room for inodes and the journal; the root is read-only, so little slack.
root_mib=$((root_kib * 125 / 100 / 1024 + 96))

mkfs.vfat -F 32 -n RASPIFIRM -C "$work/boot.vfat" $((boot_mib * 1024)) >/dev/null
mcopy -s -i "$work/boot.vfat" "$work/boot/"* ::/
mkfs.ext4 -q -F -L msgflo-root -m 0 -E root_owner=0:0 -d "$rootfs" "$work/root.ext4" "${root_mib}M" >/dev/null
mkfs.ext4 -q -F -L msgflo-data -E root_owner=0:0 -d "$work/data" "$work/data.ext4" "${data_mib}M" >/dev/null

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
echo "  p1 boot (FAT32, RASPIFIRM): ${boot_mib} MiB, $(du -sk "$work/boot" | cut -f1) KiB used"
echo "  p2 root (ext4, msgflo-root): ${root_mib} MiB, $((root_kib / 1024)) MiB of files"
echo "  p3 data (ext4, msgflo-data): ${data_mib} MiB, $(du -sk "$work/data" | cut -f1) KiB used"
for initrd in "$work/boot"/initrd.img-*; do
    if [ -e "$initrd" ]; then echo "  initrd: $(($(stat -c %s "$initrd") / 1024)) KiB"; fi
done
echo "  largest in the root:"
# sed, not head: head would close the pipe early, and pipefail turns sort's SIGPIPE into a failure.
du -xsm "$rootfs"/usr/lib/* "$rootfs"/usr/share/* "$rootfs"/opt/* 2>/dev/null | sort -rn |
    sed -n "1,8{s|$rootfs||; s|^|    |; s|\t| MiB  |; p}"
