#!/usr/bin/env bash
# Set up a development / CI machine and run the gateway's main jobs.
#
#   ./bootstrap.sh demo    set up if needed, then run the live demo (private mosquitto + participants)
#   ./bootstrap.sh test    set up if needed, then run scripts/check and the whole test suite
#   ./bootstrap.sh setup   only set up (apt packages, .venv, editable install with test extras)
#   ./bootstrap.sh bench   set up if needed, then run python -m bench.participant (bench/README.md)
#
# Idempotent: each step checks what is already there and does only what is missing.
# Works as root or through sudo on Debian 12 / Raspberry Pi OS.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

# System packages the package, its tests and its demo use. Later subsystems add theirs here.
# "package:command" means: skip the package when the command is already there (a Node.js from
# elsewhere brings its own npm, which conflicts with Debian's npm package).
APT_PACKAGES=(mosquitto mosquitto-clients python3 python3-venv python3-pip openssl ca-certificates
    gcc procps systemd
    nodejs:node npm:npm cmake make g++ doctest-dev clang-format gcc-avr avr-libc arduino-core-avr gcc-arm-none-eabi
    simavr libsimavr-dev libsimavrparts1 gcc-xtensa-lx106 picolibc-xtensa-lx106-elf
    hostapd dnsmasq-base libnewlib-arm-none-eabi libfaketime iproute2:ip mmdebstrap arch-test xz-utils:xz qemu-user-static binfmt-support qemu-system-arm fdisk dosfstools mtools rabbitmq-server
    chromium rtl-433 kmod:depmod device-tree-compiler:dtc)
VENV="$here/.venv"
# The dashboard's browser tests drive Debian's chromium through Playwright: never a browser
# Playwright would download.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

log() { printf 'bootstrap: %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing_apt_packages() {
    local entry pkg cmd
    for entry in "${APT_PACKAGES[@]}"; do
        pkg="${entry%%:*}"
        cmd="${entry#*:}"
        if [ "$cmd" != "$entry" ] && command -v "$cmd" >/dev/null 2>&1; then
            continue
        fi
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
            printf '%s\n' "$pkg"
        fi
    done
}

install_apt_packages() {
    local missing
    mapfile -t missing < <(missing_apt_packages)
    [ "${#missing[@]}" -eq 0 ] && return 0
    log "installing system packages: ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    # The mosquitto package may try to start the system broker; the gateway's tests and demo
    # never use it: they start private brokers on free loopback ports.
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
}

pick_python() {
    # Prefer the python3 on PATH (pyenv, Debian); it must be >= 3.11 and able to make a venv.
    local py
    for py in python3 /usr/bin/python3; do
        if command -v "$py" >/dev/null 2>&1 &&
            "$py" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            command -v "$py"
            return 0
        fi
    done
    log "no python3 >= 3.11 with venv/ensurepip found"
    return 1
}

# ensure_venv DIR HASH LABEL PIP-ARGS...: a venv at DIR with PIP-ARGS installed. A stamp file
# keeps HASH (of what was asked for), so asking again for the same thing does nothing.
ensure_venv() {
    local venv="$1" want="$2" label="$3" have=""
    shift 3
    local stamp="$venv/.msgflo-gateway-installed"
    [ -f "$stamp" ] && have="$(cat "$stamp")"
    if [ -x "$venv/bin/python" ] && [ "$want" = "$have" ]; then
        return 0
    fi
    if [ ! -x "$venv/bin/python" ]; then
        log "creating $venv"
        "$(pick_python)" -m venv "$venv"
    fi
    log "installing $label"
    "$venv/bin/python" -m pip install -q --upgrade pip
    "$venv/bin/python" -m pip install -q "$@"
    printf '%s\n' "$want" >"$stamp"
}

install_venv() {
    # The image's wheels (image/wheels.lock) constrain the venv: the tests run the versions the
    # image ships, and a release on PyPI changes neither until the lock is renewed.
    local constraints rc=0
    constraints="$(mktemp)"
    grep -oE '^[A-Za-z0-9_.-]+==[^ ]+' image/wheels.lock >"$constraints"
    ensure_venv "$VENV" "$(cat pyproject.toml image/wheels.lock | sha256sum | cut -d' ' -f1)" \
        "msgflo-gateway (editable, with test and BLE extras) into .venv" \
        -c "$constraints" -e ".[test,ble]" || rc=$?
    rm -f "$constraints"
    return "$rc"
}

install_npm_tools() {
    # Reference implementations from the npm registry that tests compare against (tests/npm).
    local dir="$here/tests/npm" want have=""
    want="$(sha256sum "$dir/package.json" | cut -d' ' -f1)"
    [ -f "$dir/node_modules/.msgflo-gateway-installed" ] &&
        have="$(cat "$dir/node_modules/.msgflo-gateway-installed")"
    [ "$want" = "$have" ] && return 0
    log "installing npm test tools into tests/npm"
    (cd "$dir" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
    printf '%s\n' "$want" >"$dir/node_modules/.msgflo-gateway-installed"
}

install_reference_python() {
    # msgflo-python 0.4.1 (PyPI), the original Python participant library, for the interop tests.
    # A venv of its own keeps it apart from the gateway's package (both provide a module "msgflo").
    # paho-mqtt 1.6.1: msgflo 0.4.1 calls mqtt.Client() with no callback API version, which paho
    # 2.0.0 rejects and 2.1+ accepts only with a DeprecationWarning; 1.x is what it was written
    # for. haigha is its AMQP dependency (Python 2 code; msgflo only imports it, and on Python 3
    # catches the SyntaxError).
    local packages=(msgflo==0.4.1 paho-mqtt==1.6.1 gevent==26.9.0 haigha==0.9.0)
    ensure_venv "$here/tests/.venv-msgflo041" \
        "$(printf '%s\n' "${packages[@]}" | sha256sum | cut -d' ' -f1)" \
        "${packages[*]} into tests/.venv-msgflo041" "${packages[@]}"
}

setup() {
    install_apt_packages
    install_venv
    install_npm_tools
    install_reference_python
}

run_tests() {
    export PATH="$VENV/bin:$PATH"
    scripts/check
    MSGFLO_TOOL_AUDIT=1 python -m pytest "$@"
}

main() {
    local cmd="${1:-}"
    [ $# -gt 0 ] && shift
    case "$cmd" in
        setup) setup ;;
        # setup is not chained with && : set -e does not apply to a function run inside a list.
        demo)
            setup
            exec "$VENV/bin/msgflo-gateway-demo" "$@"
            ;;
        test)
            setup
            run_tests "$@"
            ;;
        bench)
            setup
            exec "$VENV/bin/python" -m bench.participant "$@"
            ;;
        *)
            sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
            [ -z "$cmd" ] && exit 0
            exit 2
            ;;
    esac
}

main "$@"
