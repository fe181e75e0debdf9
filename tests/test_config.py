"""Config: TOML round trip, --set overrides with types, unknown keys and bad values named."""

import pytest

from attnlab.config import Config, ModelConfig, apply_overrides, config_from_dict, config_to_toml, load_config
from attnlab.errors import AttnlabError


def test_round_trip(tmp_path):
    cfg = Config(direction="en-zh", model=ModelConfig(d_model=128))
    path = tmp_path / "c.toml"
    path.write_text(config_to_toml(cfg))
    assert load_config(path) == cfg


@pytest.mark.parametrize("override,field,value", [
    ("train.max_steps=12", ("train", "max_steps"), 12),
    ("model.dropout=0.3", ("model", "dropout"), 0.3),
    ("model.norm_first=true", ("model", "norm_first"), True),
    ("direction=en-zh", ("direction",), "en-zh"),
    ("tokenizer.model_type=bpe", ("tokenizer", "model_type"), "bpe"),
])
def test_overrides(override, field, value):
    raw: dict = {}
    apply_overrides(raw, [override])
    cfg = config_from_dict(raw)
    got = cfg
    for part in field:
        got = getattr(got, part)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize("raw,message", [
    ({"modle": {}}, "unknown config key 'modle'"),
    ({"train": {"max_step": 1}}, "unknown config key 'train.max_step'"),
    ({"train": {"max_steps": 1.5}}, "must be an integer"),
    ({"model": {"norm_first": "maybe"}}, "must be true or false"),
    ({"direction": "de-en"}, "direction must be one of"),
    ({"version": 99}, "config version 99"),
    ({"tokenizer": {"joint": False}}, "tie_embeddings needs tokenizer.joint"),
])
def test_errors_name_the_culprit(raw, message):
    with pytest.raises(AttnlabError, match=message):
        config_from_dict(raw)


def test_bad_override_syntax():
    with pytest.raises(AttnlabError, match="key=value"):
        apply_overrides({}, ["train.max_steps"])


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(AttnlabError, match="not found"):
        load_config(tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[model\n")
    with pytest.raises(AttnlabError, match="not valid TOML"):
        load_config(bad)
