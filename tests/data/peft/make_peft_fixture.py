#!/usr/bin/python3
"""Writes the PEFT-format fixture test_cli_export_adapter compares against.

What PEFT writes for LoRA rank 4, alpha 8 on visual.merger.mlp.0 and
visual.merger.mlp.2 of the tiny tower (docs/qwen25vl-vision.md: hidden 32,
merge 2, out 24), built from PEFT's own code paths rather than by running
it (the machine has no peft):

adapter_config.json: PeftModel.save_pretrained writes
  LoraConfig.to_dict() as json.dumps(d, indent=2, sort_keys=True)
  (huggingface/peft v0.13: src/peft/config.py PeftConfigMixin.save_pretrained,
  to_dict; src/peft/tuners/lora/config.py LoraConfig fields), target_modules
  (a set in memory) as a list.
adapter_model.safetensors: save_pretrained writes
  get_peft_model_state_dict(model) (src/peft/utils/save_and_load.py: the
  "lora_" keys of model.state_dict(), the adapter name ".default" taken
  out, so "base_model.model.<module>.lora_A.weight") with
  safetensors.torch.save_file(..., metadata={"format": "pt"}): the header
  is serde_json's compact output, "__metadata__" first, tensors sorted by
  name (all F32, one alignment), "dtype", "shape", "data_offsets" in that
  order, padded with spaces to a multiple of 8
  (huggingface/safetensors: safetensors/src/tensor.rs prepare/serialize).
  The data are zeros: the test compares names, dtypes, shapes and offsets.

Run: /usr/bin/python3 tests/data/peft/make_peft_fixture.py (writes beside
itself). The files are committed; the suite never runs Python.
"""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
RANK, ALPHA = 4, 8
TARGETS = ["visual.merger.mlp.0", "visual.merger.mlp.2"]
SHAPES = {"visual.merger.mlp.0": (128, 128), "visual.merger.mlp.2": (24, 128)}  # (out, in)

config = {
    "alpha_pattern": {},
    "auto_mapping": None,
    "base_model_name_or_path": None,
    "bias": "none",
    "fan_in_fan_out": False,
    "inference_mode": True,
    "init_lora_weights": True,
    "layer_replication": None,
    "layers_pattern": None,
    "layers_to_transform": None,
    "loftq_config": {},
    "lora_alpha": ALPHA,
    "lora_dropout": 0.0,
    "megatron_config": None,
    "megatron_core": "megatron.core",
    "modules_to_save": None,
    "peft_type": "LORA",
    "r": RANK,
    "rank_pattern": {},
    "revision": None,
    "target_modules": TARGETS,
    "task_type": None,
    "use_dora": False,
    "use_rslora": False,
}
with open(os.path.join(HERE, "adapter_config.json"), "w") as f:
    f.write(json.dumps(config, indent=2, sort_keys=True))

tensors = {}
for t in TARGETS:
    out_dim, in_dim = SHAPES[t]
    tensors[f"base_model.model.{t}.lora_A.weight"] = (RANK, in_dim)
    tensors[f"base_model.model.{t}.lora_B.weight"] = (out_dim, RANK)
header, offset = {"__metadata__": {"format": "pt"}}, 0
for name in sorted(tensors):
    n = 4 * tensors[name][0] * tensors[name][1]
    header[name] = {"dtype": "F32", "shape": list(tensors[name]), "data_offsets": [offset, offset + n]}
    offset += n
text = json.dumps(header, separators=(",", ":")).encode()
text += b" " * ((8 - len(text) % 8) % 8)
with open(os.path.join(HERE, "adapter_model.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(text)) + text + bytes(offset))
