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
    # tiendo's own modules as bytecode, as pip compiles what it installs (an editable install
    # does not): without it each start compiles them again when PYTHONDONTWRITEBYTECODE is set,
    # which costs a quarter of a second and about 1 MiB that the process keeps
    # (bench/footprint.py). Only what changed since is compiled again; a file that does not
    # compile is left to Python to report when it is imported.
    .venv/bin/python -m compileall -q bot handlers storage >/dev/null || true
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
        exec .venv/bin/tiendo run "$@"
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
