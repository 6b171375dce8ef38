"""image/modules.py: the kernel modules and firmware the image keeps.

Small synthetic inputs: device trees compiled by dtc (the parser is checked against the reference
compiler), hand-written modules.dep / modules.alias / modules.softdep, and for the one end-to-end
run, modules that gcc builds as relocatable ELF objects with a ``.modinfo`` section: enough for
the host's depmod and modinfo, which the script runs, to index them like a kernel's.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from image import modules as m

KVER = "9.9.9-test"

DTS = """/dts-v1/;
/ {
    compatible = "acme,board-1", "acme,soc";
    #address-cells = <1>;
    #size-cells = <1>;
    soc {
        compatible = "simple-bus";
        #address-cells = <1>;
        #size-cells = <1>;
        ranges;
        mmc@7e300000 { compatible = "acme,soc-mmc"; reg = <0x7e300000 0x100>; };
        i2c@7e804000 { compatible = "acme,soc-i2c"; reg = <0x7e804000 0x100>; status = "ok"; };
        spi@7e204000 { compatible = "acme,soc-spi"; reg = <0x7e204000 4>; status = "disabled"; };
        pcie@7d500000 {
            compatible = "acme,soc-pcie";
            reg = <0x7d500000 0x100>;
            device_type = "pci";
            status = "okay";
        };
        usb@7e980000 {
            compatible = "acme,soc-usb";
            reg = <0x7e980000 0x100>;
            #address-cells = <1>;
            #size-cells = <0>;
            ethernet@1 { compatible = "usb424,ec00"; reg = <1>; };
        };
        bus@7e000000 {
            compatible = "simple-bus";
            reg = <0x7e000000 0x100>;
            status = "disabled";
            #address-cells = <1>;
            #size-cells = <1>;
            ranges;
            uart@7e201000 { compatible = "acme,soc-uart"; reg = <0x7e201000 0x100>; };
        };
    };
};
"""


def dtb(tmp_path: Path, source: str = DTS) -> bytes:
    (tmp_path / "board.dts").write_text(source, encoding="utf-8")
    out = tmp_path / "board.dtb"
    subprocess.run(
        ["dtc", "-q", "-I", "dts", "-O", "dtb", "-o", str(out), str(tmp_path / "board.dts")],
        check=True,
    )
    return out.read_bytes()


def kernel(
    dep: str, alias: str = "", softdep: str = "", builtin: frozenset[str] = frozenset()
) -> m.Kernel:
    paths, deps = m.parse_dep(dep)
    return m.Kernel(
        version=KVER,
        paths=paths,
        deps=deps,
        softdeps=m.parse_softdep(softdep),
        aliases=tuple(m.parse_alias(alias)),
        builtin=builtin,
    )


BOARD_KERNEL_DEP = """kernel/drivers/mmc/soc-mmc.ko: kernel/drivers/mmc/mmc-core.ko
kernel/drivers/mmc/mmc-core.ko:
kernel/drivers/i2c/soc-i2c.ko:
kernel/drivers/spi/soc-spi.ko:
kernel/drivers/tty/soc-uart.ko:
kernel/drivers/pci/soc-pcie.ko:
kernel/drivers/usb/soc-usb.ko:
kernel/drivers/net/usb/smsc95xx.ko:
kernel/drivers/net/usb/lan78xx.ko:
"""
BOARD_KERNEL_ALIAS = """# Aliases extracted from modules themselves.
alias of:N*T*Cacme,soc-mmcC* soc_mmc
alias of:N*T*Cacme,soc-mmc soc_mmc
alias of:N*T*Cacme,soc-i2c soc_i2c
alias of:N*T*Cacme,soc-spi soc_spi
alias of:N*T*Cacme,soc-uart soc_uart
alias of:NpcieTpciCacme,soc-pcie soc_pcie
alias of:N*T*Cacme,soc-usb soc_usb
alias usb:v0424pEC00d*dc*dsc*dp*ic*isc*ip*in* smsc95xx
alias usb:v0424p7800d*dc*dsc*dp*ic*isc*ip*in* lan78xx
"""


def test_the_device_tree_parser_reads_what_dtc_compiled(tmp_path: Path) -> None:
    nodes = {n.path: n for n in m.parse_dtb(dtb(tmp_path))}
    assert m.root_compatibles(nodes.values()) == ("acme,board-1", "acme,soc")
    mmc = nodes["/soc/mmc@7e300000"]
    assert mmc.name == "mmc"
    assert mmc.compatible == ("acme,soc-mmc",)
    assert mmc.modalias() == "of:NmmcT(null)Cacme,soc-mmc"
    assert nodes["/soc/pcie@7d500000"].modalias() == "of:NpcieTpciCacme,soc-pcie"
    assert nodes["/soc/usb@7e980000/ethernet@1"].compatible == ("usb424,ec00",)


def test_a_node_is_enabled_without_status_okay_or_ok_and_when_its_ancestors_are(
    tmp_path: Path,
) -> None:
    enabled = {n.path: n.enabled for n in m.parse_dtb(dtb(tmp_path))}
    assert enabled["/soc/mmc@7e300000"]  # no status
    assert enabled["/soc/i2c@7e804000"]  # "ok"
    assert enabled["/soc/pcie@7d500000"]  # "okay"
    assert not enabled["/soc/spi@7e204000"]  # "disabled"
    assert not enabled["/soc/bus@7e000000/uart@7e201000"]  # its bus is disabled


def test_a_bad_blob_is_refused() -> None:
    with pytest.raises(m.ModulesError, match="bad magic"):
        m.parse_dtb(b"\0" * 64)


def test_a_board_keeps_the_drivers_of_its_enabled_nodes_matched_by_alias_globs(
    tmp_path: Path,
) -> None:
    k = kernel(BOARD_KERNEL_DEP, BOARD_KERNEL_ALIAS)
    board = m.Board("acme/board-1.dtb", tuple(m.parse_dtb(dtb(tmp_path))))
    # smsc95xx: the USB id of a device-tree node; not lan78xx (no node has its id), not the
    # disabled spi or the uart on the disabled bus.
    assert m.board_modules(k, board) == {"soc_mmc", "soc_i2c", "soc_pcie", "soc_usb", "smsc95xx"}
    plan = m.make_plan(k, [board], [])
    assert plan.keep == {"soc_mmc", "mmc_core", "soc_i2c", "soc_pcie", "soc_usb", "smsc95xx"}
    assert plan.board_models == {"acme,board-1", "acme,soc"}


def test_excluded_modules_leave_the_boards_set(tmp_path: Path) -> None:
    k = kernel(BOARD_KERNEL_DEP, BOARD_KERNEL_ALIAS)
    board = m.Board("b.dtb", tuple(m.parse_dtb(dtb(tmp_path))))
    conf = m.parse_conf("[exclude] soc-usb smsc95xx  # headless\n", "modules.conf")
    plan = m.make_plan(k, [board], conf)
    assert plan.keep == {"soc_mmc", "mmc_core", "soc_i2c", "soc_pcie"}
    assert plan.excluded == {"soc_usb", "smsc95xx"}


FUNCTION_DEP = """\
kernel/net/bluetooth/bluetooth.ko: kernel/crypto/ecdh_generic.ko kernel/lib/crc16.ko
kernel/crypto/ecdh_generic.ko: kernel/crypto/ecc.ko
kernel/crypto/ecc.ko:
kernel/lib/crc16.ko:
kernel/drivers/bluetooth/hci_uart.ko: kernel/net/bluetooth/bluetooth.ko
kernel/fs/ext4/ext4.ko: kernel/fs/jbd2/jbd2.ko
kernel/fs/jbd2/jbd2.ko:
kernel/crypto/crc32c_generic.ko:
kernel/arch/arm64/crypto/crc32c-arm64.ko:
kernel/crypto/cmac.ko:
kernel/fs/nls/nls_cp437.ko:
kernel/drivers/media/dvb-usb-rtl28xxu.ko: kernel/lib/crc16.ko
"""
FUNCTION_ALIAS = """alias crypto-crc32c crc32c_generic
alias crypto-crc32c crc32c_arm64
alias crypto-cmac cmac
alias tty-ldisc-15 hci_uart
alias net-pf-31 bluetooth
alias fs-tracefs tracefs
"""
FUNCTION_SOFTDEP = """# Soft dependencies extracted from modules themselves.
softdep ext4 pre: crypto-crc32c
softdep hci_uart post: nls_cp437 pre: no-such-thing
"""


def function_kernel() -> m.Kernel:
    return kernel(
        FUNCTION_DEP, FUNCTION_ALIAS, FUNCTION_SOFTDEP, builtin=frozenset({"tracefs", "ipv6"})
    )


def test_a_name_resolves_to_a_module_a_built_in_one_or_an_alias_glob() -> None:
    k = function_kernel()
    assert m.resolve(k, "hci-uart") == m.Resolved(frozenset({"hci_uart"}), False)
    assert m.resolve(k, "ipv6") == m.Resolved(frozenset(), True)
    assert m.resolve(k, "fs-tracefs") == m.Resolved(frozenset(), True)
    assert m.resolve(k, "crypto-crc32c").modules == {"crc32c_generic", "crc32c_arm64"}
    assert m.resolve(k, "tty-ldisc-15").modules == {"hci_uart"}
    assert m.resolve(k, "tty-ldisc-16") == m.Resolved(frozenset(), False)


# hci_uart with its dependencies (modules.dep) and its post: softdep in function_kernel().
HCI_UART_CLOSURE = {"hci_uart", "bluetooth", "ecdh_generic", "ecc", "crc16", "nls_cp437"}


def test_the_closure_follows_modules_dep_and_soft_dependencies_pre_and_post() -> None:
    k = function_kernel()
    # ext4's pre: softdep is an alias (both crc32c providers); hci_uart's post: a module; its
    # pre: softdep on a name the kernel lacks is left out, as modprobe leaves it.
    assert m.closure(k, ["ext4"]) == {"ext4", "jbd2", "crc32c_generic", "crc32c_arm64"}
    assert m.closure(k, ["hci_uart"]) == HCI_UART_CLOSURE


def test_groups_keep_their_closures_and_name_built_in_items() -> None:
    conf = m.parse_conf(
        "# the gateway's functions\n"
        "[bluetooth] tty-ldisc-15 crypto-cmac  # the BLE bridge\n"
        "[boot] ext4 ipv6  # the root\n"
        "[bluetooth] net-pf-31  # the socket family\n",
        "modules.conf",
    )
    plan = m.make_plan(function_kernel(), [], conf)
    assert plan.groups["bluetooth"] == HCI_UART_CLOSURE | {"cmac"}
    assert plan.builtin["boot"] == ("ipv6",)
    assert "dvb_usb_rtl28xxu" not in plan.keep


def test_a_required_module_the_kernel_lacks_fails_in_one_line_naming_it_and_its_group() -> None:
    conf = m.parse_conf("\n[wifi] brcmfmac  # the onboard WiFi\n", "modules.conf")
    with pytest.raises(m.ModulesError) as failed:
        m.make_plan(function_kernel(), [], conf)
    message = str(failed.value)
    assert message == (
        f"modules.conf:2: [wifi] brcmfmac: not in kernel {KVER}"
        " (no such module, built-in module or alias)"
    )
    assert "\n" not in message


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("[wifi] brcmfmac\n", "modules.conf:1: expected '[group] items  # reason'"),
        ("[wifi]  # nothing\n", "modules.conf:1: [wifi] lists nothing"),
        ("[exclude] no-such  # x\n", "[exclude] no_such: not a module"),
    ],
)
def test_a_conf_line_without_reason_or_items_or_an_unknown_exclusion_fails(
    text: str, complaint: str
) -> None:
    with pytest.raises(m.ModulesError, match=rf"^{re.escape(complaint)}"):
        m.make_plan(function_kernel(), [], m.parse_conf(text, "modules.conf"))


FIRMWARE = [
    "brcm/brcmfmac43455-sdio.bin",
    "brcm/brcmfmac43455-sdio.clm_blob",
    "brcm/brcmfmac43455-sdio.acme,board-1.txt",
    "brcm/brcmfmac43455-sdio.other,board.txt",
    "brcm/brcmfmac43455-sdio.txt",
    "brcm/brcmfmac4356-sdio.bin",
    "brcm/BCM4345C0.hcd",
    "cypress/cyfmac43455-sdio.bin",
    "regulatory.db",
    "regulatory.db-debian",
    "unused/thing.bin",
]


def test_firmware_wildcards_board_slots_narrowing_extras_and_link_targets() -> None:
    named = {
        "brcmfmac": (
            "brcm/brcmfmac*-sdio.*.txt",  # ".*." is the board: only acme,board-1's
            "brcm/brcmfmac4356-sdio.bin",
            "brcm/brcmfmac43455-sdio.bin",
            "brcm/brcmfmac43455-sdio.clm_blob",
        ),
        "cfg80211": ("regulatory.db",),
        "btbcm": (),
    }
    conf = m.parse_conf(
        "[firmware-of brcmfmac] brcm/brcmfmac43455-*  # the board's chip\n"
        "[firmware] brcm/BCM4345C*.hcd  # asked for by name at run time\n",
        "modules.conf",
    )
    links: dict[str, str | None] = {
        "brcm/brcmfmac43455-sdio.bin": "cypress/cyfmac43455-sdio.bin",
        "regulatory.db": "regulatory.db-debian",
    }
    keep = m.firmware_keep(named, FIRMWARE, conf, frozenset({"acme,board-1"}), links)
    assert keep == {
        "brcm/brcmfmac43455-sdio.bin",
        "brcm/brcmfmac43455-sdio.clm_blob",
        "brcm/brcmfmac43455-sdio.acme,board-1.txt",
        "brcm/BCM4345C0.hcd",
        "cypress/cyfmac43455-sdio.bin",
        "regulatory.db",
        "regulatory.db-debian",
    }


def test_symlinks_resolve_inside_the_rootfs_through_absolute_targets(tmp_path: Path) -> None:
    (tmp_path / "usr/lib/firmware/brcm").mkdir(parents=True)
    (tmp_path / "usr/lib/firmware/cypress").mkdir()
    (tmp_path / "etc/alternatives").mkdir(parents=True)
    (tmp_path / "lib").symlink_to("usr/lib")
    fw = tmp_path / "usr/lib/firmware"
    (fw / "cypress/cyfmac43455-sdio.bin").write_bytes(b"x")
    (fw / "brcm/brcmfmac43455-sdio.bin").symlink_to("../cypress/cyfmac43455-sdio.bin")
    (fw / "regulatory.db-debian").write_bytes(b"db")
    (tmp_path / "etc/alternatives/regulatory.db").symlink_to("/lib/firmware/regulatory.db-debian")
    (fw / "regulatory.db").symlink_to("/etc/alternatives/regulatory.db")
    (fw / "elsewhere").symlink_to("/etc/hostname")
    files, links = m.firmware_files(fw, tmp_path)
    assert "regulatory.db" in files
    assert links == {
        "brcm/brcmfmac43455-sdio.bin": "cypress/cyfmac43455-sdio.bin",
        "regulatory.db": "regulatory.db-debian",
        "elsewhere": None,
    }
    (tmp_path / "loop").symlink_to("/loop")
    with pytest.raises(m.ModulesError, match="symlink loop"):
        m.rooted_realpath(tmp_path, "/loop")


# --- end to end: real depmod and modinfo on modules gcc builds ------------------------------------


def build_module(path: Path, modinfo: list[str]) -> None:
    """A relocatable ELF object with a .modinfo section: what depmod and modinfo read."""
    path.parent.mkdir(parents=True, exist_ok=True)
    source = path.with_suffix(".c")
    source.write_text(
        "".join(
            f'__attribute__((section(".modinfo"), used)) static const char i{n}[] = "{entry}";\n'
            for n, entry in enumerate(["license=GPL", *modinfo])
        ),
        encoding="utf-8",
    )
    subprocess.run(["gcc", "-c", str(source), "-o", str(path)], check=True)
    source.unlink()


def make_rootfs(root: Path) -> Path:
    """A Debian-like tree: /lib -> usr/lib, one kernel with four modules, a dtb, firmware."""
    (root / "usr/lib").mkdir(parents=True)
    (root / "lib").symlink_to("usr/lib")
    moddir = root / "usr/lib/modules" / KVER
    kernel_dir = moddir / "kernel"
    build_module(
        kernel_dir / "drivers/mmc/soc-mmc.ko",
        ["alias=of:N*T*Cacme,soc-mmc", "firmware=acme/mmc-*.bin", "softdep=pre: helper"],
    )
    build_module(kernel_dir / "lib/helper.ko", [])
    build_module(kernel_dir / "lib/extra.ko", [])
    build_module(kernel_dir / "drivers/media/tuner.ko", ["alias=usb:v0BDAp2838d*"])
    for name in ("modules.builtin", "modules.order", "modules.builtin.modinfo"):
        (moddir / name).write_bytes(b"")
    subprocess.run(["depmod", "-b", str(root), KVER], check=True, capture_output=True)
    dtbs = root / f"usr/lib/linux-image-{KVER}/acme"
    dtbs.mkdir(parents=True)
    (dtbs / "board-1.dtb").write_bytes(dtb(root.parent))
    fw = root / "usr/lib/firmware/acme"
    fw.mkdir(parents=True)
    for name in ("mmc-1.bin", "tuner.bin"):
        (fw / name).write_bytes(b"fw")
    return root


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc (bootstrap installs it)")
def test_end_to_end_the_rootfs_keeps_what_the_board_needs_and_is_reindexed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rootfs = make_rootfs(tmp_path / "rootfs")
    conf = tmp_path / "modules.conf"
    conf.write_text("[boards] acme/board-1.dtb  # the board\n", encoding="utf-8")
    # A softdep of the rootfs's own modprobe.d counts as the kernel's do.
    (rootfs / "etc/modprobe.d").mkdir(parents=True)
    (rootfs / "etc/modprobe.d/x.conf").write_text("softdep helper post: extra\n", encoding="utf-8")
    report = tmp_path / "report.txt"
    assert m.main([str(rootfs), "--conf", str(conf), "--report", str(report)]) == 0
    moddir = rootfs / "usr/lib/modules" / KVER
    left = sorted(p.relative_to(moddir).as_posix() for p in moddir.rglob("*.ko"))
    assert left == ["kernel/drivers/mmc/soc-mmc.ko", "kernel/lib/extra.ko", "kernel/lib/helper.ko"]
    assert not (moddir / "kernel/drivers/media").exists()  # emptied folders go too
    assert "tuner" not in (moddir / "modules.alias").read_text(encoding="utf-8")
    assert "softdep soc_mmc pre: helper" in (moddir / "modules.softdep").read_text(encoding="utf-8")
    assert sorted(p.name for p in (rootfs / "usr/lib/firmware").rglob("*")) == ["acme", "mmc-1.bin"]
    text = report.read_text(encoding="utf-8")
    assert "[board acme/board-1.dtb] 3 modules" in text
    assert "modules: 4 -> 3 files" in text
    assert text == capsys.readouterr().out


def test_end_to_end_a_missing_dtb_fails_with_one_line_and_deletes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rootfs = make_rootfs(tmp_path / "rootfs")
    conf = tmp_path / "modules.conf"
    conf.write_text("[boards] acme/board-2.dtb  # a board\n", encoding="utf-8")
    assert m.main([str(rootfs), "--conf", str(conf)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        "image/modules.py: modules.conf:1: [boards] acme/board-2.dtb: no such dtb"
    )
    assert err.count("\n") == 1
    assert len(list((rootfs / "usr/lib/modules" / KVER).rglob("*.ko"))) == 4


# --- the repository's own lists ----------------------------------------------------------------

REPO = Path(__file__).resolve().parents[2]


def test_every_module_the_image_loads_or_puts_in_its_initramfs_is_in_a_group() -> None:
    conf = m.parse_conf((REPO / "image/modules.conf").read_text(encoding="utf-8"), "modules.conf")
    grouped = {i.replace("-", "_") for c in m.module_lines(conf) for i in c.items}
    listed: set[str] = set()
    for name in ("initramfs-modules", "modules-load-msgflo.conf"):
        for line in (REPO / "image/rootfs" / name).read_text(encoding="utf-8").splitlines():
            words = line.split("#", 1)[0].split()
            listed.update(w.replace("-", "_") for w in words[:1])
    assert listed - grouped == set()
