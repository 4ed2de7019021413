#!/usr/bin/env bash
# structrom set-up and entry points on Debian 12 (bookworm).
#   bash run.sh demo   install what is missing, then run the end-to-end demo
#   bash run.sh test   install what is missing, then run the test suite
#   bash run.sh test-blas  the numerics-sensitive tests on several OpenBLAS kernels and Debian's reference BLAS
#   bash run.sh setup  only install what is missing
# Idempotent: a second run skips what is already there.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

DEB_PACKAGES=(python3-venv python3-dev python3-petsc4py python3-mpi4py python3-numpy python3-scipy
              python3-h5py openmpi-bin calculix-ccx gmsh python3-gmsh)
# Test tools, installed with them (not needed by the product images of deploy/): chromium, the headless
# browser of tests/test_model_page.py; libblas3 liblapack3, the reference BLAS of `run.sh test-blas`.
CHECK_PACKAGES=(chromium libblas3 liblapack3)
VENV="$here/.venv"
export PETSC_DIR="${PETSC_DIR:-/usr/lib/petscdir/petsc3.18/x86_64-linux-gnu-real}"
# Open MPI refuses root and more ranks than cores unless told; CI runs as root on 2 cores.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none
# Ranks yield their core while waiting in collectives: busy polling on a shared 2-core machine made the
# demo's ECM 4 x slower (46.7 s against 11.9 s at load average 14).
export OMPI_MCA_mpi_yield_when_idle="${OMPI_MCA_mpi_yield_when_idle:-1}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"

log() { printf '[run.sh] %s\n' "$*"; }

install_debian_packages() {
    local missing=()
    for p in "${DEB_PACKAGES[@]}" "${CHECK_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -eq 0 ]; then log "Debian packages present"; return; fi
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    log "installing Debian packages: ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

link_petsc() {
    # Debian's petsc4py is found through /usr/lib/petsc (or PETSC_DIR): register the alternative once.
    [ -e /usr/lib/petsc ] && return
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    log "registering /usr/lib/petsc -> $PETSC_DIR"
    $sudo update-alternatives --quiet --install /usr/lib/petsc petsc "$PETSC_DIR" 100
}

install_venv() {
    if [ ! -x "$VENV/bin/python" ]; then
        log "creating virtual environment $VENV (with Debian's site packages)"
        /usr/bin/python3 -m venv --system-site-packages "$VENV"
    fi
    local stamp="$VENV/.structrom-installed"
    local want
    want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then log "Python packages present"; return; fi
    # Pin Debian's numpy: petsc4py, h5py and scipy from Debian are built against it.
    local constraints="$VENV/constraints.txt"
    "$VENV/bin/python" - >"$constraints" <<'PY'
import numpy, scipy, mpi4py
print(f"numpy=={numpy.__version__}\nscipy=={scipy.__version__}\nmpi4py=={mpi4py.__version__}")
PY
    log "installing structrom and its Python dependencies (numpy pinned to Debian's)"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -c "$constraints" -e ".[dev]"
    echo "$want" >"$stamp"
}

setup() {
    install_debian_packages
    link_petsc
    install_venv
    "$VENV/bin/python" -c "from petsc4py import PETSc; import mpi4py, numpy; assert numpy.__version__.startswith('1.'), numpy.__version__"
}

case "${1:-}" in
    setup) setup ;;
    demo)
        setup
        shift
        exec "$VENV/bin/python" examples/demo.py "$@" ;;
    test)
        setup
        shift
        exec "$VENV/bin/python" -m pytest -q -p no:cacheprovider "$@" ;;
    test-blas)
        # Tolerances must hold on any BLAS: force other OpenBLAS kernels (OPENBLAS_CORETYPE; Debian's
        # OpenBLAS is built with every x86-64 kernel) and Debian's reference BLAS + LAPACK (through
        # LD_LIBRARY_PATH, for these processes only: the system's alternatives are left alone).
        setup
        shift
        tests=(tests/test_reduced_quadrature.py tests/test_pod.py tests/test_eim_*.py tests/test_online*.py)
        [ $# -gt 0 ] && tests=("$@")
        failed=()
        for kernel in ${BLAS_KERNELS:-Haswell Sandybridge Prescott reference}; do
            if [ "$kernel" = reference ]; then
                ref="/usr/lib/x86_64-linux-gnu/blas:/usr/lib/x86_64-linux-gnu/lapack"
                [ -e /usr/lib/x86_64-linux-gnu/lapack/liblapack.so.3 ] || { log "reference LAPACK missing: apt-get install liblapack3"; failed+=(reference); continue; }
                log "reference BLAS/LAPACK: LD_LIBRARY_PATH=$ref"
                LD_LIBRARY_PATH="$ref${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$VENV/bin/python" -m pytest -q -p no:cacheprovider "${tests[@]}" || failed+=("$kernel")
            else
                log "OpenBLAS kernel: OPENBLAS_CORETYPE=$kernel ($(OPENBLAS_VERBOSE=2 OPENBLAS_CORETYPE=$kernel "$VENV/bin/python" -c 'import numpy as n; n.ones((9, 9)) @ n.ones((9, 9))' 2>&1 | head -1))"
                OPENBLAS_CORETYPE="$kernel" "$VENV/bin/python" -m pytest -q -p no:cacheprovider "${tests[@]}" || failed+=("$kernel")
            fi
        done
        [ ${#failed[@]} -eq 0 ] || { log "failed with: ${failed[*]}"; exit 1; }
        log "passed with every kernel" ;;
    *)
        echo "usage: bash run.sh {demo|test|test-blas|setup}" >&2
        exit 2 ;;
esac
