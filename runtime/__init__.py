"""The local runtime: an embedded, SageMaker-compatible inference host on this machine."""
