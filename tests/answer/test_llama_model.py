"""Loading GGUF models into llama.cpp: the weight-repacking decision (off on CPUs
with AMX, whose repacked path segfaults) and a real decode through the loading
code the product uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.manifest import default_model_path
from rag.answer.llama_model import AMX_FLAGS, choose_repack, cpu_flags, load_llama, repack_here

SAPPHIRE_RAPIDS = {"fpu", "avx2", "avx512f", "avx512_vnni", "amx_bf16", "avx512_fp16", "amx_tile", "amx_int8"}
ICE_LAKE = {"fpu", "avx2", "avx512f", "avx512_vnni", "avx512_vbmi"}
ZEN4 = {"fpu", "avx2", "avx512f", "avx512_bf16", "avx512_vnni"}


@pytest.mark.parametrize("flags", [SAPPHIRE_RAPIDS, {"amx_int8"}, {"avx2", "amx_tile"}])
def test_auto_turns_repacking_off_on_a_cpu_with_amx(flags: set[str]) -> None:
    choice = choose_repack("auto", flags)
    assert choice.repack is False
    assert "AMX" in choice.reason and "RAG_LLM_REPACK=on" in choice.reason


@pytest.mark.parametrize("flags", [ICE_LAKE, ZEN4, set()])
def test_auto_keeps_llamas_default_without_amx(flags: set[str]) -> None:
    choice = choose_repack("auto", flags)
    assert choice.repack is True and "no AMX" in choice.reason


@pytest.mark.parametrize("flags", [SAPPHIRE_RAPIDS, ICE_LAKE])
def test_the_setting_forces_either_way(flags: set[str]) -> None:
    assert choose_repack("on", flags).repack is True
    assert choose_repack("off", flags).repack is False
    with pytest.raises(ValueError, match="auto, on, off"):
        choose_repack("sometimes", flags)  # type: ignore[arg-type]


def test_cpu_flags_come_from_cpuinfo(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Intel(R) Xeon(R)\nflags\t\t: fpu avx2 amx_tile amx_int8\n\n"
                    "processor\t: 1\nflags\t\t: fpu avx2 amx_tile amx_int8\n")
    assert cpu_flags(info) == {"fpu", "avx2", "amx_tile", "amx_int8"}
    assert cpu_flags(tmp_path / "missing") is None


def test_load_llama_sets_the_repacking_it_is_given() -> None:
    import llama_cpp.llama_cpp as api

    default = api.llama_model_default_params
    for repack in (False, True):  # loading only: a repacked model crashes on AMX at its first decode
        llm = load_llama(default_model_path(), repack, n_ctx=256, n_threads=1, verbose=False)
        assert llm.model_params.use_extra_bufts is repack
        del llm
    assert api.llama_model_default_params is default  # the hook is gone once the model is loaded
    assert api.llama_model_default_params().use_extra_bufts is True  # llama.cpp's own default


@pytest.mark.slow
def test_the_default_model_decodes_through_the_products_loading_code() -> None:
    from rag.answer.generation import LlamaCppGenerator

    gen = LlamaCppGenerator(default_model_path(), n_ctx=512, n_threads=2)  # RAG_LLM_REPACK's default: auto
    flags = cpu_flags() or frozenset()
    assert gen.repack.repack is not bool(AMX_FLAGS & flags)
    assert gen.repack == repack_here("auto")
    assert gen._llm.model_params.use_extra_bufts is gen.repack.repack
    text = "".join(gen.stream([{"role": "user", "content": "What is the capital of France?"}], max_tokens=8))
    assert gen.tokens_generated >= 1 and text.strip()
