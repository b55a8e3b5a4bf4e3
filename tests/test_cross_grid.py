"""The mismatch grid's tables (dni.paper.cross_grid) against numbers computed here from the raw arrays."""

import numpy as np
import pytest
import xarray as xr

from dni.paper.cross_grid import (
    best_table,
    grid_table,
    is_resolution_sweep,
    middle_table,
    quantisation_table,
)
from dni.store.results import merge_results

DIMS = ("arch", "sigma_train", "sigma_val", "seed")
REPEATS = 5


def pair(train, evaluation, sigma_train, sigma_val, accuracy):
    """A one-pair result as `dni evaluate` writes it; accuracy (len σtrain, len σval, REPEATS)."""
    return xr.Dataset({"accuracy": (DIMS, np.asarray(accuracy)[None])},
                      coords={"arch": ["lstm28"], "sigma_train": sigma_train, "sigma_val": sigma_val, "seed": range(REPEATS)},
                      attrs={"dataset": "mnist", "eval_seed": 0, "train_noise": train, "eval_noise": evaluation})


@pytest.fixture(scope="module")
def grid():
    """Additive models σtrain 0, 0.5, 1 and weight_read models 0.1, 0.2, 0.3, each under additive σval 0.5, 1 and
    weight_read 0.1, 0.2, 0.3 (plus σval 0), and the additive models under adc at 4, 5, 6 bits; random accuracies."""
    rng = np.random.default_rng(7)
    trains = {"additive": [0.0, 0.5, 1.0], "weight_read": [0.1, 0.2, 0.3]}
    evals = {"additive": [0.0, 0.5, 1.0], "weight_read": [0.0, 0.1, 0.2, 0.3]}
    parts, raw = [], {}
    for t, st in trains.items():
        for e, sv in evals.items():
            acc = rng.uniform(0.5, 0.99, (len(st), len(sv), REPEATS))
            acc[:, 0] = np.linspace(0.95, 0.99, len(st))[:, None]  # σval 0: the noiseless network, the same for every eval kind
            parts.append(pair(t, e, st, sv, acc))
            raw[t, e] = (st, sv, acc)
    for bits in (4, 5, 6):
        label = f"adc(bits={bits},bound=16)"
        acc = np.linspace(0.95, 0.99, 3)[:, None, None] - np.array([0.05, 0.008, 0.001])[:, None, None] * (7 - bits)
        acc = np.broadcast_to(acc, (3, 1, REPEATS))
        parts.append(pair("additive", label, trains["additive"], [0.0], acc))
        raw["additive", label] = (trains["additive"], [0.0], acc)
    return merge_results(parts), raw


def rows(markdown):
    """{first cell (or first two cells joined by a space, when the second is a number): [cells]} of a Markdown table."""
    out = {}
    for line in markdown.splitlines():
        if not line.startswith("|") or line.startswith("|---"):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        out[cells[0]] = cells[1:]
    return out


def expected(raw, t, e, st, sv):
    sts, svs, acc = raw[t, e]
    a = acc[sts.index(st), svs.index(sv)] * 100
    if a.max() == a.min():  # a deterministic point: its mean only
        return f"{a.mean():.1f}"
    return f"{a.mean():.1f} ± {a.std(ddof=1) / np.sqrt(len(a)):.2f}"


def test_middle_table_takes_each_kinds_middle_strength(grid):
    ds, raw = grid
    table = rows(middle_table(ds))
    header = table.pop("trained under")
    # the middle of additive's non-zero strengths [0.5, 1] is the lower one; of weight_read's [0.1, 0.2, 0.3] the 0.2
    assert header == ["noiseless", "additive 0.5", "weight_read 0.2"]
    assert list(table) == ["conventional (σtrain 0)", "additive 0.5", "weight_read 0.2"]
    assert table["weight_read 0.2"][1:] == [expected(raw, "weight_read", "additive", 0.2, 0.5),
                                            expected(raw, "weight_read", "weight_read", 0.2, 0.2)]
    assert table["conventional (σtrain 0)"][2] == expected(raw, "additive", "weight_read", 0.0, 0.2)
    assert table["weight_read 0.2"][0] == "97.0"  # σval 0 of the second of three models: deterministic, no "± 0.00"


def test_grid_table_holds_every_model_and_point_but_not_the_converter_sweep(grid):
    ds, raw = grid
    markdown = grid_table(ds)
    assert "adc" not in markdown
    lines = [line for line in markdown.splitlines() if not line.startswith("|---")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header[3:] == ["additive 0.5", "additive 1", "weight_read 0.1", "weight_read 0.2", "weight_read 0.3"]
    assert len(lines) == 1 + 6
    for line in lines[1:]:
        t, st, _, *cells = [c.strip() for c in line.strip("|").split("|")]
        columns = [("additive", 0.5), ("additive", 1.0), ("weight_read", 0.1), ("weight_read", 0.2), ("weight_read", 0.3)]
        assert cells == [expected(raw, t, e, float(st), sv) for e, sv in columns]


def test_best_table_bolds_the_best_model_of_all(grid):
    ds, raw = grid
    table = rows(best_table(ds))
    assert table.pop("inference noise") == ["conventional", "best additive-trained", "best weight_read-trained"]
    for label, cells in table.items():
        e, sv = label.rsplit(" ", 1)
        sv = float(sv)
        conv = raw["additive", e][2][0, raw["additive", e][1].index(sv)].mean()
        best = {t: max((raw[t, e][2][i, raw[t, e][1].index(sv)].mean(), st) for i, st in enumerate(raw[t, e][0]) if st > 0)
                for t in ("additive", "weight_read")}
        top = max(conv, *(m for m, _ in best.values()))
        for cell, (t, (mean, st)) in zip(cells[1:], best.items()):
            assert cell.strip("*").startswith(f"{mean * 100:.1f} ± ") and cell.strip("*").endswith(f"({st:g})")
            assert cell.startswith("**") == (mean == top)
        assert cells[0].startswith("**") == (conv == top)
        assert sum(c.startswith("**") for c in cells) == 1


def test_quantisation_table_finds_the_fewest_bits_within_one_point(grid):
    ds, raw = grid
    table = rows(quantisation_table(ds))
    assert table.pop("model") == ["noiseless", "4 bits", "5 bits", "6 bits", "fewest bits within 1 point"]
    assert list(table) == ["conventional (σtrain 0)", "additive 0.5", "additive 1"]
    for i, (label, cells) in enumerate(table.items()):
        clean = raw["additive", "additive"][2][i, 0, 0] * 100
        accs = [raw["additive", f"adc(bits={b},bound=16)"][2][i, 0, 0] * 100 for b in (4, 5, 6)]
        assert cells[1:4] == [f"{a:.1f}" for a in accs]
        fewest = next((b for b, a in zip((4, 5, 6), accs) if a >= clean - 1), None)
        assert cells[4] == (str(fewest) if fewest else "> 6")
    # the three models lose 5, 0.8 and 0.1 points per bit below 7: never within 1, from 6 bits, from 4 bits
    assert [cells[4] for cells in table.values()] == ["> 6", "6", "4"]


def test_a_converter_sweep_is_one_converter_kind_without_strength():
    assert is_resolution_sweep("adc(bits=6,bound=16)") and is_resolution_sweep("dac(bits=8,bound=1)")
    assert not is_resolution_sweep("programming+adc(bits=8,bound=10)") and not is_resolution_sweep("weight_read")


def test_reproduction_renders_the_grid_and_refuses_its_blocks_without_it(grid, tmp_path, capsys):
    from conftest import REPO

    from dni.cli import main
    from dni.paper.reproduction import NOISE_KINDS_BLOCKS, document_blocks
    from dni.store.results import load_results, save_results

    ds, _ = grid
    save_results(ds, tmp_path / "grid.nc")
    names = ("provenance", "headline", "differences", "noisy-points", "spread", "tables", "figures", *NOISE_KINDS_BLOCKS)
    doc = tmp_path / "R.md"
    doc.write_text("\n\n".join(f"<!-- dni:begin {n} -->\n<!-- dni:end {n} -->" for n in names) + "\n")
    demo = REPO / "widgets" / "demo" / "demo.nc"
    args = ["--quiet", "reproduction", str(demo), "--doc", str(doc), "--no-figures"]
    assert main([*args, "--noise-kinds", str(tmp_path / "grid.nc")]) == 0
    blocks = document_blocks(doc.read_text())
    saved = load_results(tmp_path / "grid.nc")
    assert blocks["noise-kinds-middle"] == middle_table(saved) and blocks["adc-bits"] == quantisation_table(saved)
    assert main([*args, "--noise-kinds", str(tmp_path / "grid.nc"), "--check"]) == 0
    assert main([*args, "--noise-kinds", str(tmp_path / "absent.nc")]) == 2
    err = capsys.readouterr().err
    assert "has noise-kinds blocks but there is no" in err and "absent.nc: run results/run_noise_kinds.sh" in err
