"""Typed model configs: coercion from ``--set`` strings and TOML values, layering, errors, hashing."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
import hashlib
from pathlib import Path
from typing import Literal, Optional

import pytest

from mmbench.config import build_config, parse_set_options, read_config_file, stable_hash
from mmbench.errors import ConfigError, MMBenchError
from mmbench.train import TrainConfig


@dataclasses.dataclass(frozen=True)
class DemoConfig:
    dim: int = 300
    lr: float = 0.05
    normalize: bool = False
    tokenizer: str = "whitespace"
    max_words: Optional[int] = None
    scale: float | None = 1.0
    pooling: Literal["mean", "max", "cls"] = "mean"
    window: Literal[2, 5, 10] = 5
    layers: tuple[int, ...] = (512, 256)
    languages: list[str] = dataclasses.field(default_factory=lambda: ["en", "de"])
    checkpoint: Path | None = None


@dataclasses.dataclass
class CheckedConfig:
    dim: int = 10

    def __post_init__(self) -> None:
        if self.dim <= 0:
            raise ValueError("dim must be positive")


def build(*layers: dict) -> DemoConfig:
    return build_config(DemoConfig, *layers, model_name="demo")


def test_defaults_when_no_layer() -> None:
    assert build() == DemoConfig()


# -- coercion from command-line strings (what --set gives) ------------------------------------------


@pytest.mark.parametrize(
    ("key", "text", "expected"),
    [
        ("dim", "128", 128),
        ("dim", " 64 ", 64),
        ("dim", "-3", -3),
        ("lr", "0.1", 0.1),
        ("lr", "1e-3", 1e-3),
        ("lr", "2", 2.0),
        ("normalize", "true", True),
        ("normalize", "True", True),
        ("normalize", "yes", True),
        ("normalize", "1", True),
        ("normalize", "on", True),
        ("normalize", "false", False),
        ("normalize", "NO", False),
        ("normalize", "0", False),
        ("normalize", "off", False),
        ("tokenizer", "sentencepiece", "sentencepiece"),
        ("max_words", "200000", 200000),
        ("max_words", "none", None),
        ("max_words", "None", None),
        ("max_words", "null", None),
        ("scale", "0.5", 0.5),
        ("scale", "none", None),
        ("pooling", "max", "max"),
        ("window", "10", 10),
        ("layers", "1024, 512,128", (1024, 512, 128)),
        ("layers", "7", (7,)),
        ("layers", "", ()),
        ("languages", "en,fr , es", ["en", "fr", "es"]),
        ("checkpoint", "runs/a.safetensors", Path("runs/a.safetensors")),
        ("checkpoint", "none", None),
    ],
)
def test_coerces_command_line_strings(key: str, text: str, expected: object) -> None:
    value = getattr(build({key: text}), key)
    assert value == expected
    assert type(value) is type(expected)


def test_tuple_and_list_items_are_converted_to_the_item_type() -> None:
    config = build({"layers": "3,4"})
    assert config.layers == (3, 4) and all(type(v) is int for v in config.layers)
    assert isinstance(build({"languages": "en"}).languages, list)


@pytest.mark.parametrize("text", ['["en", "de"]', "['en','de']", " [ 'en' , 'de' ] ", "en,de", "en, de"])
def test_a_list_can_be_given_as_a_toml_array_or_commas_on_the_command_line(text: str) -> None:
    assert build({"languages": text}).languages == ["en", "de"]


def test_a_malformed_toml_array_is_a_one_line_error() -> None:
    with pytest.raises(ConfigError, match="not a valid list"):
        build({"languages": '["en", '})


# -- coercion from TOML values -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("dim", 128, 128),
        ("dim", 64.0, 64),  # an integral float is an integer
        ("lr", 1, 1.0),
        ("lr", 0.25, 0.25),
        ("normalize", True, True),
        ("normalize", False, False),
        ("max_words", 5, 5),
        ("pooling", "cls", "cls"),
        ("window", 2, 2),
        ("layers", [8, 4], (8, 4)),
        ("layers", [8.0], (8,)),
        ("languages", ["ja"], ["ja"]),
        ("languages", ("a", "b"), ["a", "b"]),
    ],
)
def test_coerces_toml_values(key: str, value: object, expected: object) -> None:
    got = getattr(build({key: value}), key)
    assert got == expected
    assert type(got) is type(expected)


def test_toml_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "demo.toml"
    path.write_text(
        'dim = 50\nlr = 0.5\nnormalize = true\npooling = "max"\nlayers = [3, 2, 1]\nlanguages = ["fr"]\n',
        encoding="utf-8",
    )
    config = build(read_config_file(path))
    assert config == DemoConfig(
        dim=50, lr=0.5, normalize=True, pooling="max", layers=(3, 2, 1), languages=["fr"]
    )


# -- rejected values -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("dim", 1.5, "dim"),
        ("dim", "1.5", "dim"),
        ("dim", "ten", "dim"),
        ("dim", True, "dim"),  # TOML true is not the integer 1
        ("dim", "", "dim"),
        ("lr", "fast", "lr"),
        ("lr", False, "lr"),
        ("lr", "nan", "NaN"),
        ("lr", float("nan"), "NaN"),
        ("lr", "NaN", "NaN"),
        ("scale", "nan", "scale"),
        ("normalize", "maybe", "true/false"),
        ("normalize", 1, "normalize"),
        ("normalize", "none", "normalize"),  # None only for Optional fields
        ("max_words", "lots", "max_words"),
        ("pooling", "sum", "mean, max, cls"),
        ("pooling", "MEAN", "pooling"),
        ("window", "3", "2, 5, 10"),
        ("window", 3, "window"),
        ("layers", "1,x", "layers"),
        ("layers", {"a": 1}, "expected a list"),
        ("layers", 5, "expected a list"),
    ],
)
def test_rejects_bad_values(key: str, value: object, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        build({key: value})
    message = str(info.value)
    assert fragment in message
    assert repr(key) in message or key in message
    assert "\n" not in message


def test_nan_is_rejected_with_a_clear_reason() -> None:
    with pytest.raises(ConfigError, match="NaN is not a valid value"):
        build({"lr": "nan"})


def test_bad_literal_lists_the_choices() -> None:
    with pytest.raises(ConfigError) as info:
        build({"pooling": "attention"})
    assert "'attention'" in str(info.value)
    for choice in ("mean", "max", "cls"):
        assert choice in str(info.value)


def test_unknown_key_lists_known_keys() -> None:
    with pytest.raises(ConfigError) as info:
        build({"dimension": "3"})
    message = str(info.value)
    assert "'dimension'" in message and "'demo'" in message
    for field in dataclasses.fields(DemoConfig):
        assert field.name in message
    assert issubclass(ConfigError, MMBenchError)


def test_unknown_key_in_a_later_layer_is_still_reported() -> None:
    with pytest.raises(ConfigError, match="'typo'"):
        build({"dim": 1}, {"typo": 2})


def test_config_without_dataclass_is_an_error() -> None:
    class NotADataclass:
        pass

    with pytest.raises(ConfigError, match="'thing' has no dataclass Config"):
        build_config(NotADataclass, model_name="thing")


def test_post_init_validation_becomes_config_error() -> None:
    with pytest.raises(ConfigError, match="dim must be positive"):
        build_config(CheckedConfig, {"dim": "-1"}, model_name="checked")
    assert build_config(CheckedConfig, {"dim": "4"}).dim == 4


# -- layering ------------------------------------------------------------------------------------------


def test_layers_later_wins() -> None:
    defaults = {"dim": 100, "pooling": "max"}
    config_file = {"dim": 200, "lr": 0.3}
    set_options = {"dim": "400"}
    config = build(defaults, config_file, set_options)
    assert config.dim == 400  # --set beats file beats registered defaults
    assert config.lr == 0.3
    assert config.pooling == "max"
    assert config.normalize is False  # untouched: dataclass default


def test_layers_are_not_mutated() -> None:
    layer = {"dim": "7"}
    build(layer)
    assert layer == {"dim": "7"}


# -- --set parsing -------------------------------------------------------------------------------------


def test_parse_set_options() -> None:
    assert parse_set_options(["dim=300", " lr = 0.1 ", "path=a=b", "empty="]) == {
        "dim": "300",
        "lr": "0.1",
        "path": "a=b",  # only the first '=' separates
        "empty": "",
    }
    assert parse_set_options(["dim=1", "dim=2"]) == {"dim": "2"}
    assert parse_set_options([]) == {}


@pytest.mark.parametrize("option", ["dim", "=300", "  =1", ""])
def test_parse_set_options_rejects_malformed(option: str) -> None:
    with pytest.raises(ConfigError, match="key=value"):
        parse_set_options([option])


# -- TOML config files -------------------------------------------------------------------------------


def test_read_config_file_missing(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        read_config_file(path)
    assert str(path) in str(info.value) and "not found" in str(info.value)
    assert "\n" not in str(info.value)


def test_read_config_file_invalid_toml(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("dim = 3\nlr = \n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        read_config_file(path)
    message = str(info.value)
    assert message.startswith(f"{path}: invalid TOML")
    assert "line 2" in message
    assert "\n" not in message


def test_read_config_file_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('tokenizer = "caf\xe9"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match="latin1.toml"):
        read_config_file(path)


def test_read_config_file_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=str(tmp_path)):
        read_config_file(tmp_path)


def test_str_field_rejects_toml_list() -> None:
    with pytest.raises(ConfigError, match="tokenizer"):
        build({"tokenizer": [1, 2]})


# -- stable_hash ---------------------------------------------------------------------------------------


def test_stable_hash_ignores_key_order() -> None:
    a = {"model": "m", "config": {"dim": 3, "lr": 0.1, "nested": {"x": 1, "y": [1, 2]}}}
    b = {"config": {"nested": {"y": [1, 2], "x": 1}, "lr": 0.1, "dim": 3}, "model": "m"}
    assert stable_hash(a) == stable_hash(b)


def test_stable_hash_is_sha256_of_canonical_json() -> None:
    payload = {"b": [1, 2.5, None, True], "a": "é"}
    canonical = '{"a":"\\u00e9","b":[1,2.5,null,true]}'  # sorted keys, compact, ASCII-escaped
    assert stable_hash(payload) == hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]
    assert stable_hash(payload, length=64) == hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    assert len(stable_hash(payload, length=16)) == 16


@pytest.mark.parametrize(
    "other",
    [
        {"dim": 301, "lr": 0.1},
        {"dim": 300, "lr": 0.10000001},
        {"dim": "300", "lr": 0.1},  # a string is not the number
        {"dim": 300},
        {"dim": 300, "lr": 0.1, "extra": None},
        {"dim": 300, "LR": 0.1},
    ],
)
def test_stable_hash_differs_for_different_values(other: dict) -> None:
    assert stable_hash({"dim": 300, "lr": 0.1}) != stable_hash(other)


def test_stable_hash_of_built_configs() -> None:
    one = dataclasses.asdict(build({"dim": "64", "layers": "2,1"}))
    same = dataclasses.asdict(build({"layers": [2, 1]}, {"dim": 64}))
    different = dataclasses.asdict(build({"dim": "65", "layers": "2,1"}))
    assert stable_hash(one) == stable_hash(same)
    assert stable_hash(one) != stable_hash(different)
    # Paths and other non-JSON values hash through str() rather than failing.
    assert stable_hash({"p": Path("a/b")}) == stable_hash({"p": "a/b"})


# -- nested configs (a model config embedding the trainer's TrainConfig) ------------------------------
@dataclass(frozen=True)
class _Inner:
    lr: float = 0.001
    epochs: int = 10


@dataclass(frozen=True)
class _Outer:
    dim: int = 100
    train: _Inner = _Inner(lr=0.5)


def test_nested_config_from_dotted_keys_keeps_the_parent_default():
    config = build_config(_Outer, {"train.epochs": "3"})
    assert config == _Outer(train=_Inner(lr=0.5, epochs=3))  # lr from the parent's default, not _Inner's


def test_nested_config_layers_merge_tables_and_dotted_keys():
    config = build_config(_Outer, {"train": {"lr": 0.1, "epochs": 2}}, {"train.epochs": "7", "dim": "300"})
    assert config == _Outer(dim=300, train=_Inner(lr=0.1, epochs=7))


def test_nested_config_errors_name_the_dotted_key():
    with pytest.raises(ConfigError, match=r"'train\.nope'"):
        build_config(_Outer, {"train.nope": "1"})
    with pytest.raises(ConfigError, match=r"'train\.lr'"):
        build_config(_Outer, {"train.lr": "fast"})
    with pytest.raises(ConfigError, match="expected a table"):
        build_config(_Outer, {"train": "5"})
    with pytest.raises(ConfigError, match="is a value, not a table"):
        build_config(_Outer, {"dim": "5", "dim.x": "1"})


@dataclass(frozen=True)
class _PluginConfig:
    train: TrainConfig = TrainConfig(batch_size=1000)


def test_real_train_config_nests():
    config = build_config(_PluginConfig, {"train.lr": "0.01", "train.optimizer": "sgd"})
    assert config.train.batch_size == 1000 and config.train.lr == 0.01 and config.train.optimizer == "sgd"


def test_an_added_field_at_its_default_leaves_the_config_hash_unchanged():
    """A field added to a released config must not orphan the records stored under the old hash."""
    import dataclasses

    from mmbench.config import stable_hash
    from mmbench.models import added_field, config_to_dict

    @dataclasses.dataclass(frozen=True)
    class Inner:
        lr: float = 0.1

    @dataclasses.dataclass(frozen=True)
    class Old:
        dim: int = 4
        inner: Inner = dataclasses.field(default_factory=Inner)

    @dataclasses.dataclass(frozen=True)
    class InnerNew:
        lr: float = 0.1
        milestones: tuple[int, ...] = added_field(())

    @dataclasses.dataclass(frozen=True)
    class New:
        dim: int = 4
        inner: InnerNew = dataclasses.field(default_factory=InnerNew)
        gamma: float = added_field(0.5)

    assert stable_hash(config_to_dict(New())) == stable_hash(config_to_dict(Old()))
    assert config_to_dict(New()) == dataclasses.asdict(Old())
    changed = config_to_dict(New(gamma=0.25, inner=InnerNew(milestones=(10,))))
    assert changed["gamma"] == 0.25 and changed["inner"]["milestones"] == (10,)
    assert stable_hash(changed) != stable_hash(config_to_dict(Old()))


def test_display_only_settings_do_not_make_another_model():
    """`--set train.progress=false` (a quiet terminal) trains the same weights: same hash, same records."""
    from mmbench.plugins import get_registry
    from mmbench.runner import resolve_model

    registry = get_registry()
    assert (resolve_model(registry, "ame", ["train.progress=false"]).config_hash
            == resolve_model(registry, "ame", []).config_hash)
    assert (resolve_model(registry, "ame", ["train.epochs=2"]).config_hash
            != resolve_model(registry, "ame", []).config_hash)
