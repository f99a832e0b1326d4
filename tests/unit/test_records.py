import json

import pytest

from conftest import argv
from locus.training.records import DataError, find_raw, read_records
from locus.training.splits import deduplicate, instruction_key, ranked, split


def write(tmp_path, name, content: str | bytes):
    p = tmp_path / name
    p.write_bytes(content if isinstance(content, bytes) else content.encode())
    return p


@pytest.mark.parametrize(
    "obj",
    [
        {"instruction": "Q", "response": "A"},
        {"instruction": "Q", "output": "A"},
        {"prompt": "Q", "completion": "A"},
        {"question": "Q", "answer": "A"},
        {
            "messages": [
                {"role": "system", "content": "s"},
                {"role": "user", "content": "Q"},
                {"role": "assistant", "content": "A"},
            ]
        },
    ],
)
def test_field_mappings(tmp_path, obj):
    recs = read_records(write(tmp_path, "d.jsonl", json.dumps(obj) + "\n"))
    assert recs == [{"instruction": "Q", "response": "A"}]


def test_alpaca_input_is_appended(tmp_path):
    recs = read_records(write(tmp_path, "d.json", json.dumps([{"instruction": "Q", "input": "ctx", "output": "A"}])))
    assert recs[0]["instruction"] == "Q\n\nctx"


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"instruction": "a", "response": "b"}\n{"instruction": "a", \n', r"d.jsonl:2: malformed JSON"),
        ('{"instruction": "a", "response": ""}\n', r"d.jsonl:1: response is missing or empty"),
        ('{"instruction": "  ", "response": "b"}\n', r"d.jsonl:1: instruction is missing or empty"),
        ('{"text": "a"}\n', r"d.jsonl:1: no known field pair"),
        ("\n\n", r"d.jsonl: empty dataset"),
        ("[1, 2]", r"item 0: expected a JSON object"),
        ('{"messages": [{"role": "assistant", "content": "x"}]}\n', r"d.jsonl:1: 'messages' must hold"),
    ],
)
def test_bad_input_names_file_and_line(tmp_path, content, message):
    name = "d.json" if content.startswith("[") else "d.jsonl"
    with pytest.raises(DataError, match=message):
        read_records(write(tmp_path, name, content))


def test_non_utf8_names_line(tmp_path):
    content = b'{"instruction": "a", "response": "b"}\n{"instruction": "\xff", "response": "b"}\n'
    with pytest.raises(DataError, match=r"d.jsonl:2: not UTF-8"):
        read_records(write(tmp_path, "d.jsonl", content))


def test_find_raw(tmp_path):
    with pytest.raises(DataError, match="no dataset for domain 'x'"):
        find_raw(tmp_path, "x")
    write(tmp_path, "x.jsonl", "")
    write(tmp_path, "x.json", "")
    with pytest.raises(DataError, match="both"):
        find_raw(tmp_path, "x")


def records(n):
    return [{"instruction": f"Question number {i}", "response": f"answer {i}"} for i in range(n)]


def test_split_is_deterministic_and_order_free():
    rs = records(500)
    train, evals = split(rs, 0.1, "salt")
    assert 25 < len(evals) < 80 and len(train) + len(evals) == 500
    train2, evals2 = split(list(reversed(rs)), 0.1, "salt")
    assert sorted(r["instruction"] for r in evals) == sorted(r["instruction"] for r in evals2)
    # Adding data never moves an existing example across the split.
    _, evals3 = split(rs + records(600)[500:], 0.1, "salt")
    assert {r["instruction"] for r in evals} <= {r["instruction"] for r in evals3}
    _, evals_other = split(rs, 0.1, "other salt")
    assert evals_other != evals


def test_near_identical_instructions_share_a_side():
    rs = [{"instruction": "What  is 2+2?", "response": "4"}, {"instruction": "what is 2+2?", "response": "four"}]
    for salt in map(str, range(50)):
        train, evals = split(rs, 0.5, salt)
        assert len(train) in (0, 2)
    assert instruction_key("What  is\n2+2?") == instruction_key("what is 2+2?")


def test_deduplicate_and_subset():
    rs = records(10) + records(3)
    assert len(deduplicate(rs)) == 10
    picked = ranked(records(100), "s")[:7]  # a budget is a prefix of the ranked split
    assert len(picked) == 7 and picked == ranked(list(reversed(records(100))), "s")[:7]
    assert len(ranked(records(5), "s")) == 5


def test_a_byte_order_mark_and_crlf_line_ends_are_accepted(tmp_path):
    from locus.training.records import read_records

    path = tmp_path / "bom.jsonl"
    path.write_bytes(
        b"\xef\xbb\xbf" + b'{"instruction": "a", "response": "b"}\r\n{"instruction": "c", "response": "d"}\r\n'
    )
    assert [r["instruction"] for r in read_records(path)] == ["a", "c"]


def test_json_tables_accept_a_byte_order_mark_and_name_the_file_when_broken(tmp_path):
    from locus import io

    path = tmp_path / "metrics.json"
    path.write_bytes(b'\xef\xbb\xbf{"optimizer_steps": 4}\r\n')
    assert io.read_json(path) == {"optimizer_steps": 4}
    path.write_bytes(b'{"optimizer_steps": ')
    with pytest.raises(ValueError, match=f"^{path}: unreadable"):
        io.read_json(path)


def test_a_path_like_domain_on_the_command_line_is_refused(tmp_path, capsys):
    import pytest

    from locus.cli import main

    with pytest.raises(SystemExit) as stop:
        main(argv("prepare-data", domain="../../tmp/evil", out=tmp_path / "x"))
    assert stop.value.code == 2 and "must be letters, digits" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
