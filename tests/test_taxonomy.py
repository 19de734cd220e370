import json
from pathlib import Path

import pytest

from reefmap.errors import ReefmapError
from reefmap.taxonomy import default_taxonomy, load_taxonomy

SHARED_YAML = Path(__file__).resolve().parents[1].parent / "shared/realdata/deepreefmap_video/classes_coralscapes.yaml"


def test_default_is_the_39_coralscapes_classes_with_roles():
    tax = default_taxonomy()
    assert len(tax) == 39 and tax.ids.tolist() == list(range(1, 40))
    assert tax.by_id(5).name == "sand"
    assert set(tax.ids_with_role("ignore_in_cover").tolist()) == {7, 8, 9, 13, 14}
    assert set(tax.ids_with_role("ignore_in_cloud").tolist()) == {7, 8, 9, 13}
    assert tax.colour_lut()[22].tolist() == [226, 91, 157]


def test_roundtrip_through_dict():
    tax = default_taxonomy()
    again = type(tax).from_dict(tax.to_dict())
    assert again == tax


def test_reads_the_reference_yaml_layout():
    if not SHARED_YAML.exists():
        pytest.skip("../shared/realdata is absent")
    tax = load_taxonomy(SHARED_YAML)
    assert tax.classes == default_taxonomy().classes


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    (json.dumps({"classes": [{"id": 1, "name": "a"}]}), "needs id, name and colour"),
    (json.dumps({"classes": [{"id": 1, "name": "a", "colour": [1, 2, 3], "roles": ["x"]}]}), "unknown roles"),
    (json.dumps({"classes": [{"id": 0, "name": "a", "colour": [1, 2, 3]}]}), "ids >= 1"),
])
def test_bad_taxonomy_files_name_the_problem(tmp_path, content, message):
    path = tmp_path / "t.json"
    path.write_text(content)
    with pytest.raises(ReefmapError, match=message):
        load_taxonomy(path)
