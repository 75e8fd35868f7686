import pytest

from supervision.config import SettingsError, load_settings


def test_defaults_have_documented_sections():
    s = load_settings()
    assert s["data"]["day_first"] is True
    assert "personality_disorder" in s.identity_dimensions
    assert {"check_in", "mood", "admin_other"} <= s.focus_code_set
    assert {c.group for c in s.focus_codes} <= {"check_in", "goal_area", "crisis", "process", "technique", "admin"}


def test_user_file_overlays_only_given_keys(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text("[data]\nday_first = false\n")
    s = load_settings(f)
    assert s["data"]["day_first"] is False
    assert s["data"]["future_tolerance_days"] == 0
    assert s.source == str(f)


@pytest.mark.parametrize("given, words", [
    ({"data": {"day_frist": True}}, ["data.day_frist", "day_first"]),
    ({"data": {"day_first": "yes"}}, ["data.day_first", "true/false", "'yes'"]),
    ({"privacy": {"suppression_policy": "gdpr"}}, ["privacy.suppression_policy", "nhs", "cms", "'gdpr'"]),
    ({"data": {"future_tolerance_days": -1}}, ["future_tolerance_days", "0 or more"]),
    ({"focus": {"codes": [{"code": "x", "label": "X", "group": "nonsense"}]}}, ["group", "goal_area"]),
    ({"focus": {"codes": []}}, ["focus.codes"]),
])
def test_invalid_settings_name_key_allowed_and_given(given, words):
    with pytest.raises(SettingsError) as err:
        load_settings(given)
    for w in words:
        assert w in str(err.value)


def test_unreadable_settings_files(tmp_path):
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[data\nday_first = true")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(bad)


def test_custom_focus_codes_replace_the_taxonomy():
    s = load_settings({"focus": {"codes": [{"code": "eating", "label": "Eating", "group": "goal_area"}]}})
    assert s.focus_code_set == {"eating"}
