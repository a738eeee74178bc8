"""Export a model for the CPU backends: tracing wrappers, ONNX files, parity against torch, the CLI."""
