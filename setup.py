"""keras_electra: ELECTRA pretraining, fine-tuning, checkpoint interop and export for Keras 3."""

from pathlib import Path

from setuptools import find_packages, setup

setup(
    name="keras-electra",
    version="0.1.0",
    description="ELECTRA for Keras and TensorFlow: pretrain, fine-tune, convert checkpoints, export.",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10,<3.13",
    packages=find_packages(include=["keras_electra", "keras_electra.*"]),
    install_requires=[
        "tensorflow>=2.21,<2.22",
        "tensorflow-text>=2.21,<2.22",
        "keras>=3.12,<4",
        "keras-hub>=0.32,<0.33",  # <0.33: convert/resolve.py calls keras_hub.src.utils.preset_utils.get_file
        "huggingface-hub>=1.0",  # checkpoints by name (snapshot_download, endpoint= and tree-cache checks)
        "kagglehub>=0.3",  # keras-hub presets by name (kaggle:// handles)
        "tensorflow-datasets>=4.9.9,<5",
        "tf2onnx>=1.17,<1.18",
        "onnxruntime>=1.20",
        "ai-edge-litert>=2.0",
        "safetensors>=0.4",
        "numpy>=1.26",
        "matplotlib>=3.8",
        "tensorboard>=2.20",
    ],
    extras_require={
        # Keras 3 on JAX (issue 16): the backend, and grain to read ArrayRecord shards without TensorFlow.
        "jax": ["jax[cpu]>=0.10,<0.11", "grain>=0.2.18,<0.3", "array-record>=0.8"],
        "wandb": ["wandb>=0.31,<0.32"],
        "dev": [
            "jax[cpu]>=0.10,<0.11",
            "grain>=0.2.18,<0.3",
            "array-record>=0.8",
            "wandb>=0.31,<0.32",
            "pytest>=8",
            "hypothesis>=6.100",  # property-based tests of the readers and tokenizer (tests/data/test_fuzz_inputs.py)
            "ruff>=0.8",
            # The reference implementation for parity tests and benchmarks (CPU build).
            "torch==2.13.0",
            "transformers>=5,<6",
            "seqeval>=1.2",
            "scikit-learn>=1.3",  # AUC in scripts/compare_pretraining_with_hf.py
            "nbclient>=0.10",
            "nbformat>=5.10",
            "ipykernel>=6",
            "tensorflow-serving-api>=2.21,<2.22",
        ],
    },
    entry_points={"console_scripts": ["keras-electra=keras_electra.cli:main"]},
)
