# Sourced by the scripts: sets MPCNET_PYTHON to a Python that imports mpyc, making the
# project's venv (.venv, from python/requirements.txt) when MPCNET_PYTHON is not set already.
if [ -z "${MPCNET_PYTHON:-}" ]; then
    if ! .venv/bin/python -c "import mpyc" 2>/dev/null; then
        echo "== making .venv: pip install -r python/requirements.txt" >&2
        python3 -m venv .venv
        .venv/bin/pip install --quiet --disable-pip-version-check -r python/requirements.txt
    fi
    export MPCNET_PYTHON="$PWD/.venv/bin/python"
fi
