"""Export a model for the CPU runtimes: tracing wrappers, ONNX files, parity against torch, the CLI."""
