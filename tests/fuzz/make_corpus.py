#!/usr/bin/env python3
"""make_corpus.py - writes the fuzz targets' seed corpora, tests/fuzz/corpus/.

Seeds are small valid and near-valid inputs: the repository's fixtures and
shipped pipelines, plus a few hand-made variants that reach each reader's
checks (a field one step from valid). Run from the top of the source tree
after `make build` (the pipeline JSON seeds are `orch plan --json` output):

    python3 tests/fuzz/make_corpus.py

It only adds or overwrites its own files; inputs committed from crashes
(named crash-*) are left alone.
"""
import glob
import json
import os
import shutil
import struct
import subprocess

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(TOP, "tests", "fuzz", "corpus")


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def safetensors(header, data=b"", hlen=None):
    text = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(text) if hlen is None else hlen) + text + data


def npy(header, data=b"", major=1):
    text = header.encode()
    if major == 1:
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + data
    return b"\x93NUMPY" + bytes([major, 0]) + struct.pack("<I", len(text)) + text + data


def bundles():
    """fuzz_bundle: a small valid bundle (MANIFEST.json, a config, two CSVs
    with every kind of value), as .tar and .tar.gz, written the way orch
    export writes (pax, fixed time and owner)."""
    import gzip
    import hashlib
    import io
    import tarfile

    uuid = "0b7c3e9e-2f4a-4d61-9a55-3c0e8f1d2a47"
    members = [
        ("runs/%s/config.json" % uuid, b"{}"),
        ("runs/%s/rows/runs.csv" % uuid, b'id,uuid,name\n1,"%s","a ""q"""\n' % uuid.encode()),
        ("runs/%s/rows/steps.csv" % uuid, b"run_id,step,loss,blob\n1,0,1.5,X'00ff'\n1,1,-Inf,\n"),
    ]
    manifest = {"format": 1, "orch_version": "fuzz", "runs": [uuid],
                "members": [{"name": n, "bytes": len(d), "sha256": hashlib.sha256(d).hexdigest()}
                            for n, d in members]}
    head = (json.dumps(manifest, indent=2) + "\n").encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for n, d in [("MANIFEST.json", head)] + members:
            info = tarfile.TarInfo(n)
            info.size, info.mtime, info.uname, info.gname = len(d), 315532800, "orch", "orch"
            t.addfile(info, io.BytesIO(d))
    put("bundle", "seed.tar", buf.getvalue())
    put("bundle", "seed.tar.gz", gzip.compress(buf.getvalue(), mtime=0))


def main():
    os.chdir(TOP)
    # safetensors: the fixture, every dtype family, metadata, and each check
    shutil.copy("tests/data/st_small.safetensors", os.path.join(CORPUS, "safetensors", "st_small"))
    f32 = struct.pack("<6f", 1, 2, 3, 4, 5, 6)
    put("safetensors", "f32_2x3", safetensors(
        {"__metadata__": {"format": "pt"}, "a": {"dtype": "F32", "shape": [2, 3],
                                                 "data_offsets": [0, 24]}}, f32))
    put("safetensors", "bf16_f16", safetensors(
        {"b": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]},
         "h": {"dtype": "F16", "shape": [2], "data_offsets": [4, 8]}},
        bytes([0x80, 0x3f, 0xc0, 0x7f, 0x00, 0x3c, 0x00, 0x7c])))
    put("safetensors", "scalar_and_empty", safetensors(
        {"s": {"dtype": "F32", "shape": [], "data_offsets": [0, 4]},
         "e": {"dtype": "F32", "shape": [0, 3], "data_offsets": [4, 4]}}, struct.pack("<f", 7)))
    put("safetensors", "other_dtype", safetensors(
        {"i": {"dtype": "I8", "shape": [4], "data_offsets": [0, 4]}}, b"\x01\x02\x03\x04"))
    put("safetensors", "model_prefix", safetensors(
        {"model.visual.w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\0\0\x80?"))
    put("safetensors", "offsets_past_end", safetensors(
        {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 16]}}, b"\0" * 8))
    put("safetensors", "size_mismatch", safetensors(
        {"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8))
    put("safetensors", "hlen_past_end", safetensors({"a": {}}, b"", hlen=4096))
    put("safetensors", "unknown_dtype", safetensors(
        {"a": {"dtype": "Q4", "shape": [1], "data_offsets": [0, 1]}}, b"\0"))

    # npy: every fixture under 4 KiB, plus versions and dict variants
    for path in sorted(glob.glob("tests/data/*.npy")):
        if os.path.getsize(path) <= 4096:
            shutil.copy(path, os.path.join(CORPUS, "npy", os.path.basename(path)[:-4]))
    dict_f4 = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }"
    put("npy", "v3_f4", npy(dict_f4 + "\n", struct.pack("<4f", 1, 2, 3, 4), major=3))
    put("npy", "i8_1d", npy("{'descr': '<i8', 'fortran_order': True, 'shape': (3,), }\n",
                            struct.pack("<3q", 1, -2, 3)))
    put("npy", "i1_shape0", npy("{'descr': '|i1', 'fortran_order': False, 'shape': (0, 5), }\n"))
    put("npy", "truncated_data", npy(dict_f4 + "\n", b"\0" * 7))
    put("npy", "keys_reordered", npy(
        "{'shape': (1,), 'fortran_order': False, 'descr': '=f8'}\n", struct.pack("<d", 0.5)))

    # pipeline JSON: every shipped pipeline resolved, pretty and compact,
    # and one key dropped (the most common near-valid text)
    for path in sorted(glob.glob("pipelines/*.lua")):
        name = os.path.basename(path)[:-4]
        out = subprocess.run(["./orch", "plan", path, "--json"], check=True,
                             capture_output=True).stdout.decode()
        put("pipeline_json", name, out)
        doc = json.loads(out)
        put("pipeline_json", name + "_compact", json.dumps(doc, separators=(",", ":"),
                                                           sort_keys=True))
        if name == "lora":
            del doc["schedule"]
            put("pipeline_json", "lora_no_schedule", json.dumps(doc, separators=(",", ":")))

    # DSL: the shipped pipelines and the bad-input suite, but not the cases
    # that spend the whole instruction or memory budget (seconds per run
    # under the sanitizers; the fuzzer finds loops on its own)
    slow = {"endless_loop.lua", "pcall_loop.lua", "memory_hog.lua"}
    for path in sorted(glob.glob("pipelines/*.lua") + glob.glob("tests/bad/*.lua")):
        base = os.path.basename(path)
        if base in slow:
            continue
        prefix = "bad_" if path.startswith("tests/bad") else ""
        shutil.copy(path, os.path.join(CORPUS, "dsl", prefix + base[:-4]))
    # sweeps (orch_dsl_load_sweep runs on every input too), but not the
    # endless loop
    for path in sorted(glob.glob("tests/data/sweeps/*.lua")):
        base = os.path.basename(path)
        if base in ("base.lua", "bad_endless.lua"):
            continue
        shutil.copy(path, os.path.join(CORPUS, "dsl", "sweep_" + base[:-4]))
    # images: one of each PNG colour type / depth / interlacing and JPEG kind
    # from the decoder's fixtures (scripts/make_image_fixtures.py), plus the
    # CMYK and huge-dimension refusals
    os.makedirs(os.path.join(CORPUS, "image"), exist_ok=True)
    for name in ("png_rgb8.png", "png_rgb16.png", "png_pal_trns.png", "png_gray1.png",
                 "png_graya16.png", "png_interlaced.png", "png_gray16.png", "jpg_baseline.jpg",
                 "jpg_progressive.jpg", "jpg_gray.jpg", "jpg_422.jpg", "bad_cmyk.jpg",
                 "bad_huge.png"):
        shutil.copy(os.path.join("tests", "data", "images", name), os.path.join(CORPUS, "image", name))


if __name__ == "__main__":
    main()
    bundles()
