"""Tables that read well at 100 columns and in a log: no cut cells, no ellipses, a second table instead."""

import re

from rich.console import Console

from inferarena.report.fit import Col, parts, print_table


def _columns(rows: int = 5) -> list[Col]:
    names = [f"onnxruntime/int8/dynamic@int8-dynamic-ac-{i}" for i in range(rows)]
    cols = [Col("#", [str(i + 1) for i in range(rows)], key=True), Col("variant", names, "left", key=True)]
    for header in ("p50 ms", "p90 ms", "p99 ms", "LoadGen", "cos min", "mJ/q est.", "$/1M", "%peak", "rounds",
                   "spread %", "±CI %"):
        cols.append(Col(header, [f"{header[:3]}{i}.25" for i in range(rows)]))
    return cols


def _printed(width: int, wide: bool = False) -> str:
    console = Console(width=width, record=True, force_terminal=False, color_system=None)
    print_table(console, "SingleStream — ranked by p90 latency, lowest first", _columns(),
                ["a note that is long enough to wrap at the console's width " * 3], wide=wide)
    return console.export_text()


def test_narrow_console_gets_a_second_table_not_cut_columns():
    text = _printed(100)
    assert "…" not in text
    assert all(len(line) <= 100 for line in text.splitlines())
    for header in ("p50 ms", "±CI %", "mJ/q est.", "spread %"):  # every header whole, somewhere
        assert header in text
    assert "SingleStream (continued, 2/" in text  # the short title, not the whole ranking line again
    assert text.count("onnxruntime/int8/dynamic@int8-dynamic-ac-4") == len(re.findall(r"^#  variant", text, re.M)) > 1
    for i in range(5):
        assert f"±CI{i}.25" in text and f"p50{i}.25" in text


def test_wide_keeps_one_table():
    console = Console(width=100)
    assert len(parts(_columns(), console, wide=True)) == 1
    text = _printed(100_000, wide=True)
    header = next(line for line in text.splitlines() if "variant" in line)
    assert re.search(r"p50 ms.*±CI %", header) and "continued" not in text


def test_a_table_that_fits_stays_whole():
    assert len(parts(_columns()[:6], Console(width=100))) == 1


def test_adaptive_variants_get_their_own_table():
    from inferarena.report.console import adaptive_table
    from inferarena.results import VariantResult

    def variant(name, adaptive):
        return VariantResult(name=name, runtime="transformers", precision="fp32", shape="dynamic", adaptive=adaptive)

    rows = [variant("transformers/fp32", None),
            variant("transformers/fp32@prompt-lookup", {"method": "prompt_lookup", "acceptance_rate": 0.28,
                                                        "tokens_per_step": 2.56, "steps": 25}),
            variant("transformers/fp32@griffin", {"method": "griffin", "ffn_kept_ratio": 0.5,
                                                  "active_params_ratio": 0.704, "controller_ms": 16.5, "inputs": 6})]
    console = Console(width=200, record=True, force_terminal=False, color_system=None)
    adaptive_table(console, rows)
    text = console.export_text()
    assert "Adaptive variants" in text and "transformers/fp32@griffin" in text
    assert text.count("transformers/fp32") == 2  # the plain variant has no row
    for shown in ("draft tokens accepted", "0.28", "2.56", "FFN neurons kept", "0.70", "16.50", "controller"):
        assert shown in text
    assert rows[1].adapts_per_input and rows[2].adapts_per_input and not rows[0].adapts_per_input
