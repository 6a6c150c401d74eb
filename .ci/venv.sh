# Shared by ./run and ./test: create ./.venv with a Python >= 3.11 and install the project into it,
# reinstalling only when pyproject.toml changed since the last install.
find_python() {
  for candidate in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
    [ -n "$candidate" ] || continue
    command -v "$candidate" >/dev/null 2>&1 || continue
    if "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "Shoplist needs Python 3.11 or newer; none was found on PATH" >&2
  return 1
}

ensure_venv() {
  local extras="$1" spec="." stamp=".venv/.installed-$1"
  [ -n "$extras" ] && spec=".[$extras]"
  if [ ! -x .venv/bin/python ]; then
    local python; python=$(find_python)
    echo "Creating .venv with $python ..."
    "$python" -m venv .venv
    .venv/bin/python -m pip install --quiet --upgrade pip
  fi
  local want; want=$(sha256sum pyproject.toml | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "Installing shoplist$([ -n "$extras" ] && echo "[$extras]") into .venv ..."
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e "$spec"
    echo "$want" > "$stamp"
  fi
}

# Used by the packaging scripts: create build/venv (kept apart from ./.venv, whose editable install a
# frozen bundle must not depend on) and install the project with the `package` extra into it, reinstalling
# only when pyproject.toml changed since the last install. Runs pip at low priority.
ensure_build_venv() {
  local stamp="build/venv/.installed-package" want
  if [ ! -x build/venv/bin/python ]; then
    local python; python=$(find_python)
    echo "== creating build/venv with $python"
    mkdir -p build
    "$python" -m venv build/venv
    build/venv/bin/python -m pip install --quiet --upgrade pip
  fi
  want=$(shasum -a 256 pyproject.toml 2>/dev/null || sha256sum pyproject.toml); want=${want%% *}
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "== installing shoplist[package] into build/venv"
    nice -n 10 build/venv/bin/python -m pip install --quiet --disable-pip-version-check ".[package]"
    echo "$want" > "$stamp"
  fi
}
