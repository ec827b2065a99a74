"""TFLite export for devices: fixed sequence length, float or quantised, run with LiteRT.

Two kinds of model:

- **token ids** (`export_tflite`): inputs `token_ids`, `segment_ids`, `padding_mask` int32
  [batch, L] → `logits`; builtin ops only (checked after conversion). Quantisation:
  - `none`: float32;
  - `float16`: float16 weights, float32 compute;
  - `dynamic`: int8 weights, activations quantised on the fly (dynamic range);
  - `int8`: int8 weights and activations calibrated on a representative dataset drawn from
    the training data. Four spots stay float32 because int8 breaks them (measured on
    fine-tuned SST-2 models, see `INT8_FLOAT_OPS`): the token-type `ONE_HOT` and its matmul
    (the int8 ONE_HOT kernel returns wrong values); each attention's scale → mask-bias add →
    softmax chain (the -10000 padding bias stretches the int8 range of the scores so far that
    the attention turns uniform); each LayerNorm's statistics (mean, squared difference,
    variance, + epsilon, rsqrt: an int8 variance is off by up to 780 quantisation steps on
    MiniLM); and the attention matmuls (q·k and probabilities·v). The last two took MiniLM's
    CoNLL-2003 tagger from −11.9 to −5.4 entity F1 against float (an SST-2 classifier from 92.0%
    to 94.5% label agreement), and made the model faster.
- **string in** (`export_tflite_text`): input `text` [batch] (or `text_a`, `text_b`) →
  `logits`, `probabilities`; tokenises on the device with tensorflow-text's
  `FastBertNormalize` and `FastWordpieceTokenize` custom ops, packed with builtin ops. Run it
  with `InterpreterWithCustomOps(custom_op_registerers=tensorflow_text.tflite_registrar.
  SELECT_TFTEXT_OPS)` (`load_interpreter` does). Classification and regression only.

Labels, vocabulary and the `ExportInfo` are stored in the flatbuffer's `metadata` table
(entries `keras_electra`, `vocab.txt`, `labels.txt`); `read_metadata` reads them back.
(`tflite-support`'s metadata writer, the usual tool, is not installable here: it is neither in
the environment nor in the package index this project can reach. The `metadata` table is the
flatbuffer field that it fills too, written here with LiteRT's own schema bindings.)
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from keras_electra.export.common import (
    IDS_SIGNATURE,
    LABELS_METADATA,
    METADATA_NAME,
    MODEL_KEYS,
    QUANTIZATIONS,
    SERVING_SIGNATURE,
    VOCAB_METADATA,
    ExportError,
    ExportInfo,
    tracked_variables,
)
from keras_electra.export.saved_model import (
    export_token_ids_saved_model,
    prepare_model,
    read_saved_model_info,
    resolve_saved_model_dir,
)
from keras_electra.utils.io import atomic_file

CUSTOM = "CUSTOM"
# Op types walked back from each SOFTMAX to keep the attention-score chain in float32.
_SCORE_CHAIN_OPS = {"ADD", "MUL", "SUB", "EXPAND_DIMS", "RESHAPE", "CAST", "BROADCAST_TO"}
# A LayerNorm's statistics, walked back from its RSQRT: op type → the producer type that is
# part of the statistics (rsqrt ← + epsilon ← variance mean ← squared difference ← mean).
_NORM_STATISTICS = {"RSQRT": "ADD", "ADD": "MEAN", "MEAN": "SQUARED_DIFFERENCE", "SQUARED_DIFFERENCE": "MEAN"}
INT8_FLOAT_OPS = ("ONE_HOT (+ its matmul)", "attention scale/mask add/SOFTMAX", "LayerNorm statistics",
                  "attention BATCH_MATMUL")


# --------------------------------------------------------------------- flatbuffer
def _schema():
    from ai_edge_litert import schema_py_generated as schema

    return schema


def _opcode_names() -> dict[int, str]:
    schema = _schema()
    return {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}


def op_types(model: bytes) -> list[str]:
    """The operator codes a TFLite model uses: builtin names, custom ops as "CUSTOM:<name>"."""
    schema = _schema()
    names = _opcode_names()
    m = schema.Model.GetRootAsModel(model, 0)
    out = []
    for i in range(m.OperatorCodesLength()):
        code = m.OperatorCodes(i)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin == schema.BuiltinOperator.CUSTOM:
            out.append(f"{CUSTOM}:{code.CustomCode().decode()}")
        else:
            out.append(names.get(builtin, str(builtin)))
    return out


def custom_ops(model: bytes) -> list[str]:
    return [op.split(":", 1)[1] for op in op_types(model) if op.startswith(CUSTOM + ":")]


def _graph(model: bytes, subgraph: int = 0):
    """(ops, tensor names) of one subgraph: ops as (type, input ids, output ids)."""
    schema = _schema()
    names = _opcode_names()
    m = schema.Model.GetRootAsModel(model, 0)
    codes = []
    for i in range(m.OperatorCodesLength()):
        code = m.OperatorCodes(i)
        codes.append(names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "?"))
    g = m.Subgraphs(subgraph)
    tensors = [g.Tensors(i).Name().decode() for i in range(g.TensorsLength())]
    ops = []
    for i in range(g.OperatorsLength()):
        op = g.Operators(i)
        ops.append((codes[op.OpcodeIndex()], list(op.InputsAsNumpy()), list(op.OutputsAsNumpy())))
    return ops, tensors


def int8_float_nodes(model: bytes) -> list[str]:
    """Output tensor names to keep in float32 in the full-integer model (see the module doc)."""
    ops, tensors = _graph(model)
    producer = {out: i for i, (_, _, outs) in enumerate(ops) for out in outs}
    consumers: dict[int, list[int]] = {}
    for i, (_, ins, _) in enumerate(ops):
        for t in ins:
            consumers.setdefault(int(t), []).append(i)
    keep: set[int] = set()

    def walk_back(inputs, consumer: str, follows) -> None:
        """Keep each input whose producer `follows(consumer type, producer type)`, recursively."""
        stack = [(int(t), consumer) for t in inputs]
        while stack:
            t, consumer = stack.pop()
            p = producer.get(t)
            if p is None or t in keep or not follows(consumer, ops[p][0]):
                continue
            keep.add(t)
            stack.extend((int(x), ops[p][0]) for x in ops[p][1])

    for kind, ins, outs in ops:
        if kind == "ONE_HOT":
            # The one-hot and everything up to (and including) the matmul that consumes it.
            frontier = list(outs)
            while frontier:
                t = frontier.pop()
                keep.add(int(t))
                for c in consumers.get(int(t), ()):
                    kind_c, _, outs_c = ops[c]
                    if kind_c in ("RESHAPE", "FULLY_CONNECTED", "BATCH_MATMUL", "CAST"):
                        keep.update(int(o) for o in outs_c)
                        if kind_c == "RESHAPE":
                            frontier.extend(outs_c)
        elif kind == "SOFTMAX":  # the op and the score chain that feeds it
            keep.update(int(o) for o in outs)
            walk_back(ins, kind, lambda _, producer_kind: producer_kind in _SCORE_CHAIN_OPS)
        elif kind == "RSQRT":  # the op and the LayerNorm statistics that feed it
            keep.update(int(o) for o in outs)
            walk_back(ins, kind, lambda consumer, producer_kind: _NORM_STATISTICS.get(consumer) == producer_kind)
        elif kind == "BATCH_MATMUL":
            keep.update(int(o) for o in outs)
    return sorted(tensors[t] for t in keep if t >= 0)


def add_metadata(model: bytes, entries: dict[str, bytes]) -> bytes:
    """The model with `entries` added to its flatbuffer `metadata` table (name → buffer)."""
    import flatbuffers

    schema = _schema()
    m = schema.ModelT.InitFromPackedBuf(bytearray(model), 0)
    for md in m.metadata or []:  # a replaced entry's old bytes go too: no stale copy stays in the file
        if md.name is not None and md.name.decode() in entries:
            m.buffers[md.buffer].data = None
    m.metadata = [md for md in (m.metadata or []) if md.name is None or md.name.decode() not in entries] \
        if m.metadata else []
    m.buffers = m.buffers or []
    for name, payload in entries.items():
        buffer = schema.BufferT()
        buffer.data = np.frombuffer(payload, dtype=np.uint8)
        m.buffers.append(buffer)
        md = schema.MetadataT()
        md.name = name
        md.buffer = len(m.buffers) - 1
        m.metadata.append(md)
    builder = flatbuffers.Builder(len(model) + sum(len(p) for p in entries.values()) + 4096)
    builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def read_metadata(model: bytes) -> dict[str, bytes]:
    """Every entry of a TFLite model's `metadata` table, name → bytes."""
    schema = _schema()
    m = schema.Model.GetRootAsModel(model, 0)
    out = {}
    for i in range(m.MetadataLength()):
        md = m.Metadata(i)
        data = m.Buffers(md.Buffer()).DataAsNumpy()
        out[md.Name().decode()] = bytes(data) if isinstance(data, np.ndarray) else b""
    return out


def read_tflite_info(path: str | Path) -> tuple[ExportInfo, list[str]]:
    """(ExportInfo, vocabulary) stored in a `.tflite` written by this module."""
    path = Path(path)
    try:
        metadata = read_metadata(path.read_bytes())
    except Exception as err:  # a truncated or foreign file fails anywhere inside the flatbuffer reader
        raise ExportError(f"{path}: not a readable TFLite model ({type(err).__name__})") from None
    if METADATA_NAME not in metadata or VOCAB_METADATA not in metadata:
        raise ExportError(f"{path}: no keras_electra metadata (not written by `keras-electra export`)")
    info = ExportInfo.from_json(metadata[METADATA_NAME], str(path))
    vocabulary = metadata[VOCAB_METADATA].decode("utf-8").split("\n")
    if vocabulary and vocabulary[-1] == "":
        vocabulary.pop()
    return info, vocabulary


def _metadata_entries(info: ExportInfo, vocabulary: Sequence[str], extra: dict | None = None) -> dict[str, bytes]:
    values = {**info.to_dict(), **(extra or {})}
    return {
        METADATA_NAME: json.dumps(values, sort_keys=True).encode("utf-8"),
        VOCAB_METADATA: ("\n".join(vocabulary) + "\n").encode("utf-8"),
        LABELS_METADATA: "".join(f"{label}\n" for label in info.labels or ()).encode("utf-8"),
    }


# --------------------------------------------------------------------- running
def load_interpreter(model: str | Path | bytes, num_threads: int | None = None):
    """A LiteRT interpreter for `model`, with the tensorflow-text ops registered when it needs them."""
    from ai_edge_litert import interpreter as litert

    content = Path(model).read_bytes() if isinstance(model, str | Path) else bytes(model)
    if custom_ops(content):
        import tensorflow_text

        return litert.InterpreterWithCustomOps(
            custom_op_registerers=tensorflow_text.tflite_registrar.SELECT_TFTEXT_OPS,
            model_content=content, num_threads=num_threads,
        )
    return litert.Interpreter(model_content=content, num_threads=num_threads)


def run_signature(interpreter, inputs: dict[str, np.ndarray], signature: str = IDS_SIGNATURE,
                  batch_size: int | None = None) -> dict[str, np.ndarray]:
    """Run one signature on a batch, in chunks of `batch_size` rows (all at once when None)."""
    runner = interpreter.get_signature_runner(signature)
    first = next(iter(inputs.values()))
    n = len(first)
    step = batch_size or n
    parts: list[dict[str, np.ndarray]] = []
    for start in range(0, n, max(step, 1)):
        parts.append(runner(**{k: v[start:start + step] for k, v in inputs.items()}))
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else {}


# --------------------------------------------------------------------- convert
def _converter(saved_model_dir: Path, signature: str):
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir), signature_keys=[signature])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter


def _quantize(converter, quantize: str, representative: Callable[[], Iterable] | None) -> bytes:
    if quantize == "none":
        return converter.convert()
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
        return converter.convert()
    if quantize == "dynamic":
        return converter.convert()
    if representative is None:
        raise ExportError("full-integer int8 needs calibration data (texts from the training set)")
    converter.representative_dataset = representative
    options = tf.lite.experimental.QuantizationDebugOptions()
    debugger = tf.lite.experimental.QuantizationDebugger(converter=converter, debug_dataset=representative,
                                                         debug_options=options)
    # The debugger's options are read when the final model is built: keep the int8-hostile
    # nodes (found in the calibrated float graph) in float32.
    options.denylisted_nodes = int8_float_nodes(debugger.calibrated_model)
    return debugger.get_nondebug_quantized_model()


def _representative(calibration: dict[str, np.ndarray] | None, limit: int):
    if calibration is None:
        return None
    n = min(len(calibration["token_ids"]), limit)
    if n == 0:
        raise ExportError("the calibration data is empty")

    def samples():
        for i in range(n):
            yield {k: np.asarray(calibration[k][i:i + 1], np.int32) for k in MODEL_KEYS}

    return samples


def export_tflite(
    model_or_path,
    output: str | Path,
    quantize: str = "none",
    max_seq_len: int | None = None,
    keep_layers: int | None = None,
    pair: bool | None = None,
    calibration_texts: Sequence[str] | None = None,
    calibration_inputs: dict[str, np.ndarray] | None = None,
    num_calibration: int = 200,
) -> Path:
    """Write a token-ids `.tflite` (builtin ops only) atomically; returns its path.

    quantize: "none", "float16", "dynamic" or "int8" (full integer; calibrated on
        `calibration_inputs` — model input arrays — or on `calibration_texts`, raw inputs in
        the format of `predict` (a pair as "a<TAB>b"), at most `num_calibration` of them).
    """
    if quantize not in QUANTIZATIONS:
        raise ExportError(f"unknown quantisation {quantize!r}; choose from {', '.join(QUANTIZATIONS)}")
    from keras_electra.export.onnx import is_saved_model

    source = Path(model_or_path) if isinstance(model_or_path, str | Path) else None
    with tempfile.TemporaryDirectory(prefix="electra-tflite-") as tmp:
        if source is not None and is_saved_model(source):
            # Convert the `token_ids` signature of an existing export: the same graph as its SavedModel.
            if max_seq_len is not None or keep_layers is not None:
                raise ExportError("--max-seq-len and --keep-layers apply to a Keras model directory, not a SavedModel")
            saved = resolve_saved_model_dir(source)
            info, vocabulary = read_saved_model_info(saved)
            preprocessor = None
        else:
            model, preprocessor, info = prepare_model(model_or_path, pair, max_seq_len, keep_layers)
            vocabulary = preprocessor.tokenizer.vocabulary
            saved = export_token_ids_saved_model(model, info, Path(tmp) / "saved")
        if quantize == "int8" and info.decoding.get("head") == "electra":
            # Measured: int8 activations turn the beam's token indices into non-integers (wrong spans).
            raise ExportError("int8 quantisation breaks the ELECTRA QA head's beam (its token indices): use "
                              "--quantize none, float16 or dynamic")
        if quantize == "int8" and calibration_inputs is None and calibration_texts is not None:
            from keras_electra.export.common import rebuild_preprocessor
            from keras_electra.export.encoding import encode_texts

            preprocessor = preprocessor or rebuild_preprocessor(info, vocabulary)
            calibration_inputs = encode_texts(preprocessor, info, list(calibration_texts)[:num_calibration])
        converter = _converter(saved, IDS_SIGNATURE)
        content = _quantize(converter, quantize, _representative(calibration_inputs, num_calibration))
    custom = custom_ops(content)
    if custom:  # the token-ids model must run on a stock LiteRT runtime
        raise ExportError(f"the token-ids TFLite model needs custom ops {custom}; expected builtin ops only")
    extra = {"quantize": quantize, "input": "token_ids"}
    if quantize == "int8":
        extra["op_precision"] = int8_float_nodes_summary(content)
    content = add_metadata(content, _metadata_entries(info, vocabulary, extra))
    output = Path(output)
    with atomic_file(output) as tmp_file:
        tmp_file.write_bytes(content)
    return output


def int8_float_nodes_summary(model: bytes) -> dict[str, int]:
    """How many ops of each type stay float32 / run in int8 in a quantised model."""
    schema = _schema()
    ops, _ = _graph(model)
    m = schema.Model.GetRootAsModel(model, 0)
    g = m.Subgraphs(0)
    counts = {"int8": 0, "float32": 0}
    for kind, _, outs in ops:
        if kind in ("QUANTIZE", "DEQUANTIZE") or not outs:
            continue
        dtype = g.Tensors(int(outs[0])).Type()
        if dtype == schema.TensorType.INT8:
            counts["int8"] += 1
        elif dtype == schema.TensorType.FLOAT32:
            counts["float32"] += 1
    return counts


# --------------------------------------------------------------------- string in
class TextPacker:
    """`[CLS] A [SEP] (B [SEP])` packing of the tasks' classifier preprocessor, in dense ops.

    The tasks' preprocessor packs with ragged ops (RaggedRange, RaggedTensorToTensor) that
    TFLite does not have; this computes the same token ids (same longest-first truncation)
    with SCATTER_ND/GATHER/compare ops, on the values and row splits that the
    FastWordpieceTokenize custom op returns.
    """

    def __init__(self, vocabulary: Sequence[str], lower_case: bool, strip_accents: bool, seq_length: int,
                 cls_id: int, sep_id: int, pad_id: int) -> None:
        import tensorflow_text as tf_text

        if lower_case != strip_accents:
            raise ExportError(
                f"a string-in TFLite model needs lower_case == strip_accents (got {lower_case}, {strip_accents}): "
                "the separate NormalizeUTF8/CaseFoldUTF8/RegexReplace ops have no TFLite kernels"
            )
        self.tokenizer = tf_text.FastBertTokenizer(
            vocab=list(vocabulary), suffix_indicator="##", token_out_type=tf.int32, unknown_token="[UNK]",
            lower_case_nfd_strip_accents=lower_case,
        )
        self.seq_length = int(seq_length)
        self.cls_id, self.sep_id, self.pad_id = int(cls_id), int(sep_id), int(pad_id)

    def _pieces(self, texts):
        ragged = self.tokenizer.tokenize(texts)
        splits = tf.cast(ragged.row_splits, tf.int32)
        values = tf.cast(ragged.values, tf.int32)
        n = tf.shape(values)[0]
        index = tf.range(n)
        row = tf.reduce_sum(tf.cast(index[:, None] >= splits[None, 1:], tf.int32), axis=1)
        within = index - tf.gather(splits, row)
        return values, row, within, splits[1:] - splits[:-1]

    def __call__(self, text_a, text_b=None) -> dict[str, tf.Tensor]:
        length = self.seq_length
        batch = tf.shape(text_a)[0]
        a_values, a_row, a_pos, a_len = self._pieces(text_a)
        if text_b is None:
            keep_a = tf.minimum(a_len, length - 2)
            total = keep_a + 2
        else:
            b_values, b_row, b_pos, b_len = self._pieces(text_b)
            budget = length - 3
            keep_b = tf.minimum(b_len, tf.maximum(budget // 2, budget - a_len))
            fits = a_len + b_len <= budget
            keep_b = tf.where(fits, b_len, keep_b)
            keep_a = tf.where(fits, a_len, budget - keep_b)
            total = keep_a + keep_b + 3
        shape = tf.stack([batch, length + 1])  # column `length` collects what is cut off

        def scatter(rows, cols, values):
            return tf.scatter_nd(tf.stack([rows, cols], axis=1), values, shape)

        rows = tf.range(batch)
        ids = scatter(a_row, tf.where(a_pos < tf.gather(keep_a, a_row), a_pos + 1, length), a_values)
        ids += scatter(rows, tf.zeros_like(rows), tf.fill([batch], self.cls_id))
        ids += scatter(rows, keep_a + 1, tf.fill([batch], self.sep_id))
        if text_b is not None:
            start_b = tf.gather(keep_a, b_row) + 2
            ids += scatter(b_row, tf.where(b_pos < tf.gather(keep_b, b_row), start_b + b_pos, length), b_values)
            ids += scatter(rows, keep_a + keep_b + 2, tf.fill([batch], self.sep_id))
        positions = tf.range(length)[None, :]
        mask = tf.cast(positions < total[:, None], tf.int32)
        ids = ids[:, :length] + self.pad_id * (1 - mask)
        segments = tf.zeros_like(ids) if text_b is None else \
            tf.cast(positions >= (keep_a + 2)[:, None], tf.int32) * mask
        return {"token_ids": ids, "segment_ids": segments, "padding_mask": mask}


class _TextModule(tf.Module):
    def __init__(self, model: keras.Model, packer: TextPacker, info: ExportInfo) -> None:
        super().__init__(name="electra_text")
        self.model = model
        self.model_variables = tracked_variables(model)
        self.packer = packer
        self.info = info
        string = lambda name: tf.TensorSpec([None], tf.string, name=name)  # noqa: E731
        if info.pair:
            self.serve = tf.function(lambda text_a, text_b: self._outputs(self.packer(text_a, text_b)),
                                     input_signature=[string("text_a"), string("text_b")])
        else:
            self.serve = tf.function(lambda text: self._outputs(self.packer(text)), input_signature=[string("text")])

    def _outputs(self, packed):
        logits = tf.cast(self.model(packed, training=False), tf.float32)
        if self.info.task_type == "regression":
            return {"logits": logits, "score": logits[:, 0]}
        return {"logits": logits, "probabilities": tf.nn.softmax(logits, axis=-1)}


def export_tflite_text(
    model_or_path,
    output: str | Path,
    quantize: str = "none",
    max_seq_len: int | None = None,
    keep_layers: int | None = None,
    pair: bool | None = None,
) -> Path:
    """Write a string-in `.tflite` that tokenises on the device (tensorflow-text custom ops)."""
    if quantize not in ("none", "float16", "dynamic"):
        raise ExportError(f"the string-in TFLite model supports quantize none, float16 or dynamic, not {quantize!r} "
                          "(calibrate the token-ids model for int8)")
    model, preprocessor, info = prepare_model(model_or_path, pair, max_seq_len, keep_layers)
    if info.task_type not in ("classification", "regression"):
        raise ExportError(f"a string-in TFLite model is available for classification and regression, not "
                          f"{info.task_type} (export the token-ids model; keras_electra.export.predictor tokenises)")
    tok = preprocessor.tokenizer
    packer = TextPacker(tok.vocabulary, tok.lower_case, tok.strip_accents, preprocessor.seq_length,
                        tok.cls_id, tok.sep_id, tok.pad_id)
    module = _TextModule(model, packer, info)
    with tempfile.TemporaryDirectory(prefix="electra-tflite-text-") as tmp:
        tf.saved_model.save(module, tmp, signatures={SERVING_SIGNATURE: module.serve})
        converter = _converter(Path(tmp), SERVING_SIGNATURE)
        converter.allow_custom_ops = True
        content = _quantize(converter, quantize, None)
    unexpected = sorted(set(custom_ops(content)) - {"FastBertNormalize", "FastWordpieceTokenize",
                                                     "FastWordpieceTokenizeWithOffsets"})
    if unexpected:
        raise ExportError(f"the string-in TFLite model needs custom ops without a TFLite kernel: {unexpected}")
    content = add_metadata(content, _metadata_entries(info, tok.vocabulary, {"quantize": quantize, "input": "text"}))
    output = Path(output)
    with atomic_file(output) as tmp_file:
        tmp_file.write_bytes(content)
    return output


def builtin_only(model: bytes) -> bool:
    return not custom_ops(model) and not any(re.match(r"^Flex", op) for op in op_types(model))
