# Inference image for the "Segment Anything in Medical Images on Laptop" challenge.
#
# Build with docker/build_image.sh (it checks the prerequisites and passes the pip
# index settings), or by hand:
#   bash scripts/setup.sh                            # writes checkpoints/exported/*.onnx and their records
#   docker build --network host -t medsam-laptop:latest .
# Run:
#   docker run --rm --cpus=1 --network none -m 8G \
#     -v "$PWD/inputs:/workspace/inputs" -v "$PWD/outputs:/workspace/outputs" medsam-laptop:latest
#
# The base is pinned by tag; where Docker Hub is unreachable, docker/build_base_image.sh
# builds an equivalent python:3.11-slim from Debian packages.
FROM python:3.11-slim

# pip reads these from the environment when they are passed as build arguments; left
# unset they fall back to pip's defaults. They exist only while the image is built.
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_TRUSTED_HOST

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# Runtime dependencies only (no torch, no onnx). pip and setuptools leave the venv afterwards:
# nothing installs packages at run time.
COPY requirements.txt /tmp/requirements.txt
RUN python3 -m venv "$VIRTUAL_ENV" \
    && pip install --no-cache-dir -r /tmp/requirements.txt \
    && pip uninstall -y -q pip setuptools \
    && rm -f /tmp/requirements.txt \
    && python -c "import numpy, onnxruntime, openvino, cv2, tqdm; print('openvino', openvino.__version__)"

WORKDIR /workspace

# .dockerignore lets through only the casefiles, inference and checkpoints packages, the
# manifest, the exported ONNX models with this machine's export records, and predict.sh.
# The exported files are checked against the records that their export wrote.
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
RUN python -m compileall -q casefiles inference checkpoints
# Compile the OpenVINO models once here, into checkpoints/exported/openvino-cache: a fresh
# container imports them instead of compiling. On a CPU the cache does not fit, OpenVINO
# compiles again and writes its entry there (never into the outputs folder); the folder is
# writable for a container run with --user.
RUN python -m inference.warmup && chmod -R a+rwX checkpoints/exported/openvino-cache

CMD ["sh", "predict.sh"]
