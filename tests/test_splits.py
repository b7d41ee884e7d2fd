import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.data.splits import check_split, list_splits, load_split, make_split, save_split, split_units
from core.errors import SplitError


@st.composite
def manifests(draw):
    """Random corpora: groups of one label, base clips inside groups, some bases shared across groups."""
    n_groups = draw(st.integers(3, 25))
    rows = []
    for g in range(n_groups):
        label = draw(st.sampled_from(["speech", "nonspeech"]))
        for b in range(draw(st.integers(1, 4))):
            for v in range(draw(st.integers(1, 5))):
                rows.append(
                    {"clip_id": f"g{g}b{b}v{v}", "label": label, "group_id": f"g{g}", "base_clip_id": f"g{g}b{b}"}
                )
    df = pd.DataFrame(rows)
    if draw(st.booleans()) and n_groups > 3:  # a base clip re-used by another group links the two
        df.loc[df["group_id"] == "g1", "base_clip_id"] = df.loc[df["group_id"] == "g0", "base_clip_id"].iloc[0]
    return df


@settings(max_examples=150, deadline=None)
@given(manifests(), st.integers(0, 2**32 - 1), st.sampled_from([(0.7, 0.15, 0.15), (0.5, 0.25, 0.25), (0.8, 0.2, 0.0)]))
def test_no_group_or_base_clip_crosses_splits(df, seed, fr):
    split = make_split(df, dict(zip(("train", "dev", "test"), fr)), seed=seed)
    assert check_split(df, split) == []
    assert split.notna().all()
    assert (df.assign(s=split).groupby("group_id")["s"].nunique() == 1).all()
    assert (df.assign(s=split).groupby("base_clip_id")["s"].nunique() == 1).all()
    if fr[2] == 0:
        assert "test" not in set(split)


def test_units_link_groups_through_shared_base_clips():
    df = pd.DataFrame({"group_id": ["a", "a", "b", "c"], "base_clip_id": ["x", "y", "y", "z"]})
    units = split_units(df)
    assert units[0] == units[1] == units[2] != units[3]


def test_default_split_is_stratified_and_reproducible(default_ds):
    m = default_ds.manifest
    split = make_split(m, seed=3)
    assert split.equals(make_split(m, seed=3))
    assert not split.equals(make_split(m, seed=4))
    share = m.assign(split=split).groupby(["label", "split"]).size() / m.groupby("label").size()
    for label in ("speech", "nonspeech"):
        assert share[label]["train"] == pytest.approx(0.7, abs=0.1)
        assert share[label]["dev"] == pytest.approx(0.15, abs=0.08)
        assert share[label]["test"] == pytest.approx(0.15, abs=0.08)


def test_save_and_load_round_trip(default_ds):
    split = make_split(default_ds.manifest, seed=1)
    save_split(default_ds, "rt", split, {"seed": 1})
    assert "rt" in list_splits(default_ds)
    assert load_split(default_ds, "rt").equals(split)
    with pytest.raises(SplitError, match="no split 'missing'"):
        load_split(default_ds, "missing")
    with pytest.raises(SplitError, match="invalid split name"):
        save_split(default_ds, "../evil", split, {})


def test_bad_fractions_are_refused(default_ds):
    with pytest.raises(SplitError, match="must be ≥ 0"):
        make_split(default_ds.manifest, {"train": -1, "test": 1})
