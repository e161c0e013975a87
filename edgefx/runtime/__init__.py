"""Runtime core: the backend seam (onnxruntime / OpenVINO), model manifest, settings, typed errors, image decoding."""
