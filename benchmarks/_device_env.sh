# Sourced by the scripts for a lent device machine (gpu.sh, gpu_train.sh) after they set OUT:
# $OUT made, $PY, $DEVICE, unbuffered output, and the wheels carried under .whl/ (gpu.sh's header)
# installed ahead of the image's own packages, the repository on PYTHONPATH. Leaves cwd alone.
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if ls "$_root"/.whl/*.whl >/dev/null 2>&1; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$_root"/.whl/*.whl \
        && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$_root"
