#!/usr/bin/env python3
"""Build the examples for an Arduino Uno (ATmega328P, 16 MHz) and report their flash and RAM.

Compiles Debian's Arduino core (package arduino-core-avr), the library's src/ and each example
sketch with avr-gcc/avr-g++ as the Arduino IDE would (a .ino becomes C++ with ``#include
<Arduino.h>`` in front; the sketches declare their functions before use, so no prototypes are
generated), links each with --gc-sections and reads the section sizes from the ELF with
avr-size:

    flash = .text + .data        (the program and the initial values of variables)
    RAM   = .data + .bss         (static RAM; the stack comes on top)

    python3 firmware/extras/build_avr.py [--build DIR] [--json FILE] [--jobs N] [EXAMPLE ...]

The flags are those of the core's platform.txt, link-time optimisation included (-flto, as the
Arduino IDE builds for an Uno); ``--no-lto`` shows the sizes without it. Debian's
arduino-core-avr 1.8.7 with gcc-avr 5.4 needs -DDECIMAL_DIG=__DECIMAL_DIG__.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

FIRMWARE = Path(__file__).resolve().parents[1]
ARDUINO = Path("/usr/share/arduino/hardware/arduino/avr")
CORE = ARDUINO / "cores" / "arduino"
VARIANT = ARDUINO / "variants" / "standard"
MCU = "atmega328p"
FLASH_SIZE = 32256  # 32 KB minus the 512-byte optiboot bootloader
RAM_SIZE = 2048

COMMON = [
    "-c",
    "-Os",
    f"-mmcu={MCU}",
    "-DF_CPU=16000000L",
    "-DARDUINO=10807",
    "-DARDUINO_AVR_UNO",
    "-DARDUINO_ARCH_AVR",
    "-DDECIMAL_DIG=__DECIMAL_DIG__",
    "-ffunction-sections",
    "-fdata-sections",
    f"-I{CORE}",
    f"-I{VARIANT}",
]
CXX = ["-std=gnu++11", "-fno-exceptions", "-fno-threadsafe-statics", "-fno-rtti"]
# The library and the sketches are held to -Werror; the core is compiled as the IDE does.
STRICT = ["-Wall", "-Wextra", "-Werror"]


@dataclass(frozen=True)
class Size:
    example: str
    flash: int
    ram: int
    text: int
    data: int
    bss: int


LTO = ["-flto", "-fno-fat-lto-objects"]


def compile_one(source: Path, output: Path, strict: bool, extra: list[str]) -> Path:
    """One translation unit; the .ino is compiled through a generated .cpp."""
    output.parent.mkdir(parents=True, exist_ok=True)
    if source.suffix == ".ino":
        cpp = output.with_suffix(".cpp")
        cpp.write_text(f'#include <Arduino.h>\n#line 1 "{source}"\n{source.read_text()}')
        source = cpp
    tool = "avr-gcc" if source.suffix in (".c", ".S") else "avr-g++"
    flags = list(COMMON) + extra
    if source.suffix == ".cpp":
        flags += CXX
    elif source.suffix == ".S":
        flags += ["-x", "assembler-with-cpp"]
    else:
        flags += ["-std=gnu11"]
    if strict:
        flags += STRICT
    run([tool, *flags, str(source), "-o", str(output)])
    return output


def run(command: list[str]) -> str:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)}\n{result.stdout}{result.stderr}")
    return result.stdout


def section_sizes(elf: Path) -> tuple[int, int, int]:
    """text, data and bss of an ELF, as avr-size's Berkeley format gives them."""
    line = run(["avr-size", "-B", str(elf)]).splitlines()[1].split()
    return int(line[0]), int(line[1]), int(line[2])


def build(examples: list[str], build_dir: Path, jobs: int, lto: bool = True) -> list[Size]:
    """Compiles the core, the library and the examples into build_dir; the sizes per example."""
    tools = ("avr-gcc", "avr-g++", "avr-gcc-ar", "avr-size")
    missing = [tool for tool in tools if not shutil.which(tool)]
    if missing or not CORE.is_dir():
        sys.exit(f"missing {missing or CORE}: install gcc-avr, avr-libc and arduino-core-avr")
    core_sources = sorted(p for p in CORE.iterdir() if p.suffix in (".c", ".cpp", ".S"))
    lib_sources = sorted((FIRMWARE / "src").glob("*.cpp"))
    sketches = [FIRMWARE / "examples" / name / f"{name}.ino" for name in examples]
    core_flags = LTO if lto else []
    lib_flags = [f"-I{FIRMWARE / 'src'}", *core_flags]
    jobs_list = [(s, build_dir / "core" / f"{s.name}.o", False, core_flags) for s in core_sources]
    jobs_list += [(s, build_dir / "lib" / f"{s.name}.o", True, lib_flags) for s in lib_sources]
    jobs_list += [(s, build_dir / s.stem / f"{s.stem}.o", True, lib_flags) for s in sketches]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        objects = list(pool.map(lambda job: compile_one(*job), jobs_list))
    core = build_dir / "core.a"
    core.unlink(missing_ok=True)
    run(["avr-gcc-ar", "rcs", str(core), *map(str, objects[: len(core_sources)])])
    # An archive, as the IDE makes of a library with dot_a_linkage=true (library.properties):
    # the linker takes only the objects a sketch uses. Linked as loose objects, MsgfloMqtt.o
    # would come along with IPAddress's static constructor (INADDR_NONE, from the core's
    # Client.h) and about 400 B of Print code that a serial-only sketch never calls.
    library = build_dir / "library.a"
    library.unlink(missing_ok=True)
    lib_objects = objects[len(core_sources) : len(core_sources) + len(lib_sources)]
    run(["avr-gcc-ar", "rcs", str(library), *map(str, lib_objects)])
    sizes = []
    for sketch, obj in zip(sketches, objects[len(core_sources) + len(lib_sources) :], strict=True):
        elf = build_dir / sketch.stem / f"{sketch.stem}.elf"
        link = ["avr-gcc", "-Os", f"-mmcu={MCU}", "-Wl,--gc-sections", "-o", str(elf)]
        link += ["-flto", "-fuse-linker-plugin"] if lto else []
        run([*link, str(obj), str(library), str(core), "-lm"])
        text, data, bss = section_sizes(elf)
        sizes.append(Size(sketch.stem, text + data, data + bss, text, data, bss))
    return sizes


def report(sizes: list[Size]) -> str:
    title = "(ATmega328P, avr-g++ -Os)"
    lines = [f"{'example':<12} {'flash':>7} {'':>6} {'RAM':>6} {'':>6}   {title}"]
    for size in sizes:
        flash = f"{size.flash:>7} {100 * size.flash / FLASH_SIZE:>5.1f}%"
        ram = f"{size.ram:>6} {100 * size.ram / RAM_SIZE:>5.1f}%"
        lines.append(f"{size.example:<12} {flash} {ram}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("examples", nargs="*", default=["ButtonLed", "Temperature", "Echo"])
    parser.add_argument("--build", type=Path, help="build directory (default: a temporary one)")
    parser.add_argument("--json", type=Path, help="also write the sizes here")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--no-lto", action="store_true", help="without link-time optimisation")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="msgflo-avr-") as temporary:
        sizes = build(args.examples, args.build or Path(temporary), args.jobs, not args.no_lto)
    print(report(sizes))
    if args.json:
        args.json.write_text(json.dumps([asdict(size) for size in sizes], indent=2) + "\n")


if __name__ == "__main__":
    main()
