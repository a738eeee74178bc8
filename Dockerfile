# Inference image for the "Segment Anything in Medical Images on Laptop" challenge.
#
# Build with docker/build_image.sh (it checks the prerequisites and passes the pip
# index settings), or by hand:
#   bash scripts/setup.sh                            # writes checkpoints/exported/*.onnx and their records
#   docker build --network host -t medsam-laptop:latest .
# Run (as the organizers do, or hardened; see README.md, "Docker image"):
#   docker run --rm --cpus=1 --network none -m 8G \
#     -v "$PWD/inputs:/workspace/inputs" -v "$PWD/outputs:/workspace/outputs" medsam-laptop:latest
#   docker run --rm --read-only --tmpfs /tmp --network none --cpus=1 -m 8G --cap-drop ALL \
#     --security-opt no-new-privileges --user "$(id -u):$(id -g)" -v ... medsam-laptop:latest
#
# Three stages: `builder` installs the runtime dependencies into a venv with pip, `system`
# is the base image without pip and set-user-ID programs, and the image itself is `system`
# copied into one layer, plus the venv, the models and our code. Nothing else of `builder`
# reaches the image: neither pip nor the index settings are in it or in its history.
#
# The base is pinned by tag; where Docker Hub is unreachable, docker/build_base_image.sh
# builds an equivalent python:3.11-slim from Debian packages.
FROM python:3.11-slim AS builder

# pip reads these from the environment when they are passed as build arguments; left
# unset they fall back to pip's defaults. Only this stage declares them.
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_TRUSTED_HOST

# Runtime dependencies only (no torch, no onnx), then everything the runtime does not use:
# pip and setuptools, console scripts, C headers, numpy's Fortran/distutils build helpers,
# test suites, the model conversion tools of OpenVINO (whose import also starts telemetry
# that writes to $HOME) and of ONNX Runtime, and OpenVINO's GPU and NPU plugins with the
# GPU's tuning cache (the models run on the CPU plugin).
COPY requirements.txt /tmp/requirements.txt
RUN python3 -m venv /opt/venv \
    && PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 /opt/venv/bin/pip install -r /tmp/requirements.txt \
    && /opt/venv/bin/pip uninstall -y -q pip setuptools \
    && cd /opt/venv/lib/python3*/site-packages \
    && find /opt/venv/bin -mindepth 1 ! -name 'python*' -delete \
    && find . -depth -type d -name tests -exec rm -rf {} + \
    && rm -rf /opt/venv/include openvino/include numpy/_core/include numpy/f2py numpy/distutils \
        openvino/tools onnxruntime/tools onnxruntime/transformers onnxruntime/quantization \
        openvino/libs/libopenvino_intel_gpu_plugin.so openvino/libs/libopenvino_intel_npu_plugin.so \
        openvino/libs/cache.json \
    && /opt/venv/bin/python -c "import numpy, onnxruntime, openvino, cv2, tqdm; print('openvino', openvino.__version__)"

FROM python:3.11-slim AS system

# No package installer (pip, setuptools, wheel, ensurepip and the wheels it installs, in
# Debian's layout or python.org's under /usr/local) and no set-user-ID/group programs.
RUN dpkg --purge python3-pip python3-setuptools python3-wheel python3-pkg-resources \
        python3-venv python3.11-venv python3-pip-whl python3-setuptools-whl \
    && for site in /usr/local/lib/python3*/site-packages /usr/lib/python3/dist-packages; do \
        rm -rf "$site"/pip "$site"/pip-* "$site"/setuptools* "$site"/wheel "$site"/wheel-* \
            "$site"/pkg_resources "$site"/_distutils_hack "$site"/distutils-precedence.pth; \
    done \
    && rm -rf /usr/local/bin/pip* /usr/local/bin/wheel /usr/bin/pip* \
        /usr/local/lib/python3*/ensurepip /usr/lib/python3*/ensurepip /usr/share/python-wheels \
    && find / -xdev -type f -perm /6000 -exec chmod a-s {} + \
    && ! python3 -c "import pip" 2>/dev/null \
    && for tool in pip pip3 gcc cc make; do ! command -v "$tool" || exit 1; done

FROM scratch

COPY --from=system / /
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 \
    VIRTUAL_ENV=/opt/venv \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY --from=builder /opt/venv /opt/venv

WORKDIR /workspace

# .dockerignore lets through only the common, casefiles, inference and checkpoints packages,
# the manifest, the exported ONNX models with this machine's export records, and predict.sh.
# The exported files are checked against the records that their export wrote.
COPY common/ common/
COPY checkpoints/ checkpoints/
RUN if ! ls checkpoints/exported/*.json >/dev/null 2>&1; then \
        echo "ERROR: no export records in checkpoints/exported/." >&2; \
        echo "Run 'bash scripts/setup.sh' (it exports the models) before building the image." >&2; \
        exit 1; \
    fi \
    && python -m checkpoints verify --exported

COPY casefiles/ casefiles/
COPY inference/ inference/
COPY predict.sh ./
# Byte-compile our code once here: every case starts a fresh container, and
# PYTHONDONTWRITEBYTECODE keeps it from caching .pyc files at run time.
RUN python -m compileall -q common casefiles inference checkpoints
# Compile the OpenVINO models once here, into checkpoints/exported/openvino-cache: a fresh
# container imports them instead of compiling. The cache is readable by any --user and
# writable by root only. Where it does not fit the CPU, a root container rewrites it in
# its own layer; a read-only or --user container compiles without it and writes nothing
# (inference/backends.py).
RUN python -m inference.warmup && chmod -R a+rX,go-w checkpoints/exported/openvino-cache

CMD ["sh", "predict.sh"]
