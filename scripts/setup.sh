#!/usr/bin/env bash
# Set-up shared by the README's two commands: the virtual environment in .venv, the package, and Fashion-MNIST.
# Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv with $($python --version)"
    "$python" -m venv .venv
fi
pip=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)

# torch and torchvision first, pinned to the builds this kind of machine keeps on local disk (x86_64: 2.14.1/0.29.1;
# aarch64: the CPU build 2.9.1/0.24.1), so pip does not fetch gigabytes of another release.
if ! .venv/bin/python -c "import torch, torchvision" 2>/dev/null; then
    echo "setup: installing torch and torchvision (a few minutes the first time)"
    if [ "$(uname -m)" = "aarch64" ]; then
        "${pip[@]}" torch==2.9.1 torchvision==0.24.1
    else
        "${pip[@]}" torch==2.14.1 torchvision==0.29.1
    fi
fi
echo "setup: installing tsla and its test dependencies (with the adapters' Lightning, transformers and timm)"
torch_before=$(.venv/bin/python -c "import torch; print(torch.__version__)")
"${pip[@]}" -e ".[test]"
torch_after=$(.venv/bin/python -c "import torch; print(torch.__version__)")
if [ "$torch_before" != "$torch_after" ]; then  # the extras must never replace the pinned build
    echo "setup: error: installing tsla's extras replaced torch $torch_before by $torch_after" >&2
    exit 1
fi

# Fashion-MNIST, the embedded default: Debian's dataset-fashion-mnist package, where apt is available.
fmnist=/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
if [ ! -f "$fmnist" ] && [ -z "${TSLA_DATA:-}" ]; then
    if command -v apt-get >/dev/null 2>&1; then
        sudo=""
        [ "$(id -u)" -ne 0 ] && sudo="sudo"
        echo "setup: installing Debian's dataset-fashion-mnist"
        $sudo apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 ||
            { $sudo apt-get update -qq >/dev/null && $sudo apt-get install -y -qq dataset-fashion-mnist >/dev/null; }
    else
        echo "setup: no apt here: set TSLA_DATA to a folder with the Fashion-MNIST IDX files, or pass --download" >&2
    fi
fi
echo "setup: done"
