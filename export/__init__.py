"""Model build pipeline: pinned registry sources -> ONNX fp32/int8 and OpenVINO IR, recorded in models/manifest.json."""
