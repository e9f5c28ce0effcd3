#!/usr/bin/env bash
# Set-up and entry points for a fresh machine. Needs Python 3.11+ (and PostgreSQL only if used).
#   ./dev.sh run    create .venv, install, initialise the database, load the example programmes
#                   if the database has none, and run the bot (TELEGRAM_BOT_TOKEN must be set)
#   ./dev.sh test   create .venv, install, and run the whole test suite (extra args go to pytest)
#   ./dev.sh lint   ruff check, ruff format --check and mypy over the code (CI runs it first)
#   ./dev.sh tiendo ARGS...   any tiendo command inside the venv
#   ./dev.sh i18n extract|update|compile|check|import-toml   message catalogs (README, Translating)
set -euo pipefail
cd "$(dirname "$0")"

find_python() {
    for candidate in python3.13 python3.12 python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
           "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"; return 0
        fi
    done
    echo "tiendo needs Python 3.11 or newer" >&2; return 1
}

ensure_venv() {
    # Reinstall when pyproject.toml changed since the last install.
    if [ ! -x .venv/bin/python ] || [ ! -f .venv/.installed ] || [ pyproject.toml -nt .venv/.installed ]; then
        local python; python=$(find_python)
        [ -x .venv/bin/python ] || "$python" -m venv .venv
        .venv/bin/python -m pip install --quiet --upgrade pip
        .venv/bin/python -m pip install --quiet -e ".[dev]"
        touch .venv/.installed
    fi
    # Bytecode, as pip compiles what it installs (an editable install does not compile tiendo's
    # own modules, and pip compiles none for PYTHONOPTIMIZE=2, which `run` uses): without it each
    # start compiles the modules again when PYTHONDONTWRITEBYTECODE is set or the venv is
    # read-only (systemd's ProtectSystem), which costs time and memory the process keeps
    # (bench/footprint.py). The libraries once per install, tiendo's modules each time (only
    # what changed); a file that does not compile is left to Python to report when imported.
    if [ ! -f .venv/.compiled ] || [ .venv/.installed -nt .venv/.compiled ]; then
        .venv/bin/python -m compileall -q -o 2 .venv/lib/python3*/site-packages >/dev/null || true
        touch .venv/.compiled
    fi
    .venv/bin/python -m compileall -q -o 0 -o 2 bot handlers storage >/dev/null || true
}

command=${1:-}
[ $# -gt 0 ] && shift
case "$command" in
    run)
        ensure_venv
        .venv/bin/tiendo init
        # A new database gets the two example programmes: 2024's, closed (its reports stay
        # readable), and the next year's moved to the current year, so that a newcomer is
        # not nudged about tasks years overdue.
        if [ -z "$(.venv/bin/tiendo programme list --codes)" ]; then
            .venv/bin/tiendo import examples/programme-59-QD-BKHCN-2024.yaml
            .venv/bin/tiendo programme close QD-59-BKHCN-2024
            .venv/bin/tiendo import --move-to-year "$(date +%Y)" examples/programme-12-QD-BKHCN-2025.yaml
        fi
        # Without the libraries' docstrings (and asserts), which nothing at run time reads: about
        # 7 MiB less for the life of the process (README, "Reporting from chat", bench/footprint.py).
        PYTHONOPTIMIZE=2 exec .venv/bin/tiendo run "$@"
        ;;
    test)
        ensure_venv
        exec .venv/bin/python -m pytest "$@"
        ;;
    lint)
        ensure_venv
        .venv/bin/ruff check .
        .venv/bin/ruff format --check .
        exec .venv/bin/mypy bot handlers storage
        ;;
    tiendo)
        ensure_venv
        if [ "${1:-}" = run ]; then export PYTHONOPTIMIZE=2; fi  # as `./dev.sh run`
        exec .venv/bin/tiendo "$@"
        ;;
    i18n)
        ensure_venv
        exec .venv/bin/python tools/i18n.py "$@"
        ;;
    *)
        sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
        exit 2
        ;;
esac
