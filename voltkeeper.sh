#!/usr/bin/env bash
# VoltKeeper bootstrap: sets up everything a fresh Debian/Ubuntu machine needs, then runs a job.
#   ./voltkeeper.sh demo [--port P]  the window on the simulated campus (its simulator on P+1..)
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
# ... on an X11 desktop: what PySide6's xcb platform plugin (libqxcb.so, libQt6XcbQpa) and its
# GL integrations link against (ldd them to check after a PySide6 upgrade),
system_packages+=(libx11-xcb1 libxcb-cursor0 libxcb-glx0 libxcb-icccm4 libxcb-image0
                  libxcb-keysyms1 libxcb-randr0 libxcb-render0 libxcb-render-util0 libxcb-shape0
                  libxcb-shm0 libxcb-sync1 libxcb-util1 libxcb-xfixes0 libxcb-xkb1
                  libxkbcommon-x11-0)
# ... on Wayland (libqwayland.so, libQt6WaylandClient and their shell and GL plugins),
system_packages+=(libwayland-client0 libwayland-cursor0 libwayland-egl1)
# ... and an X server without a screen, for the test that the xcb plugin loads.
system_packages+=(xvfb xauth)

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
    local out  # quiet unless it fails (apt's notes, such as debconf's, are noise here)
    if ! out="$($sudo apt-get update -qq 2>&1 &&
                $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" 2>&1)"; then
        echo "$out" >&2
        echo "voltkeeper: could not install ${missing[*]}" >&2
        return 1
    fi
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
