#!/usr/bin/env bash
# VoltKeeper bootstrap: sets up everything a fresh Debian/Ubuntu machine needs, then runs a job.
#   ./voltkeeper.sh demo      the window on the simulated campus (until then: the simulator)
#   ./voltkeeper.sh test      the whole test suite and the linter
#   ./voltkeeper.sh setup     only set up
#   ./voltkeeper.sh run ARGS  python main.py ARGS inside the project's environment
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
venv="${VOLTKEEPER_VENV:-$here/.venv}"
python="${PYTHON:-python3}"

# System libraries Qt needs offscreen, a CJK font, poppler (PDF to PNG), mbpoll and socat (tests).
system_packages=(libgl1 libegl1 libxkbcommon0 libfontconfig1 libdbus-1-3 libglib2.0-0
                 fonts-wqy-microhei poppler-utils mbpoll socat)

setup_system() {
    command -v dpkg-query >/dev/null 2>&1 || return 0
    local missing=()
    for p in "${system_packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "voltkeeper: installing system packages: ${missing[*]}" >&2
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

setup_python() {
    local stamp="$venv/.voltkeeper-installed"
    if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
        rm -rf "$venv"
        if ! "$python" -m venv "$venv"; then
            # Debian's python3 without ensurepip: bring python3-venv, then try again
            echo "voltkeeper: python venv failed; installing python3-venv" >&2
            rm -rf "$venv"
            local sudo=""
            [ "$(id -u)" -ne 0 ] && sudo="sudo"
            $sudo apt-get update -qq && $sudo apt-get install -y -qq python3-venv >/dev/null
            "$python" -m venv "$venv"
        fi
    fi
    if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
        "$venv/bin/python" -m pip install -q --upgrade pip >/dev/null
        "$venv/bin/python" -m pip install -q -e ".[dev]"
        touch "$stamp"
    fi
    "$venv/bin/python" -m app.i18n compile >/dev/null
}

setup() { setup_system; setup_python; }

job="${1:-demo}"; shift || true
case "$job" in
    setup) setup ;;
    demo)  setup; exec "$venv/bin/python" main.py --demo "$@" ;;
    run)   setup; exec "$venv/bin/python" main.py "$@" ;;
    test)
        setup
        export QT_QPA_PLATFORM=offscreen
        "$venv/bin/ruff" check .
        exec "$venv/bin/python" -m pytest "$@" ;;
    *) echo "usage: $0 demo|test|setup|run ARGS" >&2; exit 2 ;;
esac
