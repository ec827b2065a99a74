"""ONNX export: tf2onnx converts the `token_ids` signature of a SavedModel; onnxruntime runs it.

`tf2onnx.convert.from_keras` does not work with Keras 3, so the model goes through a
SavedModel, as `python -m tf2onnx.convert --saved-model DIR --signature_def token_ids` does.
Two things are added to that command:

- an `Erfc` handler: TensorFlow 2.21 writes the exact GELU as 0.5·x·erfc(-x/√2) and
  tf2onnx 1.17 has no `Erfc` (ONNX has `Erf`), so it becomes 1 - Erf(x);
- metadata: the `ExportInfo`, labels and vocabulary go into the model's `metadata_props`;
- `onnx_fusion.optimize`: LayerNorm as one `LayerNormalization` node and GELU in the form
  onnxruntime fuses (still standard opset-17 ONNX), ~20% faster at batch 32 (benchmarks/README.md).

The batch axis is dynamic (named "batch"); the sequence axis is fixed at the export length.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from keras_electra.export.common import (
    IDS_SIGNATURE,
    LABELS_METADATA,
    METADATA_NAME,
    MODEL_KEYS,
    VOCAB_METADATA,
    ExportError,
    ExportInfo,
)
from keras_electra.export.saved_model import (
    export_token_ids_saved_model,
    prepare_model,
    read_saved_model_info,
    resolve_saved_model_dir,
)
from keras_electra.utils.io import atomic_file

DEFAULT_OPSET = 17


def _erfc_handler(ctx, node, name, args):
    """tf2onnx handler: erfc(x) = 1 - erf(x)."""
    from tf2onnx import utils

    node.type = "Erf"
    output = node.output[0]
    dtype = utils.map_onnx_to_numpy_type(ctx.get_dtype(output))
    one = ctx.make_const(utils.make_name(f"{name}_one"), np.array(1, dtype=dtype))
    ctx.insert_new_node_on_output("Sub", output, name=utils.make_name(f"{name}_erfc"),
                                  inputs=[one.output[0], output])


def convert_saved_model(saved_model_dir: str | Path, output: str | Path, signature: str = IDS_SIGNATURE,
                        opset: int = DEFAULT_OPSET, metadata: dict[str, str] | None = None,
                        fuse: bool = True) -> Path:
    """tf2onnx on one signature of a SavedModel; writes `output` atomically.

    `fuse=False` keeps tf2onnx's graph as it is (no LayerNorm/GELU rewrites)."""
    import onnx
    from tf2onnx import convert, tf_loader

    saved_model_dir = resolve_saved_model_dir(saved_model_dir)
    graph_def, inputs, outputs, renames = tf_loader.from_saved_model(
        str(saved_model_dir), None, None, tag="serve", signatures=[signature], return_tensors_to_rename=True)
    model_proto, _ = convert.from_graph_def(
        graph_def, name=signature, input_names=inputs, output_names=outputs, opset=opset,
        custom_op_handlers={"Erfc": (_erfc_handler, [])}, tensors_to_rename=renames,
    )
    unsupported = sorted({n.op_type for n in model_proto.graph.node if n.domain not in ("", "ai.onnx")})
    if unsupported:
        raise ExportError(f"tf2onnx left ops without an ONNX equivalent: {unsupported}")
    if fuse:
        from keras_electra.export.onnx_fusion import optimize

        optimize(model_proto)
    for value in list(model_proto.graph.input) + list(model_proto.graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_param = "batch"
    for key, value in (metadata or {}).items():
        entry = model_proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model_proto)
    output = Path(output)
    with atomic_file(output) as tmp:
        onnx.save(model_proto, str(tmp))
    return output


def _metadata(info: ExportInfo, vocabulary) -> dict[str, str]:
    return {
        METADATA_NAME: info.to_json(),
        VOCAB_METADATA: "\n".join(vocabulary) + "\n",
        LABELS_METADATA: "".join(f"{label}\n" for label in info.labels or ()),
    }


def export_onnx(
    model_or_path,
    output: str | Path,
    max_seq_len: int | None = None,
    keep_layers: int | None = None,
    pair: bool | None = None,
    opset: int = DEFAULT_OPSET,
) -> Path:
    """Write `output` (.onnx) from a fine-tuned model directory, a task model, or a SavedModel
    written by `export_saved_model` (then `max_seq_len`/`keep_layers` must be None)."""
    source = Path(model_or_path) if isinstance(model_or_path, str | Path) else None
    if source is not None and is_saved_model(source):
        if max_seq_len is not None or keep_layers is not None:
            raise ExportError("--max-seq-len and --keep-layers apply to a Keras model directory, not a SavedModel")
        info, vocabulary = read_saved_model_info(source)
        return convert_saved_model(source, output, opset=opset, metadata=_metadata(info, vocabulary))
    model, preprocessor, info = prepare_model(model_or_path, pair, max_seq_len, keep_layers)
    with tempfile.TemporaryDirectory(prefix="electra-onnx-") as tmp:
        saved = export_token_ids_saved_model(model, info, Path(tmp) / "saved")
        return convert_saved_model(saved, output, opset=opset,
                                   metadata=_metadata(info, preprocessor.tokenizer.vocabulary))


def is_saved_model(path: Path) -> bool:
    """A SavedModel directory, or a TF Serving model directory with numeric versions."""
    try:
        resolve_saved_model_dir(path)
    except (ExportError, OSError):
        return False
    return True


def read_onnx_info(path: str | Path) -> tuple[ExportInfo, list[str]]:
    """(ExportInfo, vocabulary) stored in an `.onnx` file written by `export_onnx`."""
    import onnx

    path = Path(path)
    model = onnx.load(str(path), load_external_data=False)
    props = {p.key: p.value for p in model.metadata_props}
    if METADATA_NAME not in props or VOCAB_METADATA not in props:
        raise ExportError(f"{path}: no keras_electra metadata (not written by `keras-electra export`)")
    vocabulary = props[VOCAB_METADATA].split("\n")
    if vocabulary and vocabulary[-1] == "":
        vocabulary.pop()
    return ExportInfo.from_json(props[METADATA_NAME], str(path)), vocabulary


def onnx_session(path: str | Path, num_threads: int | None = None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    if num_threads:
        options.intra_op_num_threads = int(num_threads)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_onnx(session, inputs: dict[str, np.ndarray]) -> np.ndarray:
    names = [i.name for i in session.get_inputs()]
    missing = [n for n in names if n not in MODEL_KEYS]
    if missing:
        raise ExportError(f"unexpected ONNX inputs {missing}; expected {', '.join(MODEL_KEYS)}")
    return session.run(["logits"], {n: np.asarray(inputs[n], np.int32) for n in names})[0]
