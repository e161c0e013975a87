"""Faces: detectors (MTCNN, YuNet), alignment, recognizers, the calibrated decision, and the verification result."""
