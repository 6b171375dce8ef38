"""Keep only the kernel modules and firmware the supported boards and the gateway need.

    python3 image/modules.py ROOTFS_DIR [--conf image/modules.conf] [--report FILE]

Run by image/build.sh on the host, after customize.sh (chroot unmounted), before assemble.sh.
Debian's arm64 kernel ships ~3,700 modules for every arm64 machine; the image needs ~200.
The list is derived, not hand-picked, from two sources (docs/image-modules.md):

- **The boards' device trees** (``[boards]`` in modules.conf names the dtbs in the kernel
  package's ``usr/lib/linux-image-KVER``). Each enabled node gets the modalias the kernel
  gives it (``of:N<name>T<type>C<compatible>...``) and is matched against the ``of:`` patterns
  of ``modules.alias`` with fnmatch, as udev's ``modprobe $MODALIAS`` does at boot. Nodes
  whose compatible is a USB id (``usb424,ec00``: the Pi 3's USB Ethernet) match the
  ``usb:vVVVVpPPPP`` aliases of that id. A node is enabled when its ``status`` and every
  ancestor's is absent, "okay" or "ok" (the kernel populates no child of a disabled bus).
- **The gateway's functions**: the groups of modules.conf (module names, or aliases such as
  ``crypto-cmac`` that the kernel asks modprobe for at run time), plus the rootfs's own lists
  (``/etc/initramfs-tools/modules``, ``modules-load.d``), which must resolve too.

Then the set is closed over ``modules.dep`` and ``modules.softdep`` (pre: and post:), every
other ``.ko`` is deleted and ``depmod -b ROOTFS KVER`` (host kmod) rebuilds the indexes.
Firmware keeps the files the kept modules name (``modinfo -F firmware``; wildcards matched
against the files, board-specific names such as ``brcmfmac43455-sdio.raspberrypi,4-model-b.txt``
only for the boards' root compatibles, a module's list narrowed by ``[firmware-of MODULE]``),
the ``[firmware]`` globs, and the targets of kept symlinks.

The device trees are read from the FDT binary here rather than through ``dtc -O dts``: the
binary format is small and exact (tokens, a string table), whereas dts text needs a parser of
its own for quoting and cell lists, and the build then needs no dtc (the tests use dtc to
make their dtbs, so the parser is checked against the reference compiler).

Anything inconsistent (a module, alias or dtb that is missing, a conf line without its reason,
a kept module depmod does not list afterwards) is one line on stderr and exit status 1: a
kernel upgrade that renames a module fails the build instead of shipping a radio-less image.
"""

from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import os
import re
import shutil
import struct
import subprocess
import sys
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

MiB = 1024 * 1024
KO_SUFFIXES = (".ko", ".ko.xz", ".ko.zst", ".ko.gz")
ENABLED = frozenset({"okay", "ok"})
# Bounds: a symlink chain longer than this is a loop; an FDT has far fewer tokens.
MAX_LINK_HOPS = 40


class ModulesError(Exception):
    """One line that says what is wrong and where it came from."""


# --- device trees -----------------------------------------------------------------------------

FDT_MAGIC = 0xD00DFEED
FDT_BEGIN_NODE, FDT_END_NODE, FDT_PROP, FDT_NOP, FDT_END = 1, 2, 3, 4, 9


@dataclass(frozen=True)
class DtNode:
    path: str
    device_type: str | None
    compatible: tuple[str, ...]
    enabled: bool  # its own status and every ancestor's

    @property
    def name(self) -> str:
        """The node name without its unit address, as the kernel's %pOFn prints it."""
        return self.path.rsplit("/", 1)[-1].split("@", 1)[0]

    def modalias(self) -> str:
        # The kernel prints a missing device_type with %s of NULL: "(null)".
        kind = self.device_type if self.device_type is not None else "(null)"
        return f"of:N{self.name}T{kind}" + "".join(f"C{c}" for c in self.compatible)


def _cstring(blob: bytes, offset: int) -> tuple[str, int]:
    end = blob.index(b"\0", offset)
    return blob[offset:end].decode("ascii", "replace"), end + 1


def _strings(value: bytes) -> tuple[str, ...]:
    return tuple(s.decode("ascii", "replace") for s in value.rstrip(b"\0").split(b"\0") if s)


def _align4(offset: int) -> int:
    return (offset + 3) & ~3


def parse_dtb(blob: bytes) -> list[DtNode]:
    """Every node of a flattened device tree (the FDT binary: a token stream and a string table)."""
    if len(blob) < 40 or struct.unpack_from(">I", blob, 0)[0] != FDT_MAGIC:
        raise ModulesError("not a flattened device tree (bad magic)")
    off_struct, off_strings = struct.unpack_from(">II", blob, 8)
    size_struct = struct.unpack_from(">I", blob, 36)[0]
    end = off_struct + size_struct
    nodes: list[DtNode] = []
    # Per open node: path, enabled (with the ancestors'), properties so far.
    stack: list[tuple[str, bool, dict[str, bytes]]] = []
    offset = off_struct
    while offset < end:  # every token moves offset forward
        token = struct.unpack_from(">I", blob, offset)[0]
        offset += 4
        if token == FDT_BEGIN_NODE:
            name, offset = _cstring(blob, offset)
            offset = _align4(offset)
            parent = stack[-1][0] if stack else ""
            path = "/" if not stack else f"{parent.rstrip('/')}/{name}"
            # A node's properties come before its children: the parent's status is known here.
            stack.append((path, not stack or (stack[-1][1] and _okay(stack[-1][2])), {}))
        elif token == FDT_PROP:
            length, name_off = struct.unpack_from(">II", blob, offset)
            value = blob[offset + 8 : offset + 8 + length]
            offset = _align4(offset + 8 + length)
            stack[-1][2][_cstring(blob, off_strings + name_off)[0]] = value
        elif token == FDT_END_NODE:
            nodes.append(_node(*stack.pop()))
        elif token == FDT_END:
            break
        elif token != FDT_NOP:
            raise ModulesError(f"bad FDT token {token:#x} at offset {offset - 4}")
    return nodes


def _okay(props: dict[str, bytes]) -> bool:
    status = _strings(props["status"]) if "status" in props else ("okay",)
    return bool(status) and status[0] in ENABLED


def _node(path: str, parent_enabled: bool, props: dict[str, bytes]) -> DtNode:
    kind = _strings(props["device_type"]) if "device_type" in props else ()
    return DtNode(
        path=path,
        device_type=kind[0] if kind else None,
        compatible=_strings(props.get("compatible", b"")),
        enabled=parent_enabled and _okay(props),
    )


def root_compatibles(nodes: Iterable[DtNode]) -> tuple[str, ...]:
    """The board's own names ("raspberrypi,4-model-b"): brcmfmac's board-specific files use them."""
    return next((n.compatible for n in nodes if n.path == "/"), ())


USB_COMPATIBLE = re.compile(r"^usb([0-9a-f]{1,4}),([0-9a-f]{1,4})$")


def node_matches(node: DtNode, pattern: str) -> bool:
    """Would udev's modprobe of this node's device load a module with this alias pattern?"""
    if pattern.startswith("of:"):
        return fnmatch.fnmatchcase(node.modalias(), pattern)
    if pattern.startswith("usb:"):
        for compatible in node.compatible:
            found = USB_COMPATIBLE.match(compatible)
            if found:
                vendor, product = (int(x, 16) for x in found.groups())
                if pattern.startswith(f"usb:v{vendor:04X}p{product:04X}"):
                    return True
    return False


# --- the kernel's module indexes --------------------------------------------------------------


def module_name(path: str) -> str:
    """kernel/drivers/mmc/host/sdhci-iproc.ko -> sdhci_iproc (modprobe's normal form)."""
    base = path.rsplit("/", 1)[-1]
    for suffix in KO_SUFFIXES:
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    return base.replace("-", "_")


@dataclass(frozen=True)
class Kernel:
    version: str
    paths: Mapping[str, str]  # module -> its file, relative to usr/lib/modules/KVER
    deps: Mapping[str, tuple[str, ...]]
    softdeps: Mapping[str, tuple[str, ...]]  # module -> names or aliases, pre: and post:
    aliases: tuple[tuple[str, str], ...]  # (pattern, module), built-in modules' too
    builtin: frozenset[str]


def parse_dep(text: str) -> tuple[dict[str, str], dict[str, tuple[str, ...]]]:
    paths: dict[str, str] = {}
    deps: dict[str, tuple[str, ...]] = {}
    for line in text.splitlines():
        if ":" not in line:
            continue
        path, rest = line.split(":", 1)
        name = module_name(path.strip())
        paths[name] = path.strip()
        deps[name] = tuple(module_name(d) for d in rest.split())
    return paths, deps


def parse_alias(text: str) -> list[tuple[str, str]]:
    pairs = []
    for line in text.splitlines():
        words = line.split()
        if len(words) == 3 and words[0] == "alias":
            pairs.append((words[1], words[2]))
    return pairs


def parse_softdep(text: str) -> dict[str, tuple[str, ...]]:
    """``softdep MOD pre: a b post: c``. Words before any pre:/post: (depmod writes some, from
    modules that declare them so) are kept too: a superset is harmless, a missing one is not."""
    soft: dict[str, list[str]] = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 3 and words[0] == "softdep":
            targets = [w for w in words[2:] if w not in ("pre:", "post:")]
            soft.setdefault(module_name(words[1]), []).extend(targets)
    return {name: tuple(targets) for name, targets in soft.items()}


def parse_builtin_modinfo(blob: bytes) -> list[tuple[str, str]]:
    """modules.builtin.modinfo: NUL-separated ``module.alias=pattern`` among other keys."""
    pairs = []
    for entry in blob.split(b"\0"):
        key, sep, value = entry.decode("ascii", "replace").partition("=")
        if sep and key.endswith(".alias"):
            pairs.append((value, key.removesuffix(".alias").replace("-", "_")))
    return pairs


@dataclass(frozen=True)
class Resolved:
    modules: frozenset[str]  # loadable modules
    builtin: bool  # it (or an alias of it) is built into the kernel


def resolve(kernel: Kernel, name: str) -> Resolved:
    """What ``modprobe NAME`` would find: a module, a built-in one, or the modules of an alias."""
    normal = name.replace("-", "_")
    if normal in kernel.paths:
        return Resolved(frozenset({normal}), False)
    if normal in kernel.builtin:
        return Resolved(frozenset(), True)
    found = {m for pattern, m in kernel.aliases if fnmatch.fnmatchcase(name, pattern)}
    return Resolved(frozenset(found & kernel.paths.keys()), bool(found & kernel.builtin))


def closure(kernel: Kernel, roots: Iterable[str]) -> frozenset[str]:
    """The roots with every module they depend on, hard (modules.dep) or soft (modules.softdep)."""
    seen: set[str] = set()
    queue = deque(roots)
    while queue:  # each module is queued at most once per edge into it: bounded by the graph
        name = queue.popleft()
        if name in seen or name not in kernel.paths:
            continue
        seen.add(name)
        queue.extend(kernel.deps.get(name, ()))
        for target in kernel.softdeps.get(name, ()):
            queue.extend(resolve(kernel, target).modules)
    return frozenset(seen)


# --- modules.conf -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfLine:
    where: str  # "modules.conf:12"
    group: str  # "wifi", "boards", "firmware", "firmware-of brcmfmac", "exclude"
    items: tuple[str, ...]
    reason: str


CONF_LINE = re.compile(r"^\[(?P<group>[^\]]+)\]\s*(?P<items>[^#]*)#\s*(?P<reason>.*\S)\s*$")


def parse_conf(text: str, source: str) -> list[ConfLine]:
    """``[group] item item  # reason``, one group per line (a group may take several lines)."""
    lines = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        found = CONF_LINE.match(line)
        if not found:
            raise ModulesError(f"{source}:{number}: expected '[group] items  # reason': {line}")
        items = tuple(found["items"].split())
        if not items:
            raise ModulesError(f"{source}:{number}: [{found['group']}] lists nothing")
        lines.append(ConfLine(f"{source}:{number}", found["group"].strip(), items, found["reason"]))
    return lines


def module_lines(conf: Iterable[ConfLine]) -> list[ConfLine]:
    special = ("boards", "exclude", "firmware")
    return [c for c in conf if not c.group.startswith(special)]


# --- the plan (pure) --------------------------------------------------------------------------


@dataclass(frozen=True)
class Board:
    dtb: str
    nodes: tuple[DtNode, ...]


@dataclass(frozen=True)
class Plan:
    keep: frozenset[str]
    groups: Mapping[str, frozenset[str]]  # group -> its modules with their dependencies
    builtin: Mapping[str, tuple[str, ...]]  # group -> its items built into the kernel
    board_models: frozenset[str]  # the boards' root compatibles
    excluded: frozenset[str] = frozenset()  # what the boards' trees asked for and [exclude] took


def board_modules(kernel: Kernel, board: Board) -> frozenset[str]:
    patterns = [(p, m) for p, m in kernel.aliases if p.startswith(("of:", "usb:"))]
    found: set[str] = set()
    for node in board.nodes:
        if node.enabled and node.compatible:
            found.update(m for p, m in patterns if node_matches(node, p))
    return frozenset(found & kernel.paths.keys())


def group_roots(kernel: Kernel, line: ConfLine) -> tuple[frozenset[str], tuple[str, ...]]:
    """A function group's modules and its built-in items; a name that is neither fails."""
    modules: set[str] = set()
    builtin = []
    for item in line.items:
        found = resolve(kernel, item)
        if not found.modules and not found.builtin:
            raise ModulesError(
                f"{line.where}: [{line.group}] {item}: not in kernel {kernel.version}"
                " (no such module, built-in module or alias)"
            )
        modules |= found.modules
        if found.builtin and not found.modules:
            builtin.append(item)
    return frozenset(modules), tuple(builtin)


def make_plan(kernel: Kernel, boards: Iterable[Board], conf: Iterable[ConfLine]) -> Plan:
    conf = list(conf)
    excluded = {i.replace("-", "_") for c in conf if c.group == "exclude" for i in c.items}
    unknown = sorted(excluded - kernel.paths.keys())
    if unknown:
        raise ModulesError(f"[exclude] {unknown[0]}: not a module of kernel {kernel.version}")
    groups: dict[str, frozenset[str]] = {}
    builtin: dict[str, tuple[str, ...]] = {}
    models: set[str] = set()
    dropped: set[str] = set()
    for board in boards:
        wanted = board_modules(kernel, board)
        dropped |= wanted & excluded
        groups[f"board {board.dtb}"] = closure(kernel, wanted - excluded)
        models.update(root_compatibles(board.nodes))
    for line in module_lines(conf):
        roots, inside = group_roots(kernel, line)
        groups[line.group] = groups.get(line.group, frozenset()) | closure(kernel, roots)
        builtin[line.group] = builtin.get(line.group, ()) + inside
    keep = frozenset().union(*groups.values())
    return Plan(keep, groups, builtin, frozenset(models), frozenset(dropped - keep))


# --- firmware (pure) --------------------------------------------------------------------------


def firmware_keep(
    named: Mapping[str, tuple[str, ...]],
    files: Iterable[str],
    conf: Iterable[ConfLine],
    board_models: frozenset[str],
    links: Mapping[str, str | None],
) -> frozenset[str]:
    """The firmware files to keep (paths relative to usr/lib/firmware).

    ``named``: each kept module's ``modinfo -F firmware`` names (globs allowed); ``links``: each
    symlink's final target, relative to the firmware directory (None: outside it)."""
    files = sorted(files)
    conf = list(conf)
    narrow = {
        c.group.split(None, 1)[1].replace("-", "_"): c.items
        for c in conf
        if c.group.startswith("firmware-of ")
    }
    keep: set[str] = set()
    for module, names in named.items():
        wanted = [f for f in files if any(_named(f, n, board_models) for n in names)]
        if module in narrow:
            wanted = [f for f in wanted if any(fnmatch.fnmatchcase(f, g) for g in narrow[module])]
        keep.update(wanted)
    extra = [g for c in conf if c.group == "firmware" for g in c.items]
    keep.update(f for f in files if any(fnmatch.fnmatchcase(f, g) for g in extra))
    keep.update(t for f in list(keep) if (t := links.get(f)) is not None)
    return frozenset(keep)


BOARD_SLOT = ".*."


def _named(path: str, name: str, board_models: frozenset[str]) -> bool:
    """Does a module's firmware name (a glob) ask for this file? A ``.*.`` slot, as in brcmfmac's
    ``brcm/brcmfmac*-sdio.*.txt``, is the board's root compatible (brcmfmac fills it in from the
    device tree): only the supported boards' files match it."""
    if BOARD_SLOT not in name:
        return fnmatch.fnmatchcase(path, name)
    head, tail = name.split(BOARD_SLOT, 1)
    return any(fnmatch.fnmatchcase(path, f"{head}.{model}.{tail}") for model in board_models)


# --- I/O --------------------------------------------------------------------------------------


def kernel_version(rootfs: Path) -> str:
    versions = sorted(p.name for p in (rootfs / "usr/lib/modules").iterdir() if p.is_dir())
    if len(versions) != 1:
        raise ModulesError(f"{rootfs}/usr/lib/modules: expected one kernel, found {versions}")
    return versions[0]


def read_kernel(moddir: Path, version: str) -> Kernel:
    def text(name: str) -> str:
        path = moddir / name
        if not path.is_file():
            raise ModulesError(f"{path}: missing (was depmod run for {version}?)")
        return path.read_text(encoding="utf-8", errors="replace")

    paths, deps = parse_dep(text("modules.dep"))
    info = moddir / "modules.builtin.modinfo"
    builtin_aliases = parse_builtin_modinfo(info.read_bytes()) if info.is_file() else []
    return Kernel(
        version=version,
        paths=paths,
        deps=deps,
        softdeps=parse_softdep(text("modules.softdep")),
        aliases=tuple(parse_alias(text("modules.alias")) + builtin_aliases),
        builtin=frozenset(module_name(p) for p in text("modules.builtin").split()),
    )


def read_boards(rootfs: Path, version: str, conf: Iterable[ConfLine]) -> list[Board]:
    dtbdir = rootfs / "usr/lib" / f"linux-image-{version}"
    boards = []
    for line in (c for c in conf if c.group == "boards"):
        for dtb in line.items:
            path = dtbdir / dtb
            if not path.is_file():
                raise ModulesError(f"{line.where}: [boards] {dtb}: no such dtb in {dtbdir}")
            try:
                boards.append(Board(dtb, tuple(parse_dtb(path.read_bytes()))))
            except (ModulesError, struct.error, ValueError, IndexError) as error:
                raise ModulesError(f"{path}: {error}") from error
    return boards


def rootfs_lists(rootfs: Path) -> list[ConfLine]:
    """The module lists customize.sh installed: they must resolve as modules.conf's groups do."""
    sources = [rootfs / "etc/initramfs-tools/modules", rootfs / "etc/modules"]
    for folder in ("etc/modules-load.d", "usr/lib/modules-load.d"):
        if (rootfs / folder).is_dir():
            sources += sorted((rootfs / folder).glob("*.conf"))
    lines = []
    for path in sources:
        if not path.is_file():
            continue
        for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            words = raw.split("#", 1)[0].split()
            if words:  # initramfs-tools allows "module options"; the first word is the module
                where = f"{path.relative_to(rootfs)}:{number}"
                lines.append(ConfLine(where, f"/{path.relative_to(rootfs)}", (words[0],), "rootfs"))
    return lines


def with_modprobe_d(kernel: Kernel, rootfs: Path) -> Kernel:
    """The rootfs's modprobe.d softdeps join the kernel's: modprobe follows both."""
    soft = {name: list(targets) for name, targets in kernel.softdeps.items()}
    for folder in ("usr/lib/modprobe.d", "etc/modprobe.d"):
        for path in sorted((rootfs / folder).glob("*.conf")):
            for name, targets in parse_softdep(path.read_text(encoding="utf-8")).items():
                soft.setdefault(name, []).extend(targets)
    merged = {name: tuple(targets) for name, targets in soft.items()}
    return dataclasses.replace(kernel, softdeps=merged)


def modinfo_firmware(path: Path) -> tuple[str, ...]:
    result = subprocess.run(
        ["modinfo", "-F", "firmware", str(path)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise ModulesError(f"modinfo {path}: {result.stderr.strip()}")
    return tuple(result.stdout.split())


def firmware_files(fwdir: Path, rootfs: Path) -> tuple[list[str], dict[str, str | None]]:
    files: list[str] = []
    links: dict[str, str | None] = {}
    real_fwdir = rooted_realpath(rootfs, "/" + fwdir.relative_to(rootfs).as_posix())
    for path in sorted(fwdir.rglob("*")):
        if path.is_dir() and not path.is_symlink():
            continue
        name = path.relative_to(fwdir).as_posix()
        files.append(name)
        if path.is_symlink():
            target = rooted_realpath(rootfs, "/" + path.relative_to(rootfs).as_posix())
            inside = target.startswith(real_fwdir + "/")
            links[name] = target.removeprefix(real_fwdir + "/") if inside else None
    return files, links


def rooted_realpath(rootfs: Path, path: str) -> str:
    """realpath inside the rootfs: absolute link targets (/etc/alternatives/regulatory.db,
    /lib -> usr/lib) are the rootfs's, not the host's."""
    parts = deque(p for p in path.split("/") if p)
    resolved: list[str] = []
    hops = 0
    while parts:  # each step consumes a part; a link adds parts, at most MAX_LINK_HOPS times
        part = parts.popleft()
        if part in (".", ".."):
            if part == ".." and resolved:
                resolved.pop()
            continue
        candidate = rootfs.joinpath(*resolved, part)
        if not candidate.is_symlink():
            resolved.append(part)
            continue
        hops += 1
        if hops > MAX_LINK_HOPS:
            raise ModulesError(f"{rootfs}{path}: symlink loop")
        target = os.readlink(candidate)
        if target.startswith("/"):
            resolved = []
        parts.extendleft(reversed([p for p in target.split("/") if p]))
    return "/" + "/".join(resolved)


def size(paths: Iterable[Path]) -> int:
    return sum(p.lstat().st_size for p in paths)


def tree_size(folder: Path) -> int:
    return size(p for p in folder.rglob("*") if p.is_file() or p.is_symlink())


def prune_modules(moddir: Path, keep_paths: frozenset[str]) -> int:
    removed = 0
    for path in sorted((moddir / "kernel").rglob("*.ko*")):
        if path.relative_to(moddir).as_posix() not in keep_paths:
            path.unlink()
            removed += 1
    remove_empty_dirs(moddir / "kernel")
    return removed


def prune_firmware(fwdir: Path, keep: frozenset[str]) -> None:
    for path in sorted(fwdir.rglob("*")):
        if (path.is_symlink() or path.is_file()) and path.relative_to(fwdir).as_posix() not in keep:
            path.unlink()
    remove_empty_dirs(fwdir)


def remove_empty_dirs(top: Path) -> None:
    # Deepest first, so a folder emptied by its children's removal goes too.
    for path in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        if not path.is_symlink() and not any(path.iterdir()):
            path.rmdir()


def run_depmod(rootfs: Path, version: str) -> None:
    """depmod -b looks in ROOTFS/lib/modules: Debian's /lib is a link to usr/lib. Without the link
    (a bare tree) a temporary one stands in for it."""
    link = rootfs / "lib"
    made = not link.exists() and not link.is_symlink()
    if made:
        link.symlink_to("usr/lib")
    try:
        depmod = shutil.which("depmod") or "/usr/sbin/depmod"
        result = subprocess.run(
            [depmod, "-b", str(rootfs), version], capture_output=True, text=True, check=False
        )
    finally:
        if made:
            link.unlink()
    if result.returncode != 0 or "ERROR" in result.stderr:
        raise ModulesError(f"depmod -b {rootfs} {version}: {result.stderr.strip()}")


def check_after(moddir: Path, version: str, plan: Plan) -> None:
    """depmod's new index lists exactly the kept modules, and their dependencies are all kept."""
    after = read_kernel(moddir, version)
    missing = sorted(plan.keep - after.paths.keys())
    if missing:
        raise ModulesError(f"after depmod: kept module {missing[0]} is not in modules.dep")
    for name in sorted(after.paths):
        lost = [d for d in after.deps[name] if d not in after.paths]
        if lost:
            raise ModulesError(f"after depmod: {name} needs {lost[0]}, which was deleted")


# --- the report -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figures:
    modules_before: int
    modules_after: int
    count_before: int
    count_after: int
    firmware_before: int
    firmware_after: int
    firmware_files: int


def report(plan: Plan, kernel: Kernel, sizes: Mapping[str, int], figures: Figures) -> str:
    def mib(n: int) -> str:
        return f"{n / MiB:.1f} MiB"

    lines = [f"kernel modules of {kernel.version}, by group (a module may serve several):"]
    for group, modules in plan.groups.items():
        total = sum(sizes.get(m, 0) for m in modules)
        lines.append(
            f"  [{group}] {len(modules)} modules, {mib(total)}: {' '.join(sorted(modules))}"
        )
        if plan.builtin.get(group):
            lines.append(f"    built in: {' '.join(plan.builtin[group])}")
    if plan.excluded:
        lines.append(f"  [exclude] not kept: {' '.join(sorted(plan.excluded))}")
    f = figures
    lines += [
        f"modules: {f.count_before} -> {f.count_after} files,"
        f" {mib(f.modules_before)} -> {mib(f.modules_after)}",
        f"firmware: {mib(f.firmware_before)} -> {mib(f.firmware_after)} ({f.firmware_files} files)",
    ]
    return "\n".join(lines) + "\n"


# --- main -------------------------------------------------------------------------------------


def prune(rootfs: Path, conf_path: Path, firmware_of: Callable[[Path], tuple[str, ...]]) -> str:
    """Plan, delete, re-index, check; returns the report."""
    version = kernel_version(rootfs)
    moddir = rootfs / "usr/lib/modules" / version
    fwdir = rootfs / "usr/lib/firmware"
    kernel = with_modprobe_d(read_kernel(moddir, version), rootfs)
    conf = parse_conf(conf_path.read_text(encoding="utf-8"), conf_path.name)
    conf += rootfs_lists(rootfs)
    plan = make_plan(kernel, read_boards(rootfs, version, conf), conf)
    sizes = {m: (moddir / kernel.paths[m]).stat().st_size for m in kernel.paths}

    files, links = firmware_files(fwdir, rootfs) if fwdir.is_dir() else ([], {})
    named = {m: firmware_of(moddir / kernel.paths[m]) for m in sorted(plan.keep)}
    fw_keep = firmware_keep(named, files, conf, plan.board_models, links)
    before = (tree_size(moddir), len(kernel.paths), tree_size(fwdir) if fwdir.is_dir() else 0)

    prune_modules(moddir, frozenset(kernel.paths[m] for m in plan.keep))
    if fwdir.is_dir():
        prune_firmware(fwdir, fw_keep)
    run_depmod(rootfs, version)
    check_after(moddir, version, plan)
    after_fw = tree_size(fwdir) if fwdir.is_dir() else 0
    figures = Figures(
        before[0], tree_size(moddir), before[1], len(plan.keep), before[2], after_fw, len(fw_keep)
    )
    return report(plan, kernel, sizes, figures)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("rootfs", type=Path)
    parser.add_argument("--conf", type=Path, default=Path(__file__).with_name("modules.conf"))
    parser.add_argument("--report", type=Path)
    args = parser.parse_args(argv)
    try:
        text = prune(args.rootfs, args.conf, modinfo_firmware)
    except (ModulesError, OSError) as error:
        print(f"image/modules.py: {error}", file=sys.stderr)
        return 1
    if args.report:
        args.report.write_text(text, encoding="utf-8")
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
