"""Golden check against the released `google/electra-small-discriminator` (needs the network).

The expected numbers are the ones transformers' own slow test publishes
(`test_inference_no_head_absolute_embedding`): the ElectraModel hidden states
`output[:, 1:4, 1:4]` for these ids, with the first position masked out. Offline (as on
this project's machines, or with HF_HUB_OFFLINE=1) the test skips with the reason.
"""

from __future__ import annotations

import os
import socket

import numpy as np
import pytest

from keras_electra.convert import from_pretrained

REPO_ID = "google/electra-small-discriminator"
IDS = [0, 345, 232, 328, 740, 140, 1695, 69, 6078, 1588, 2]
EXPECTED = [[0.4471, 0.6821, -0.3265], [0.4627, 0.5255, -0.3668], [0.4532, 0.3313, -0.4344]]


def _hub_reachable(timeout: float = 3.0) -> str | None:
    """None when huggingface.co answers, else why not (checked fast, never hangs)."""
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return "HF_HUB_OFFLINE is set"
    try:
        socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
    except OSError as err:
        return f"huggingface.co is unreachable ({err.__class__.__name__})"
    return None


def test_released_small_discriminator_matches_published_values():
    reason = _hub_reachable()
    if reason:
        pytest.skip(f"golden check needs the Hugging Face hub: {reason}")
    backbone = from_pretrained(REPO_ID, part="backbone")  # by name: convert/resolve.py fetches it
    ids = np.array([IDS], np.int32)
    inputs = {"token_ids": ids, "segment_ids": np.zeros_like(ids), "padding_mask": np.array([[0] + [1] * 10], np.int32)}
    output = np.asarray(backbone(inputs))
    assert output.shape == (1, 11, 256)
    np.testing.assert_allclose(output[:, 1:4, 1:4], np.array([EXPECTED]), atol=1e-4)
