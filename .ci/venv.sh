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
