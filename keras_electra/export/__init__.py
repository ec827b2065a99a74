"""Ship fine-tuned models: SavedModel (TF Serving), TFLite (float / quantised), ONNX, and one
predictor for all of them. Names are imported lazily (the converters are heavy).

    from keras_electra.export import export_saved_model, export_tflite, export_onnx, Predictor
    export_saved_model("runs/sst2", "exports/sst2")            # exports/sst2/1/
    export_tflite("runs/sst2", "sst2-int8.tflite", quantize="int8", calibration_texts=texts)
    export_onnx("runs/sst2", "sst2.onnx")
    Predictor.load("sst2-int8.tflite").predict(["a gorgeous, witty movie"])
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "ExportError": "keras_electra.export.common",
    "ExportInfo": "keras_electra.export.common",
    "load_for_export": "keras_electra.export.common",
    "slim_model": "keras_electra.export.common",
    "export_saved_model": "keras_electra.export.saved_model",
    "ElectraServingModule": "keras_electra.export.saved_model",
    "export_tflite": "keras_electra.export.tflite",
    "export_tflite_text": "keras_electra.export.tflite",
    "load_interpreter": "keras_electra.export.tflite",
    "export_onnx": "keras_electra.export.onnx",
    "Predictor": "keras_electra.export.predictor",
    "predict_any": "keras_electra.export.predictor",
    "predict_request": "keras_electra.export.serving",
    "grpc_predict": "keras_electra.export.serving",
    "rest_body": "keras_electra.export.serving",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'keras_electra.export' has no attribute {name!r}")
