import pandas as pd
import pytest

from core.data.datasets import read_manifest, validate_manifest
from core.errors import ManifestError


def good() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "clip_id": ["a", "b"],
            "path": ["a.wav", "b.wav"],
            "label": ["speech", "Nonspeech"],
            "group_id": ["g1", "g2"],
            "base_clip_id": ["a", "b"],
        }
    )


def test_valid_manifest_gets_optional_columns():
    df = validate_manifest(good())
    assert list(df["label"]) == ["speech", "nonspeech"]
    assert df["snr_db"].isna().all() and (df["noise_type"] == "none").all()


def test_misspelt_column_is_named_with_a_hint():
    with pytest.raises(ManifestError, match=r"missing required column 'label' \(found 'lable': misspelt\?\)"):
        validate_manifest(good().rename(columns={"label": "lable"}), source="m.csv")


def test_duplicate_ids_name_their_lines():
    df = pd.concat([good(), good().iloc[:1]], ignore_index=True)
    with pytest.raises(ManifestError, match=r"duplicate clip_id 'a' on lines 2, 4"):
        validate_manifest(df)


def test_bad_label_and_empty_field_name_their_lines():
    df = good()
    df.loc[1, "label"] = "music"
    df.loc[0, "group_id"] = None
    with pytest.raises(ManifestError) as err:
        validate_manifest(df)
    assert "line 3: label 'music'" in str(err.value)
    assert "line 2: empty 'group_id'" in str(err.value)


def test_read_manifest_errors_name_the_file(tmp_path):
    (tmp_path / "m.csv").write_text("clip_id,path\nx,y\n")
    with pytest.raises(ManifestError, match="m.csv: missing required column 'label'"):
        read_manifest(tmp_path / "m.csv")
    with pytest.raises(ManifestError, match="not found"):
        read_manifest(tmp_path / "nope.csv")
