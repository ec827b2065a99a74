"""Requests to a TF Serving model server hosting an `export_saved_model` directory.

Start the server (the `NAME/1/` layout: mount the directory that holds `1/`):

    docker run --rm -p 8500:8500 -p 8501:8501 \\
        -v "$PWD/exports/sst2:/models/sst2" -e MODEL_NAME=sst2 tensorflow/serving

REST (`rest_body` builds the JSON):

    curl -s -X POST http://localhost:8501/v1/models/sst2:predict \\
        -d '{"signature_name": "serving_default", "instances": [{"text": "a gorgeous, witty movie"}]}'

gRPC (`predict_request` builds the `PredictRequest`, `grpc_predict` sends it):

    from keras_electra.export.serving import grpc_predict
    grpc_predict("localhost:8500", "sst2", {"text": ["a gorgeous, witty movie"]})

The model server must have the tensorflow-text ops (FastBertNormalize, FastWordpieceTokenize):
the stock `tensorflow/serving` images link the TF Text ops in, the FastBert ones since 2.12
(tensorflow/serving#2064). Use an image at least as new as the TensorFlow that exported the model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from keras_electra.export.common import SERVING_SIGNATURE


def _array(values: Any) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype.kind in ("U", "S", "O"):
        return np.asarray([[str(v).encode("utf-8") for v in row] for row in array], dtype=object) \
            if array.ndim == 2 else np.asarray([str(v).encode("utf-8") for v in array.reshape(-1)], dtype=object)
    return array


def predict_request(model_name: str, inputs: Mapping[str, Sequence], signature_name: str = SERVING_SIGNATURE,
                    version: int | None = None):
    """A `tensorflow_serving.apis.predict_pb2.PredictRequest` for the named signature.

    inputs: input name → a batch of values, e.g. {"text": ["good", "bad"]} for
    `serving_default`, or {"token_ids": ids, "segment_ids": ..., "padding_mask": ...}
    (int32 [batch, L]) for the `token_ids` signature.
    """
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    if version is not None:
        request.model_spec.version.value = int(version)
    for name, values in inputs.items():
        array = _array(values)
        dtype = tf.string if array.dtype == object else (tf.int32 if array.dtype.kind in "iu" else None)
        request.inputs[name].CopyFrom(tf.make_tensor_proto(array, dtype=dtype))
    return request


def decode_response(response) -> dict[str, np.ndarray]:
    """The outputs of a `PredictResponse` as numpy arrays (strings as bytes)."""
    import tensorflow as tf

    return {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}


def grpc_predict(address: str, model_name: str, inputs: Mapping[str, Sequence],
                 signature_name: str = SERVING_SIGNATURE, timeout: float = 10.0) -> dict[str, np.ndarray]:
    """Send `predict_request(...)` to a model server at `address` ("host:8500") over gRPC."""
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    with grpc.insecure_channel(address) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.Predict(predict_request(model_name, inputs, signature_name), timeout)
    return decode_response(response)


def rest_body(inputs: Mapping[str, Sequence], signature_name: str = SERVING_SIGNATURE) -> dict[str, Any]:
    """The JSON body of a REST `:predict` call, in the row ("instances") format."""
    columns = {k: list(np.asarray(v, dtype=object).tolist()) for k, v in inputs.items()}
    sizes = {len(v) for v in columns.values()}
    if len(sizes) != 1:
        raise ValueError(f"every input needs the same batch size, got {sorted(sizes)}")
    n = sizes.pop()
    return {"signature_name": signature_name,
            "instances": [{k: v[i] for k, v in columns.items()} for i in range(n)]}

